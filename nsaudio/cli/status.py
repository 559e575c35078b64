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

What the row says (pure, from the counters) is :mod:`.status_fields`; this module draws it.

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
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TextIO, cast

from ..neuralspace.protocol import TranscriptResult
from .output import Writer, labelled, make_writer
from .status_fields import (
    Fields,
    LaneReadings,
    StreamProgress,
    display_width,
    fit,
    printable,
    render,
    source_seconds,
)

if TYPE_CHECKING:
    from ..sources import Source

__all__ = ["StatusLine"]

#: Seconds between redraws.
INTERVAL = 0.1
#: Log lines queued for the timer before the thread logging writes the backlog itself.
LOG_BACKLOG = 1000

_HIDE_CURSOR, _SHOW_CURSOR = "\x1b[?25l", "\x1b[?25h"
_ERASE_ROW = "\r\x1b[K"  # to column 0, clear to the end of the row
_ERASE_ROW_ABOVE = "\x1b[A\x1b[K"  # up one row (same column, 0), clear it


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
        lanes: Sequence[LaneReadings],
        source: Source,
        rate: int,
        pace: float,
        limit: float | None = None,
        gated: bool = False,
        partials: bool = True,
    ) -> None:
        """Route the ``nsaudio`` log records through this owner and start the timer.

        ``lanes``: the stream's sessions (see :class:`~.status_fields.StreamProgress`),
        ``source``: its input, ``rate``: of its frames, ``pace``: the sender's, ``limit``:
        ``--duration``, ``gated``: ``--gate`` (show what it skipped), ``partials``: partial
        results are asked for (show how long ago the newest came).
        """
        fields = StreamProgress(
            lanes=lanes, rate=rate, duration=source_seconds(source, limit), pace=pace,
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
            columns = os.get_terminal_size(self.err.fileno()).columns
        except (OSError, ValueError, AttributeError):
            columns = 0
        return terminal_columns(columns, os.environ)

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
                self.owner.partial(labelled(r))
        elif self.partials:
            self.owner.partial("", draw=False)  # the full line's redraw leaves it out
        self.inner.write(r)

    def close(self) -> None:
        self.inner.close()


def terminal_columns(reported: int, environ: Mapping[str, str]) -> int:
    """The width to draw in: what the terminal reports, or where it reports none (0 columns:
    ``script`` without a terminal, some containers' ptys) ``$COLUMNS``, then 80, as
    :func:`shutil.get_terminal_size` falls back."""
    if reported > 0:
        return reported
    try:
        columns = int(environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    return columns if columns > 0 else 80


def _same_terminal(out: TextIO, err: TextIO) -> bool:
    try:
        return out.isatty() and os.path.samestat(os.fstat(out.fileno()), os.fstat(err.fileno()))
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return False
