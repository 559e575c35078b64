"""How ``nsaudio stream`` prints results: live text, JSON Lines, SRT or WebVTT.

Every writer takes results as they arrive (times already absolute) and writes each full
result as soon as it comes, so an interrupted run keeps everything it had. A result of one
channel's session (``--split-channels``) carries its channel's name: text and SRT lines
begin ``agent: ``, JSON Lines have a ``channel`` key, WebVTT cues a voice tag ``<v agent>``. ``-o FILE`` is
a :class:`TranscriptFile`: FILE appears at the end of the run, and only a run that failed
before a single result was written leaves none.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Protocol, TextIO

from ..errors import InputError
from ..neuralspace.protocol import TranscriptResult
from ..sinks.files import PendingFile

__all__ = ["OUTPUTS", "ResultWriter", "TranscriptFile", "labelled", "make_writer", "no_text_note"]

OUTPUTS = ("text", "jsonl", "srt", "vtt")


def _clock(seconds: float, sep: str) -> str:
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


class TranscriptFile:
    """Where the transcript goes: stdout for None or ``-``, else FILE through a
    :class:`~nsaudio.sinks.files.PendingFile` (written beside it, renamed at the end)."""

    def __init__(self, path: str | None) -> None:
        self._pending: PendingFile | None = None
        if path is None or path == "-":
            self.out: TextIO = _utf8_stdout()
            return
        self._pending = PendingFile(path)
        try:
            self.out = open(self._pending.name, "w", encoding="utf-8")  # noqa: SIM115
        except OSError as err:
            self._pending.discard()
            raise InputError(f"{path}: cannot write ({err.strerror})") from None

    def finish(self, *, keep: bool) -> None:
        """Put FILE in place (``keep``), or remove what was written."""
        if self._pending is None:
            self.out.flush()
            return
        self.out.close()
        if keep:
            self._pending.commit()
        else:
            self._pending.discard()


def _utf8_stdout() -> TextIO:
    # Transcripts are UTF-8 whatever the locale says: an ASCII locale must not turn Arabic or
    # Hindi into an encoding error halfway through a stream.
    if hasattr(sys.stdout, "reconfigure") and (sys.stdout.encoding or "").lower() not in (
        "utf-8",
        "utf8",
    ):
        sys.stdout.reconfigure(encoding="utf-8")
    return sys.stdout


def labelled(r: TranscriptResult) -> str:
    """The result's text, after its channel's name when it has one (``agent: hello``)."""
    text = r.text.strip()
    return f"{r.channel}: {text}" if r.channel is not None and text else text


def _vtt_escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class TextWriter:
    """One line per full result; on a terminal the current partial is rewritten in place."""

    def __init__(self, out: TextIO, live: bool) -> None:
        self.out = out
        self.live = live
        self.written = 0  # results written
        self._shown = False

    def _clear(self) -> None:
        if self._shown:
            self.out.write("\r\x1b[K")
            self._shown = False

    def write(self, r: TranscriptResult) -> None:
        if r.full:
            self._clear()
            if r.text.strip():
                self.out.write(labelled(r) + "\n")
                self.written += 1
        elif self.live:
            self._clear()
            self.out.write(labelled(r))
            self._shown = True
        self.out.flush()

    def close(self) -> None:
        self._clear()
        self.out.flush()


class JsonlWriter:
    """Every result (partials too, unless disabled) as one JSON object per line."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.written = 0

    def write(self, r: TranscriptResult) -> None:
        self.out.write(json.dumps(r.to_dict(), ensure_ascii=False) + "\n")
        self.written += 1
        self.out.flush()

    def close(self) -> None:
        self.out.flush()


class SubtitleWriter:
    """Full results as SRT or WebVTT cues."""

    def __init__(self, out: TextIO, vtt: bool) -> None:
        self.out = out
        self.vtt = vtt
        self.count = 0
        if vtt:
            out.write("WEBVTT\n\n")

    @property
    def written(self) -> int:
        return self.count

    def write(self, r: TranscriptResult) -> None:
        if not r.full or not r.text.strip():
            return
        self.count += 1
        sep = "." if self.vtt else ","
        if self.vtt:  # cue text is markup: a voice tag names the channel
            text = _vtt_escaped(r.text.strip())
            if r.channel is not None:
                text = f"<v {_vtt_escaped(r.channel)}>{text}"
        else:
            self.out.write(f"{self.count}\n")
            text = labelled(r)
        self.out.write(f"{_clock(r.start_time, sep)} --> {_clock(r.end_time, sep)}\n{text}\n\n")
        self.out.flush()

    def close(self) -> None:
        self.out.flush()


Writer = TextWriter | JsonlWriter | SubtitleWriter


class ResultWriter(Protocol):
    """What a run writes its results with: any writer here, or the status line's."""

    @property
    def written(self) -> int:
        """Results written so far."""
        ...

    def write(self, r: TranscriptResult) -> None: ...

    def close(self) -> None: ...


def make_writer(kind: str, out: TextIO, *, live: bool) -> Writer:
    if kind == "jsonl":
        return JsonlWriter(out)
    if kind in ("srt", "vtt"):
        return SubtitleWriter(out, vtt=kind == "vtt")
    return TextWriter(out, live)


def no_text_note(gate: Any, rate: int, *, gated: bool = False) -> str | None:
    """What ``stream`` says when the run ended with no text at all (a silent file, a tone,
    the wrong language), from the energy gate's counters (``seen_samples``,
    ``speech_samples``), or None when the gate's own summary (``--gate``: "the gate heard no
    speech") already says it."""
    seen, speech = gate.seen_samples / rate, gate.speech_samples / rate
    if not gate.speech_samples:
        if gated:
            return None
        return (
            f"no text: the {seen:.1f} s of audio held nothing the energy gate hears as speech "
            "('nsaudio check SOURCE' measures it)"
        )
    return (
        f"no text: the service transcribed nothing in {seen:.1f} s of audio, "
        f"{speech:.1f} s of which is loud enough to be speech (a tone, music, or another "
        "language than --language?)"
    )
