"""The one event loop that owns every WebSocket of this process.

Each :class:`~nsaudio.sinks.neuralspace.NeuralSpaceSink` runs as coroutines on this loop, so
exactly one thread reads and writes any socket (OpenSSL forbids two), and a process carries
hundreds of streams without a thread each. Other threads reach the loop only through
:meth:`SocketLoop.submit`, :meth:`SocketLoop.call` and :meth:`SocketLoop.notify`.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

__all__ = ["TICK_S", "SocketLoop", "new_loop"]

log = logging.getLogger("nsaudio.neuralspace")

#: How often every stream's session machine is ticked (pings, pong deadlines, the drain).
TICK_S = 0.1

#: How long the end of the process waits for the loop's thread to stop.
STOP_TIMEOUT_S = 2.0


def new_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop when it is installed (the ``gateway`` extra brings it), else
    asyncio's.

    Every session of the process runs on it (``stream``, the APIs, the gateway). The loop's
    own work per socket event is what a gateway with hundreds of calls spends most on after
    its parsing: with 200 Twilio calls on one process, uvloop took about 10 % less CPU and
    kept the p99 latency within 50 ms in 6 runs of 6, asyncio's loop in 2 of 6 (34-101 ms),
    runs alternating (``benchmarks/gateway.py``); in a slower phase of the same machine,
    uvloop's was within it in 8 runs of 16. Nothing here depends on which loop it is.
    """
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class SocketLoop:
    """A daemon thread running an asyncio loop; started on first use, shared by all sinks."""

    _instance: SocketLoop | None = None
    _instance_lock = threading.Lock()

    def __init__(self) -> None:
        self.loop = new_loop()
        self.loop.set_exception_handler(self._unhandled)
        self._ready: dict[int, Callable[[], None]] = {}
        self._ready_lock = threading.Lock()
        self._wake_pending = False
        self._held = threading.local()  # per thread: notifies wait for the end of held()
        self._tickers: dict[int, Callable[[], None]] = {}
        self._tick_handle: asyncio.TimerHandle | None = None
        self.thread = threading.Thread(target=self._run, name="nsaudio-sockets", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.loop.run_forever()
        finally:
            try:
                self.loop.close()  # on its own thread, while the interpreter is whole
            except Exception:  # nothing to tell at exit: the sessions are over
                log.debug("closing the socket loop", exc_info=True)

    @classmethod
    def get(cls) -> SocketLoop:
        with cls._instance_lock:
            if cls._instance is None or not cls._instance.thread.is_alive():
                cls._instance = cls()
            return cls._instance

    @classmethod
    def stop(cls, timeout: float = STOP_TIMEOUT_S) -> bool:
        """End the loop's thread, if it runs; True once it has ended (False: still running
        after ``timeout``, a callback that never returns). Called at exit.

        The thread is a daemon so that nothing waits for it, but the interpreter must not be
        torn down under a running loop: with uvloop's, ``stream`` died of SIGSEGV after its
        work was done in 2 of 360 runs (CI saw one). Stopped here, at exit (``atexit``, and
        first thing in the CLI's :func:`~nsaudio.cli.main.exit_now`), the loop closes on its
        own thread before the teardown; none in 810 runs. Sessions still open are cut, as the
        process's end would cut them; the next :meth:`get` starts a new loop.
        """
        with cls._instance_lock:
            instance = cls._instance
            if instance is not None and instance.thread is threading.current_thread():
                raise RuntimeError("the socket loop cannot be stopped from its own thread")
            cls._instance = None
        if instance is None or not instance.thread.is_alive():
            return True
        with contextlib.suppress(RuntimeError):  # closed meanwhile
            instance.loop.call_soon_threadsafe(instance.loop.stop)
        instance.thread.join(timeout)
        if instance.thread.is_alive():
            log.debug("the socket loop did not stop within %.1f s", timeout)
            return False
        return True

    def submit(self, coro: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the loop, soon."""
        self.loop.call_soon_threadsafe(fn, *args)

    def notify(self, key: int, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the loop soon; many notifies before it runs cost one wake-up.

        A producer feeding hundreds of streams in one burst wakes the loop once, not once
        per stream; ``key`` names the stream, so a stream notified twice runs ``fn`` once.
        """
        with self._ready_lock:
            self._ready[key] = fn
            if self._wake_pending or getattr(self._held, "on", False):
                return
            self._wake_pending = True
        self.loop.call_soon_threadsafe(self._run_ready)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Notifies made by this thread inside the block wake the loop once, at its end.

        Each wake-up from another thread is a write to the loop's self-pipe, and the loop
        thread, woken, takes the GIL from the writer: an asyncio caller sending to hundreds
        of streams in one turn of its loop would pay that once per stream.

        On the loop's own thread (the gateway, whose listeners run on this loop), the
        notified run at the end of the block: there is no one to wake, and a wake-up would
        hold their frames back behind every socket event of the loop's next turn (at 200
        calls, half the time from a packet's arrival to its frame's send).
        """
        self._held.on = True
        try:
            yield
        finally:
            self._held.on = False
            with self._ready_lock:
                wake = bool(self._ready) and not self._wake_pending
                if wake:
                    self._wake_pending = True
            if wake:
                if threading.get_ident() == self.thread.ident:
                    self._run_ready()
                else:
                    self.loop.call_soon_threadsafe(self._run_ready)

    def _run_ready(self) -> None:
        with self._ready_lock:
            ready, self._ready = self._ready, {}
            self._wake_pending = False
        for fn in ready.values():
            try:
                fn()
            except Exception as err:  # not the others' loss, and not their caller's
                self._unhandled(self.loop, {"message": "a notified callback", "exception": err})

    def every_tick(self, key: int, fn: Callable[[], None] | None) -> None:
        """On the loop: call ``fn`` every ``TICK_S`` (None: stop). One timer for every stream,
        so a hundred idle streams cost one wake-up a tick, not a hundred."""
        if fn is None:
            self._tickers.pop(key, None)
            return
        self._tickers[key] = fn
        if self._tick_handle is None:
            self._tick_handle = self.loop.call_later(TICK_S, self._tick)

    def _tick(self) -> None:
        for fn in list(self._tickers.values()):
            fn()
        self._tick_handle = self.loop.call_later(TICK_S, self._tick) if self._tickers else None

    def _unhandled(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        # Every sink guards its own coroutines; whatever lands here is a bug worth one line.
        err = context.get("exception")
        log.debug("event loop: %s", context.get("message"), exc_info=err)


atexit.register(SocketLoop.stop)
