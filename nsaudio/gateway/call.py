"""One call: a session per track, its transcript file, its webhook events, its verdict.

A listener makes a :class:`Call` once the platform has said who the call is (Twilio's
``start``, AudioSocket's UUID), feeds it positioned audio per track, and ends it with a
reason. Results come back on the gateway's loop: each full result is written at once to
``DIR/<call id>.jsonl`` (under a hidden temporary name until the call ends, then renamed, as
``nsaudio stream -o`` does), posted to the webhook, and every result (partials too) goes to
the ``on_result`` hook. The end is one log line, one ``call_end`` event and the
``on_call_end`` hook, with the call's verdict: ``complete`` only when every track's session
ended with all its speech transcribed and nothing dropped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..blocks import Block
from ..neuralspace.protocol import TranscriptResult
from ..sinks.files import PendingFile
from .track import TrackSession, TrackVerdict

if TYPE_CHECKING:
    from .server import Gateway

__all__ = ["Call", "CallEnd"]

log = logging.getLogger("nsaudio.gateway")


@dataclass(frozen=True)
class CallEnd:
    """How a call ended: what ``on_call_end`` receives and the ``call_end`` event carries.

    ``verdict``: ``complete`` (every track's speech transcribed, nothing dropped),
    ``incomplete`` (a track's session says what is missing) or ``aborted`` (cut at the
    drain deadline). ``reason``: ``stop``/``hangup`` (the platform ended it), ``closed``
    (the connection went away without that), ``idle``, ``bad_input``, ``drain``,
    ``error`` (Asterisk's) or ``internal_error`` (the gateway's own, named in ``detail``). ``tracks``: per label, ``ok``, ``error`` and seconds received, sent, missing
    (the platform's gaps), dropped, and reconnects.
    """

    call_id: str
    protocol: str
    reason: str
    verdict: str
    duration_s: float
    tracks: dict[str, dict[str, Any]]
    detail: str = ""
    transcript: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": "call_end", "call_id": self.call_id, "protocol": self.protocol,
            "reason": self.reason, "verdict": self.verdict, "detail": self.detail,
            "duration_s": self.duration_s, "tracks": self.tracks,
            "transcript": self.transcript, "parameters": self.parameters,
        }  # fmt: skip


class Call:
    """A call in progress (see the module docstring).

    Args:
        gateway: the gateway it belongs to (service, settings, outputs, metrics).
        protocol: ``twilio`` or ``audiosocket``.
        call_id: names the transcript file (already checked to be a safe file name).
        tracks: the platform's track name -> the label results carry.
        rate: the tracks' sample rate as the platform says it (a track whose first block
            comes at another rate follows the block; None: each takes its first block's).
        parameters: what the platform passed along (Twilio's custom parameters).
        encoding: what the blocks' samples are (``linear``: int16; ``ulaw``: µ-law codes).
    """

    def __init__(
        self,
        gateway: Gateway,
        protocol: str,
        call_id: str,
        tracks: dict[str, str],
        rate: int | None,
        parameters: dict[str, str] | None = None,
        encoding: str = "linear",
    ) -> None:
        self.gateway = gateway
        self.protocol = protocol
        self.call_id = call_id
        self.labels = dict(tracks)
        self.rate = rate
        self.parameters = dict(parameters or {})
        self.started = time.monotonic()
        self.ended: CallEnd | None = None
        self.missing_samples = dict.fromkeys(self.labels.values(), 0)
        self._results = 0
        self._file = None
        self._pending: PendingFile | None = None
        if gateway.config.out_dir is not None:
            self._open_file(gateway.config.out_dir)
        self.sessions: dict[str, TrackSession] = {
            label: gateway.open_track(rate, self._on_result_for(label), encoding)
            for label in self.labels.values()
        }
        log.info("call %s started (%s, %s)", call_id, protocol, "+".join(self.labels.values()))

    def _open_file(self, out_dir: str) -> None:
        path = os.path.join(out_dir, f"{self.call_id}.jsonl")
        n = 1
        while os.path.exists(path) or path in self.gateway.files_in_use:
            n += 1  # the same call streamed again: keep the earlier transcript
            path = os.path.join(out_dir, f"{self.call_id}-{n}.jsonl")
        self.gateway.files_in_use.add(path)
        self.path = path
        self._pending = PendingFile(path)
        self._file = open(self._pending.name, "w", encoding="utf-8")  # noqa: SIM115

    def audio(self, track: str, block: Block) -> None:
        """Audio for ``track`` (the platform's name) at its stream position; never waits."""
        self.sessions[self.labels[track]].push(block)

    def note_missing(self, track: str, samples: int) -> None:
        self.missing_samples[self.labels[track]] = samples

    def _on_result_for(self, label: str) -> Callable[[TranscriptResult], None]:
        def on_result(result: TranscriptResult) -> None:
            self._result(label, result)

        return on_result

    def _result(self, label: str, result: TranscriptResult) -> None:
        gw = self.gateway
        gw.metrics.results.labels("full" if result.full else "partial").inc()
        if result.full:
            self._results += 1
            line = {"call_id": self.call_id, "track": label, **result.to_dict()}
            if self._file is not None:
                self._file.write(json.dumps(line, ensure_ascii=False) + "\n")
                self._file.flush()
            if gw.webhook is not None:
                gw.webhook.post({"event": "result", "sequence": self._results, **line})
        gw.call_hook(gw.on_result, self.call_id, label, result)

    async def end(self, reason: str, detail: str = "", *, hurry: bool = False) -> CallEnd:
        """End every track (the last results awaited), close the file, say how it went."""
        if self.ended is not None:
            return self.ended
        labels = list(self.sessions)
        verdicts: list[TrackVerdict | BaseException] = await asyncio.gather(
            *(self.sessions[label].finish(hurry=hurry) for label in labels),
            return_exceptions=True,
        )
        return self._ended(reason, detail, dict(zip(labels, verdicts, strict=True)))

    async def abort(self, reason: str, detail: str) -> CallEnd:
        """Cut every track at once (the drain's hard deadline): verdict ``aborted``."""
        if self.ended is not None:
            return self.ended
        await asyncio.gather(*(s.abort() for s in self.sessions.values()), return_exceptions=True)
        verdicts: dict[str, TrackVerdict | BaseException] = {
            label: TrackVerdict(False, "cut at the drain deadline") for label in self.sessions
        }
        return self._ended(reason, detail, verdicts, aborted=True)

    def _ended(
        self,
        reason: str,
        detail: str,
        verdicts: dict[str, TrackVerdict | BaseException],
        aborted: bool = False,
    ) -> CallEnd:
        gw = self.gateway
        tracks: dict[str, dict[str, Any]] = {}
        ok = True
        for label, v in verdicts.items():
            if isinstance(v, BaseException):
                log.debug("a track's end failed", exc_info=v)
                v = TrackVerdict(False, f"internal error: {type(v).__name__}: {v}")
            ok &= v.ok
            missing = round(self.missing_samples.get(label, 0) / (self.rate or 8000), 3)
            tracks[label] = {"ok": v.ok, "error": v.error, **v.stats, "missing_s": missing}
            gw.metrics.received_seconds.labels(self.protocol).inc(v.stats.get("received_s", 0))
            gw.metrics.sent_seconds.labels(self.protocol).inc(v.stats.get("sent_s", 0))
            gw.metrics.dropped_seconds.labels(self.protocol).inc(v.stats.get("dropped_s", 0))
            gw.metrics.missing_seconds.labels(self.protocol).inc(missing)
            gw.metrics.reconnects.inc(v.stats.get("reconnects", 0))
        verdict = "aborted" if aborted else "complete" if ok else "incomplete"
        transcript = None
        if self._file is not None and self._pending is not None:
            self._file.close()
            self._pending.commit()
            gw.files_in_use.discard(self.path)
            transcript = self.path
        end = CallEnd(
            call_id=self.call_id, protocol=self.protocol, reason=reason, verdict=verdict,
            duration_s=round(time.monotonic() - self.started, 3), tracks=tracks,
            detail=detail, transcript=transcript, parameters=self.parameters,
        )  # fmt: skip
        self.ended = end
        gw.metrics.calls.labels(self.protocol, verdict).inc()
        problems = "; ".join(f"{k}: {t['error']}" for k, t in tracks.items() if t["error"])
        sent = ", ".join(f"{k} {t.get('sent_s', 0):.1f} s" for k, t in tracks.items())
        (log.info if verdict == "complete" else log.warning)(
            "call %s ended (%s%s): %s; sent %s, %d results%s",
            self.call_id, reason, f": {detail}" if detail else "", verdict, sent,
            self._results, f"; {problems}" if problems else "",
        )  # fmt: skip
        if gw.webhook is not None:
            gw.webhook.post({**end.to_dict(), "sequence": self._results + 1})
        gw.call_hook(gw.on_call_end, end)
        return end
