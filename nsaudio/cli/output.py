"""How ``nsaudio stream`` prints results: live text, JSON Lines, SRT or WebVTT.

Every writer takes results as they arrive (times already absolute) and writes each full
result as soon as it comes, so an interrupted run keeps everything it had. ``-o FILE`` is
a :class:`TranscriptFile`: FILE appears at the end of the run, and only a run that failed
before a single result was written leaves none.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import Any, TextIO

from ..errors import InputError
from ..neuralspace.protocol import TranscriptResult
from ..sinks.files import PendingFile, WavSink

__all__ = ["OUTPUTS", "TranscriptFile", "make_writer", "no_text_note", "recording"]

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
        """Put FILE in place (``keep``), or remove what was written; once: a second call
        changes nothing."""
        if self._pending is None:
            self.out.flush()
            return
        self.out.close()
        if keep:
            self._pending.commit()
        else:
            self._pending.discard()

    @contextlib.contextmanager
    def discarded_on_error(self, record: WavSink | None = None) -> Iterator[None]:
        """A run that fails before it could start writing (the service cannot be reached)
        leaves neither FILE nor the ``--record`` file: both are given up here."""
        try:
            yield
        except BaseException:
            self.finish(keep=False)  # nothing more once the run has finished it
            if record is not None and not record.frames_written:
                record.abort()
            raise


def recording(path: str | None) -> WavSink | None:
    """The ``--record`` file, made now so that a bad path is refused before anything starts.
    A run that fails halfway keeps the audio it sent (a complete WAV), as ``-o`` keeps its
    results."""
    return None if path is None else WavSink(path, keep_partial=True)


def _utf8_stdout() -> TextIO:
    # Transcripts are UTF-8 whatever the locale says: an ASCII locale must not turn Arabic or
    # Hindi into an encoding error halfway through a stream.
    if hasattr(sys.stdout, "reconfigure") and (sys.stdout.encoding or "").lower() not in (
        "utf-8",
        "utf8",
    ):
        sys.stdout.reconfigure(encoding="utf-8")
    return sys.stdout


class TextWriter:
    """One line per full result; on a terminal the current partial is rewritten in place."""

    def __init__(self, out: TextIO, live: bool) -> None:
        self.out = out
        self.live = live
        self.written = 0  # results written
        self.texts = 0  # full results with text
        self._shown = False

    def _clear(self) -> None:
        if self._shown:
            self.out.write("\r\x1b[K")
            self._shown = False

    def write(self, r: TranscriptResult) -> None:
        if r.full:
            self._clear()
            if r.text.strip():
                self.out.write(r.text.strip() + "\n")
                self.written += 1
                self.texts += 1
        elif self.live:
            self._clear()
            self.out.write(r.text.strip())
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
        self.texts = 0  # full results with text

    def write(self, r: TranscriptResult) -> None:
        self.out.write(json.dumps(r.to_dict(), ensure_ascii=False) + "\n")
        self.written += 1
        self.texts += bool(r.full and r.text.strip())
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

    @property
    def texts(self) -> int:
        """Full results with text (every cue has some)."""
        return self.count

    def write(self, r: TranscriptResult) -> None:
        if not r.full or not r.text.strip():
            return
        self.count += 1
        sep = "." if self.vtt else ","
        if not self.vtt:
            self.out.write(f"{self.count}\n")
        self.out.write(
            f"{_clock(r.start_time, sep)} --> {_clock(r.end_time, sep)}\n{r.text.strip()}\n\n"
        )
        self.out.flush()

    def close(self) -> None:
        self.out.flush()


Writer = TextWriter | JsonlWriter | SubtitleWriter


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
