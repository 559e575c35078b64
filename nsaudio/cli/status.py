"""The live status line of ``nsaudio stream`` on a terminal, and the one owner of that terminal.

While it is up, :class:`StatusLine` is the only writer to the terminal: the status row at
the bottom, the live partial row above it, transcript lines (when stdout is that same
terminal) and log records all go through it under one lock, each scrolled line written
between an erase of the live rows and their redraw, so no line is ever torn::

    the first sentence, final                        <- transcript and log lines scroll
    and the partial of the next on                   <- live partial row (text output)
    [####......] 0:12/0:26 ETA 0:14  -23.4 dBFS [######....] speech   sent   11.2 s ...

Threads. A timer thread of its own redraws the status about ten times a second from plain
counters (the energy gate's, the sink's), read without locks. The send path (the pipeline
thread, the sink's event loop) never takes the terminal lock: a log record from any thread
is queued and written by the timer, unless a thousand are waiting (``-vvv`` frame dumps),
when its writer prints the backlog itself. Results reach the terminal on the sink's
delivery thread, which already stands apart from the send path. The timer is guarded: an
exception there (or in drawing) is reported once and takes the status line down, never the
stream.

Stopping. :meth:`StatusLine.close` erases the live rows, prints the queued log lines, shows
the cursor again and hands the terminal back (later lines pass straight through); ``stream``
calls it on the first Ctrl-C, before a broken-pipe or error line and before its summary.

Written on the standard library rather than tqdm or rich, measured on this machine (Python
3.11, two cores): importing tqdm takes 94 ms (it loads ``importlib.metadata`` for its
version), ``rich.live`` 67 ms and a hundred modules (and pulls in pygments, markdown-it and
mdurl), this module a millisecond. tqdm draws bars that callers ``update()``, with nothing
for a partial line that is rewritten above the bar, and counts a Devanagari vowel sign as a
cell ("नमस्ते": 6 for 4). rich's ``Live`` measures text right, but prints above itself only
what goes through its console or the ``sys.stdout``/``sys.stderr`` it swaps in, and an
exception in its refresh thread ends that thread with a traceback. What is needed here is
two rows redrawn with ``\\r``, ``ESC[K`` and ``ESC[A`` and a width that counts combining
marks as 0 cells and wide characters as 2 (``unicodedata``).
"""

from __future__ import annotations

import collections
import io
import logging
import os
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO, cast

from ..meter import LevelMeter
from ..neuralspace.protocol import TranscriptResult
from .output import Writer, make_writer

__all__ = ["Fields", "StatusLine", "display_width", "fit", "render"]

#: Seconds between redraws.
INTERVAL = 0.1
#: Log lines queued for the timer before the thread logging writes the backlog itself.
LOG_BACKLOG = 1000

_HIDE_CURSOR, _SHOW_CURSOR = "\x1b[?25l", "\x1b[?25h"
_ERASE_ROW = "\r\x1b[K"  # to column 0, clear to the end of the row
_ERASE_ROW_ABOVE = "\x1b[A\x1b[K"  # up one row (same column, 0), clear it
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
class Fields:
    """What the status line shows; seconds throughout."""

    position: float  # in the stream: audio processed, paced by the sender's clock
    duration: float | None  # of the input, when known (files): a progress bar
    eta: float | None  # until the last audio is sent, when it can be told
    level_db: float  # of the newest frame, dBFS
    speech: bool  # the gate's label of that frame
    sent: float
    skipped: float | None  # with --gate
    reconnects: int
    partial_age: float | None  # since the newest partial result (None: none yet, or off)


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
    state = "speech" if f.speech else "silence"
    level = max(-99.9, f.level_db)  # silence is -100: one width for every level
    parts.append(f"{level:5.1f} dBFS {_LEVEL.bar(level)} {state:<7}")
    parts.append(f"sent {f.sent:5.1f} s")
    if f.skipped is not None:
        parts.append(f"skipped {f.skipped:5.1f} s")
    if f.reconnects:
        parts.append(f"reconnects {f.reconnects}")
    if f.partial_age is not None:
        parts.append(f"partial {f.partial_age:4.1f} s ago")
    return "  ".join(parts)


