"""What the status line of ``nsaudio stream`` says: its fields, read from a running stream's
counters, rendered into one row that fits the terminal.

Pure: no terminal, no threads. Widths are terminal cells: combining marks and format
characters take none, East Asian wide and full-width characters two (``unicodedata``), so a
row of Hindi, Arabic or Japanese text is cut where the terminal would wrap it.
:mod:`.status` owns the terminal and draws these rows.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..detectors.energy import SILENCE_DB
from ..meter import LevelMeter
from ..stages.trail import LevelTrail

__all__ = [
    "ChannelLevel",
    "Fields",
    "GateReadings",
    "LaneReadings",
    "PartialClock",
    "SendCounters",
    "SinkReadings",
    "StreamProgress",
    "clock",
    "display_width",
    "fit",
    "printable",
    "render",
    "source_seconds",
]

_LEVEL = LevelMeter(width=10)  # the bar of `nsaudio check`'s meter: -60 to 0 dBFS


def char_width(ch: str) -> int:
    """Terminal cells of one character: 0 for combining marks and format characters, 2 for
    East Asian wide and full-width ones, else 1."""
    if ch.isascii():
        return 1
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def display_width(text: str) -> int:
    """Terminal cells ``text`` takes."""
    return len(text) if text.isascii() else sum(map(char_width, text))


def printable(text: str) -> str:
    """Control characters (a newline, an escape sequence in a result) as spaces: a live row
    must not move the cursor."""
    if text.isprintable():
        return text
    return "".join(" " if unicodedata.category(c) == "Cc" else c for c in text)


def fit(text: str, width: int, *, tail: bool = False) -> str:
    """The start (or with ``tail`` the end) of ``text`` that fills at most ``width`` cells;
    a wide character that would straddle the edge is left out, and marks (combining, or
    spacing like a Devanagari vowel sign) stay with their base character."""
    if width <= 0:
        return ""
    if text.isascii():
        return text[-width:] if tail else text[:width]
    chars = reversed(text) if tail else iter(text)
    kept: list[str] = []
    used = 0
    for ch in chars:
        w = char_width(ch)
        if used + w > width:
            break
        kept.append(ch)
        used += w
    if tail:
        kept.reverse()
        while kept and unicodedata.category(kept[0]).startswith("M"):  # base left out
            kept.pop(0)
    return "".join(kept)


def clock(seconds: float) -> str:
    """``0:07``, ``12:34``, ``1:02:03``."""
    s = max(0, int(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


@dataclass(frozen=True)
class ChannelLevel:
    """One channel's level and the gate's label, when each channel has a session of its own."""

    name: str
    level_db: float
    speech: bool


@dataclass(frozen=True)
class Fields:
    """What the status line shows; seconds throughout. With ``channels`` (a session per
    channel), their levels replace the single one, and ``sent``/``skipped`` are totals."""

    position: float  # in the stream: of the audio being sent
    duration: float | None  # of the input, when known (files): a progress bar
    eta: float | None  # until the last audio is sent, when it can be told
    level_db: float  # of the frame being sent, dBFS
    speech: bool  # the gate's label of that frame
    sent: float
    skipped: float | None  # with --gate
    reconnects: int
    partial_age: float | None  # since the newest partial result (None: none yet, or off)
    channels: tuple[ChannelLevel, ...] = ()
    #: Silence sent after the stream's end (so the service finalises the last words), and
    #: any more the drain sent: not part of ``sent``, which never passes the input's length.
    end_silence: float = 0.0


def render(f: Fields) -> str:
    """The status line, fixed-width fields left to right by importance (the caller cuts it
    to the terminal's width)."""
    if f.duration:
        done = min(1.0, max(0.0, f.position / f.duration))
        cells = round(10 * done)
        total = clock(f.duration)
        eta = "-:--" if f.eta is None else clock(f.eta)
        parts = [
            f"[{'#' * cells}{'.' * (10 - cells)}] {clock(f.position):>{len(total)}}/{total} "
            f"ETA {eta:>{len(total)}}"
        ]
    else:
        parts = [f"live {clock(f.position):>5}"]
    if f.channels:  # no bars: two or more levels must fit
        levels = (f"{c.name} {_level(c.level_db):5.1f} dBFS {_state(c.speech)}" for c in f.channels)
        parts.append("  ".join(levels))
    else:
        level = _level(f.level_db)
        parts.append(f"{level:5.1f} dBFS {_LEVEL.bar(level)} {_state(f.speech)}")
    sent = f"sent {f.sent:5.1f} s"
    if f.end_silence > 0:
        sent += f" + {f.end_silence:.1f} s end silence"
    parts.append(sent)
    if f.skipped is not None:
        parts.append(f"skipped {f.skipped:5.1f} s")
    if f.reconnects:
        parts.append(f"reconnects {f.reconnects}")
    if f.partial_age is not None:
        parts.append(f"partial {f.partial_age:4.1f} s ago")
    return "  ".join(parts)


def _level(db: float) -> float:
    return max(-99.9, db)  # silence is -100: one width for every level


def _state(speech: bool) -> str:
    return f"{'speech' if speech else 'silence':<7}"


class GateReadings(Protocol):
    """What the status line reads of a speech gate (:class:`~nsaudio.stages.SpeechGate`):
    the trail of the frames it labelled, which it asks the gate to keep."""

    def keep_trail(self) -> LevelTrail: ...


class SendCounters(Protocol):
    """What the status line reads of a sink's counters
    (:class:`~nsaudio.sinks.session.SessionCounters`)."""

    @property
    def samples_sent(self) -> int: ...
    @property
    def silence_samples(self) -> int: ...
    @property
    def reconnects(self) -> int: ...


class SinkReadings(Protocol):
    """What the status line reads of a streaming sink: its counters."""

    @property
    def counters(self) -> SendCounters: ...


class LaneReadings(Protocol):
    """One session of a stream: its channel's label (None for a stream of one session), the
    gate that labels its frames and the sink that sends them."""

    @property
    def name(self) -> str | None: ...
    @property
    def gate(self) -> GateReadings: ...
    @property
    def sink(self) -> SinkReadings: ...


class PartialClock(Protocol):
    """Knows when the newest partial result came (``time.monotonic()``, None before one)."""

    @property
    def last_partial(self) -> float | None: ...


class StreamProgress:
    """Reads a running stream's counters into :class:`Fields`: plain attribute reads, no
    locks, nothing the send path waits for.

    ``lanes``: the stream's sessions, one, or one per channel (``--split-channels``, every
    one named); ``rate``: of their frames; ``duration``: the input's, when known;
    ``watch``: has ``last_partial``, the monotonic time of the newest partial result.

    What is shown is the frame being *sent*, not the newest one read: the pipeline reads
    seconds ahead of a paced sender (see :class:`_Sending`). ``sent`` never passes the
    input's length: the silence the sinks make after it is counted apart (``end_silence``).
    """

    def __init__(
        self,
        *,
        lanes: Sequence[LaneReadings],
        rate: int,
        duration: float | None,
        pace: float,
        gated: bool,
        partials: bool,
        watch: PartialClock,
        now: float,
    ) -> None:
        if not lanes:
            raise ValueError("a stream has at least one session")
        self.lanes, self.rate = list(lanes), rate
        self.duration, self.pace, self.gated, self.partials = duration, pace, gated, partials
        self.watch = watch  # has last_partial: monotonic time of the newest partial, or None
        self.t0 = now
        self._sending = [_Sending(lane, rate, pace, now) for lane in self.lanes]

    def __call__(self, now: float) -> Fields:
        lanes, rate = self.lanes, self.rate
        seen = [sending(now) for sending in self._sending]
        position = min(s.position for s in seen) / rate  # as far as every session has sent
        eta = None
        if self.duration:
            left = max(0.0, self.duration - position)
            if self.pace > 0:
                eta = left / self.pace
            elif position > 0 and now - self.t0 >= 1.0:
                eta = left * (now - self.t0) / position
        counters = [lane.sink.counters for lane in lanes]
        last = self.watch.last_partial
        return Fields(
            position=position,
            duration=self.duration,
            eta=eta,
            level_db=seen[0].level_db,
            speech=seen[0].speech,
            sent=sum(s.sent for s in seen) / rate,
            skipped=sum(max(0, s.position - s.sent) for s in seen) / rate if self.gated else None,
            reconnects=sum(c.reconnects for c in counters),
            partial_age=None if not self.partials or last is None else max(0.0, now - last),
            channels=tuple(
                ChannelLevel(lane.name, s.level_db, s.speech)
                for lane, s in zip(lanes, seen, strict=True)
                if lane.name is not None
            ),
            end_silence=sum(c.silence_samples for c in counters) / rate,
        )


@dataclass(frozen=True)
class _Sent:
    """Where one session's sender is: a stream position and its stream audio sent (samples),
    and the level and label of the frame it is sending."""

    position: int
    sent: int
    level_db: float
    speech: bool


class _Sending:
    """One session's sender, as seen from its counters and its gate's trail
    (:class:`~nsaudio.stages.trail.LevelTrail`).

    The sink counts the samples it handed to the service, the silence it made itself apart;
    the trail says which stream position the last of them came from, and that frame's level
    and label. Where the gate skips a gap, or a paced sender waits for the next frame's
    time, nothing is sent: the position then moves on at the pace from the last frame sent,
    as far as the gate has seen. It never goes back.
    """

    def __init__(self, lane: LaneReadings, rate: int, pace: float, now: float) -> None:
        self.lane, self.rate, self.pace, self.t0 = lane, rate, pace, now
        self.trail = lane.gate.keep_trail()
        self._sent = 0  # stream samples sent, as last seen
        self._since = now  # when that changed
        self._position = 0  # stream samples, as last shown

    def __call__(self, now: float) -> _Sent:
        counters, trail = self.lane.sink.counters, self.trail
        sent = counters.samples_sent - counters.silence_samples  # the stream's own audio
        if sent != self._sent:
            self._sent, self._since = sent, now
        position = trail.position_of(sent)
        gap_end = trail.gap_end(sent)
        if gap_end is not None and gap_end > position and sent:
            if self.pace > 0:
                position += round((now - self._since) * self.pace * self.rate)
            position = min(position, gap_end) if self.pace > 0 else gap_end
        elif gap_end is not None and not sent:  # nothing sent yet: a gap from the start
            clock = (now - self.t0) * self.pace * self.rate if self.pace > 0 else gap_end
            position = min(round(clock), gap_end)
        self._position = position = max(self._position, position)
        # The stream's last frame has gone: what is being sent now is the sink's silence.
        frame = trail.at(position - 1) if not counters.silence_samples else None
        if frame is None:
            return _Sent(position, sent, SILENCE_DB, False)
        return _Sent(position, sent, frame.level_db, frame.speech)


def source_seconds(source: Any, limit: float | None) -> float | None:
    """How long a file's audio is (``limit``: ``--duration``); None for live input or where
    the header does not say."""
    frames = None if getattr(source, "live", False) else getattr(source, "frames", None)
    if not frames:
        return limit
    seconds = frames / source.rate
    return seconds if limit is None else min(seconds, limit)