class StreamProgress:
    """Reads a running stream's counters into :class:`Fields`: plain attribute reads, no
    locks, nothing the send path waits for."""

    def __init__(
        self,
        *,
        gate: Any,
        sink: Any,
        rate: int,
        duration: float | None,
        pace: float,
        gated: bool,
        partials: bool,
        watch: Any,
        now: float,
    ) -> None:
        self.gate, self.sink, self.rate = gate, sink, rate
        self.duration, self.pace, self.gated, self.partials = duration, pace, gated, partials
        self.watch = watch  # has last_partial: monotonic time of the newest partial, or None
        self.t0 = now

    def __call__(self, now: float) -> Fields:
        gate, rate = self.gate, self.rate
        position = gate.seen_samples / rate
        if self.pace > 0:
            # The pipeline reads ahead of the paced sender by its queue (seconds of audio):
            # the sender's clock tells where the stream is, never past what was processed.
            position = min(position, (now - self.t0) * self.pace)
        eta = None
        if self.duration:
            left = max(0.0, self.duration - position)
            if self.pace > 0:
                eta = left / self.pace
            elif position > 0 and now - self.t0 >= 1.0:
                eta = left * (now - self.t0) / position
        counters = self.sink.counters
        last = self.watch.last_partial
        return Fields(
            position=position,
            duration=self.duration,
            eta=eta,
            level_db=gate.level_db,
            speech=bool(gate.speaking),
            sent=counters.get("samples_sent", 0) / rate,
            skipped=gate.skipped_samples / rate if self.gated else None,
            reconnects=counters.get("reconnects", 0),
            partial_age=None if not self.partials or last is None else max(0.0, now - last),
        )


def source_seconds(source: Any, limit: float | None) -> float | None:
    """How long a file's audio is (``limit``: ``--duration``); None for live input or where
    the header does not say."""
    frames = None if getattr(source, "live", False) else getattr(source, "frames", None)
    if not frames:
        return limit
    seconds = frames / source.rate
    return seconds if limit is None else min(seconds, limit)


class StatusLine:
    """The owner of the terminal on ``err`` (stderr) while the status line is up.

    :meth:`writer` makes the transcript writer (through this owner when stdout is the same
    terminal), :meth:`start` the timer, :meth:`close` hands the terminal back.
    """

    def __init__(self, err: TextIO, *, interval: float = INTERVAL) -> None:
        self.err = err
        self.interval = interval
        self._lock = threading.RLock()
        self._partial = ""
        self._status = ""
        self._rows = 0  # rows of the live area on the terminal now
        self._closed = False
        self._cursor_hidden = False
        self._logs: collections.deque[str] = collections.deque()
        self._log_stream = _LogStream(self)
        self._handlers: list[tuple[logging.StreamHandler[Any], Any]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: The exception that took the status line down, if one did.
        self.failed: BaseException | None = None
        #: ``time.monotonic()`` of the newest partial result (set on the delivery thread).
        self.last_partial: float | None = None

    # -- set-up ------------------------------------------------------------------------

    def writer(self, kind: str, out: TextIO, *, live: bool) -> _Watched:
        """:func:`~.output.make_writer`'s writer, its lines to ``out`` through this owner
        when ``out`` is this terminal; text partials then show in the live row."""
        shared = _same_terminal(out, self.err)
        target = cast(TextIO, _Lines(self, out)) if shared else out
        inner = make_writer(kind, target, live=live and not shared)
        return _Watched(inner, self, partials=shared and live and kind == "text")

    def start(
        self,
        *,
        source: Any,
        gate: Any,
        sink: Any,
        rate: int,
        pace: float,
        limit: float | None = None,
        gated: bool = False,
        partials: bool = True,
    ) -> None:
        """Route the ``nsaudio`` log records through this owner and start the timer."""
        fields = StreamProgress(
            gate=gate, sink=sink, rate=rate, duration=source_seconds(source, limit), pace=pace,
            gated=gated, partials=partials, watch=self, now=time.monotonic(),
        )  # fmt: skip
        self.run(fields)

    def run(self, fields: Callable[[float], Fields]) -> None:
        """Start redrawing ``render(fields(now))``; the lower-level half of :meth:`start`."""
        for name in ("nsaudio", "websockets.client"):
            for handler in logging.getLogger(name).handlers:
                if type(handler) is logging.StreamHandler and handler.stream is self.err:
                    self._handlers.append((handler, handler.setStream(self._log_stream)))
        self._thread = threading.Thread(
            target=self._tick, args=(fields,), name="nsaudio-status", daemon=True
        )
        self._thread.start()

    # -- the terminal ------------------------------------------------------------------

    def _width(self) -> int:
        try:
            return os.get_terminal_size(self.err.fileno()).columns
        except (OSError, ValueError, AttributeError):
            return 80

    def _erase(self) -> str:
        rows, self._rows = self._rows, 0
        return _ERASE_ROW + _ERASE_ROW_ABOVE * (rows - 1) if rows else ""

    def _live(self) -> str:
        """The live rows, each a column short of the width so the terminal never wraps."""
        width = self._width() - 1
        rows = []
        if self._partial:
            text = printable(self._partial)
            if display_width(text) > width:
                text = "..." + fit(text, width - 3, tail=True) if width > 3 else ""
            if text:
                rows.append(text)
        if self._status:
            rows.append(fit(self._status, width))
        self._rows = len(rows)
        prefix = ""
        if rows and not self._cursor_hidden:
            prefix, self._cursor_hidden = _HIDE_CURSOR, True
        return prefix + "\n".join(rows)

    def _redraw(self, above: str = "") -> None:
        """Erase the live rows, write ``above`` (whole lines, on stderr), draw them again."""
        self.err.write(self._erase() + above + self._live())
        self.err.flush()

    def _above(self, stream: TextIO, text: str) -> None:
        """Whole lines to ``stream`` (stdout, this terminal) above the live rows."""
        with self._lock:
            if not self._closed:
                self._guarded(self._erase_now)
            stream.write(text)  # its errors are the writer's (the sink reports them)
            stream.flush()
            if not self._closed:
                self._guarded(self._redraw)

    def _erase_now(self) -> None:
        text = self._erase()
        if text:
            self.err.write(text)
            self.err.flush()

    def partial(self, text: str, *, draw: bool = True) -> None:
        with self._lock:
            self._partial = text
            if draw and not self._closed:
                self._guarded(self._redraw)

    def _log(self, text: str) -> None:
        """A log record (from any thread): queued for the timer, or printed now when the
        status line is down or the queue is long."""
        if self._closed:
            self.err.write(text)
            self.err.flush()
            return
        self._logs.append(text if text.endswith("\n") else text + "\n")
        if len(self._logs) >= LOG_BACKLOG:
            with self._lock:
                self._print_logs()

    def _print_logs(self) -> None:
        lines = []
        while self._logs:
            lines.append(self._logs.popleft())
        if lines:
            if self._closed:
                self.err.write("".join(lines))
                self.err.flush()
            else:
                self._guarded(lambda: self._redraw("".join(lines)))

    # -- the timer and its guard -------------------------------------------------------

    def _tick(self, fields: Callable[[float], Fields]) -> None:
        try:
            while True:
                line = render(fields(time.monotonic()))
                with self._lock:
                    if self._closed:
                        return
                    self._status = line
                    self._print_logs()
                    self._guarded(self._redraw)
                if self._stop.wait(self.interval):
                    return
        except Exception as err:
            self._fail(err)

    def _guarded(self, draw: Callable[[], None]) -> None:
        try:
            draw()
        except Exception as err:
            self._fail(err)

    def _fail(self, err: BaseException) -> None:
        """Say once what took the status line down, and hand the terminal back."""
        with self._lock:
            if self.failed is not None or self._closed:
                return
            self.failed = err
            self._status = self._partial = ""
            self._stop_drawing()
            note = f"nsaudio: WARNING: the status line stopped ({type(err).__name__}: {err})\n"
            try:
                self.err.write(note)
                self.err.flush()
            except Exception:
                pass  # the terminal itself is what failed

    def _stop_drawing(self) -> None:
        """Under the lock: erase the live rows, print queued logs, show the cursor."""
        self._stop.set()
        text = self._erase()
        self._closed = True
        while self._logs:
            text += self._logs.popleft()
        if self._cursor_hidden:
            text += _SHOW_CURSOR
            self._cursor_hidden = False
        if text:
            try:
                self.err.write(text)
                self.err.flush()
            except Exception:
                pass

    def close(self) -> None:
        """Erase the live rows and hand the terminal back; safe to call again, from any
        thread or a signal handler (it waits for nothing)."""
        with self._lock:
            if not self._closed:
                self._stop_drawing()
        handlers, self._handlers = self._handlers, []
        for handler, stream in handlers:
            handler.setStream(stream)
        with self._lock:
            self._print_logs()  # any record that came in while the handlers changed


class _Lines(io.TextIOBase):
    """Stdout for a transcript writer: whole lines go to the terminal through the owner."""

    def __init__(self, owner: StatusLine, stream: TextIO) -> None:
        super().__init__()
        self.owner, self.stream = owner, stream
        self._pending = ""

    def write(self, s: str) -> int:
        self._pending += s
        if "\n" in self._pending:
            lines, _, self._pending = self._pending.rpartition("\n")
            self.owner._above(self.stream, lines + "\n")
        return len(s)

    def isatty(self) -> bool:
        return True


class _LogStream(io.TextIOBase):
    """What the ``nsaudio`` log handlers write to while the status line is up."""

    def __init__(self, owner: StatusLine) -> None:
        super().__init__()
        self.owner = owner

    def write(self, s: str) -> int:
        self.owner._log(s)
        return len(s)


class _Watched:
    """The transcript writer, noting the time of each partial result for the status line
    and showing text partials in the live row."""

    def __init__(self, inner: Writer, owner: StatusLine, *, partials: bool) -> None:
        self.inner, self.owner, self.partials = inner, owner, partials

    @property
    def written(self) -> int:
        return self.inner.written

    def write(self, r: TranscriptResult) -> None:
        if not r.full:
            self.owner.last_partial = time.monotonic()
            if self.partials:
                self.owner.partial(r.text.strip())
        elif self.partials:
            self.owner.partial("", draw=False)  # the full line's redraw leaves it out
        self.inner.write(r)

    def close(self) -> None:
        self.inner.close()


def _same_terminal(out: TextIO, err: TextIO) -> bool:
    try:
        return out.isatty() and os.path.samestat(os.fstat(out.fileno()), os.fstat(err.fileno()))
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return False
