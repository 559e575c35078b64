"""Frames to NeuralSpace VoiceAI over a WebSocket, transcripts back; no audio lost on a drop.

The I/O shell around :class:`~.session.SessionMachine`, which makes every decision (replay,
retry, liveness, the end and its verdict). Thread map — who may call what:

- **The pipeline's thread** (the caller): ``open()``, ``write()``, ``close()``, and on
  failure ``abort()``. ``write()`` puts a frame into a bounded ring and notifies the socket
  loop; ``open()`` and ``close()`` wait for the loop to say how things went.
- **Any thread** (a signal handler, a UI): ``hurry()`` (the user stopped: end within a
  budget) and ``abort()`` (stop at once). Both only post to the loop.
- **The socket loop** (:mod:`.loop`, one thread for every sink of the process) owns the
  sockets and the machine: it takes frames from the ring (paced for files) in one place,
  ``_feed``; sends them; reads results; pings; opens and closes sessions; and carries out the
  machine's actions. Nothing else touches a socket or the machine.
- **The consumer**: ``on_result`` runs on a delivery thread of its own, or ``results()`` is
  iterated by whoever asks (:mod:`.delivery`, bounded): a slow or failing consumer never
  delays a pong or a send.

``close()`` returns when every span of speech was covered by a full result and every result
was delivered; otherwise it raises what went wrong: :class:`~nsaudio.errors.ConsumerError`
when the consumer failed, :class:`~nsaudio.errors.UntranscribedError` naming the seconds of
speech that went untranscribed, or the failure that ended the stream.

The asyncio API (:mod:`nsaudio.aio`) drives the same sink from another event loop, which must
never wait: ``watch()``, ``start()``, ``offer()``, ``take_results()``, ``end()`` and
``cancel()`` are the verbs above without their waits, and the watcher says when to look again.

The send path writes through ``websockets`` internals (``protocol.send_binary`` and
``data_to_send()`` on the loop's thread, without a coroutine per frame), which is why the
dependency is pinned to the major version tested (see ``pyproject.toml``).
"""

from __future__ import annotations

import asyncio
import collections
import copy
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

from ..blocks import Frame
from ..errors import ConsumerError, InputError, NsAudioError, RingClosed, ServiceError
from ..neuralspace.connection import CLOSE_TIMEOUT, Connector, describe_end
from ..neuralspace.protocol import StreamParams, Transcript, TranscriptResult
from ..ring import Ring
from .config import SessionConfig
from .delivery import Delivery
from .loop import SocketLoop
from .session import (
    Abandon,
    Action,
    Close,
    Deliver,
    Finish,
    Open,
    Outcome,
    Ping,
    Send,
    SessionCounters,
    SessionMachine,
)

__all__ = ["NeuralSpaceSink"]

log = logging.getLogger("nsaudio.neuralspace")

#: Frames handed to a connection and not yet written before the feeder waits.
SEND_BACKLOG = 4


class _Conn:
    """One open session on the loop: its socket, an ordered outbox, and the tasks it owns."""

    def __init__(self, ws: Any, number: int, on_pong: Callable[[_Conn, bytes], None]) -> None:
        from websockets.protocol import State

        # Pongs come straight to the sink (websockets calls acknowledge_pings as it reads
        # each one): one per frame sent, so no future per ping.
        ws.acknowledge_pings = lambda data: on_pong(self, data)
        self.ws = ws
        self.open_state = State.OPEN
        self.number = number
        self.outbox: collections.deque[Send | Ping] = collections.deque()
        self.has_work = asyncio.Event()
        self.tasks: set[asyncio.Task[Any]] = set()

    def abort(self) -> None:
        self.outbox.clear()
        for task in list(self.tasks):
            task.cancel()
        transport = getattr(self.ws, "transport", None)
        if transport is not None:
            transport.abort()


def _flush(ws: Any) -> None:
    """Write what the protocol framed since the last flush in one write: websockets' own
    ``send_data()`` writes each frame (and ping) on its own, a system call each, and once the
    connection is lost asyncio logs a warning for each of them."""
    chunks = ws.protocol.data_to_send()
    if not chunks or ws.transport.is_closing():
        return  # lost: the reader reports how it ended
    data = b"".join(chunks)
    if data:
        ws.transport.write(data)
    if not all(chunks) and ws.transport.can_write_eof():  # websockets' end of data
        ws.transport.write_eof()


class NeuralSpaceSink:
    """Streams int16 LE frames to the service; see the module docstring for who owns what.

    ``base_url``: the service's REST base (``https://voice.neuralspace.ai``; ``http`` maps to
    ``ws`` and ``https`` to ``wss`` for the stream); ``api_key``: sent only in the REST
    calls' ``Authorization`` header, never shown; ``params``: what the stream's URL carries
    (:class:`~nsaudio.neuralspace.protocol.StreamParams`: language, format...).

    ``config`` (a :class:`~nsaudio.sinks.config.SessionConfig`) holds every setting; its
    fields may be given as keyword arguments instead (``pace=1.0, live=True``...).
    ``on_result`` is called with every result (partials too) on a thread of its own; without
    it, iterate ``results()``. ``connector`` replaces how sessions are opened (tests);
    ``ca_file`` is a CA to trust for TLS; ``log_sends`` keeps ``send_log`` (benchmarks).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        params: StreamParams | None = None,
        config: SessionConfig | None = None,
        *,
        on_result: Callable[[TranscriptResult], None] | None = None,
        connector: Connector | None = None,
        ca_file: str | None = None,
        log_sends: bool = False,
        **settings: Any,
    ) -> None:
        unknown = set(settings) - SessionConfig.names()
        if unknown:
            raise TypeError(f"NeuralSpaceSink() got unknown settings: {', '.join(sorted(unknown))}")
        if config is not None and settings:
            raise TypeError("give either config or settings as keyword arguments, not both")
        self.config = c = config if config is not None else SessionConfig(**settings)
        self.params = params or StreamParams()
        self.connector = connector or Connector(
            base_url, api_key, self.params, token_duration=c.token_duration,
            connect_timeout=c.connect_timeout, ca_file=ca_file,
        )  # fmt: skip
        self.pace = c.pace
        self.live = c.live
        self.on_result = on_result
        self.rate = self.params.rate
        self._machine = SessionMachine(self.rate, c, max_chunk_size=self.params.max_chunk_size)
        #: (frame start, frame t_ns, monotonic ns when written to the socket), if asked.
        self.send_log: collections.deque[tuple[int, int, int]] | None = (
            collections.deque(maxlen=200_000) if log_sends else None
        )
        self._ring: Ring[Frame] | None = None
        self._sockets: SocketLoop | None = None
        self._delivery: Delivery | None = None
        self._conns: dict[int, _Conn] = {}
        self._tasks: set[asyncio.Task[Any]] = set()  # opening sessions
        self._closing: set[asyncio.Task[Any]] = set()  # polite closes: they outlive the stream
        self._opened = threading.Event()  # the first session is open, or the run is over
        self._finished = threading.Event()
        self._settled = threading.Event()  # finished, and every polite close has ended
        self._outcome: Outcome | None = None
        self._held: Frame | None = None  # taken from the ring, not yet due (pacing)
        self._t0: int | None = None  # pacing origin, monotonic ns
        self._timer: asyncio.TimerHandle | None = None
        self._input_done = False
        self._feeding = False
        self._depth = 0  # nesting of _apply
        self._unflushed: set[_Conn] = set()  # written to by the protocol, not yet sent
        self._watcher: Callable[[], None] | None = None

    def __repr__(self) -> str:
        return f"NeuralSpaceSink({self.connector.base_url!r}, {self.params!r})"

    @property
    def transcript(self) -> Transcript:
        """The latest full results and the current partial (bounded: ``keep_finals``)."""
        return self._machine.transcript

    @property
    def counters(self) -> SessionCounters:
        """What the stream did so far (see :class:`~nsaudio.sinks.session.SessionCounters`)."""
        return self._machine.counters

    @property
    def outcome(self) -> Outcome | None:
        """How the stream ended (None while it runs)."""
        return self._outcome

    # -- the pipeline's side -------------------------------------------------------------

    def open(self, rate: int) -> None:
        """Open the first session (retrying within the start-up budget), or raise why not."""
        self.start(rate)
        try:
            self._wait(self._opened)
        except BaseException:  # Ctrl-C while connecting: nothing may go on in the background
            self.abort()
            raise
        self._raise_failure()

    def start(self, rate: int) -> None:
        """``open()`` without the wait: the first session opens in the background; ``opened``
        (or ``finished``, with ``raise_failure()`` saying why) tells when."""
        if rate != self.rate:
            raise InputError(
                f"frames at {rate} Hz cannot go to a {self.params.format} stream ({self.rate} Hz)"
            )
        if self._sockets is not None:
            raise RuntimeError("NeuralSpaceSink.open() twice")
        policy = "drop_oldest" if self.live else "block"
        self._ring = Ring.for_seconds(self.config.ring_seconds, rate, policy)
        self._delivery = Delivery(self.on_result, self._consumer_failed, on_ready=self._watcher)
        self._sockets = SocketLoop.get()
        self._sockets.call(self._start)

    def write(self, frame: Frame) -> None:
        """Queue ``frame`` for the connection (waits for room when the queue of a file is
        full; a live stream's queue drops its oldest instead, counted)."""
        if self._ring is None or self._sockets is None:
            raise RuntimeError("NeuralSpaceSink.write() before open()")
        try:
            self._ring.put(frame)
        except RingClosed:
            # Closed under us: the socket loop is finishing with the reason; wait for it to say.
            self._finished.wait(5)
            outcome = self._outcome
            if outcome is not None and outcome.stopped:
                return  # the user stopped the stream: what comes after is not sent
            self._raise_failure()
            raise
        self._sockets.notify(id(self), self._feed)

    def close(self) -> None:
        """End of stream: everything queued is sent, the last results awaited, then 1000.

        Raises if speech went untranscribed, the consumer failed, or the stream failed.
        """
        if self._ring is None or self._sockets is None:
            return
        self._ring.close()
        self._sockets.notify(id(self), self._feed)
        try:
            self._wait(self._finished)
        except BaseException:
            self.abort()
            raise
        assert self._delivery is not None
        self._delivery.join()
        self._raise_failure()

    def abort(self) -> None:
        """Stop at once: no reconnect, no result received after this; with ``on_result``, no
        call to it once this returns. ``results()`` still yields what had arrived."""
        if self._delivery is not None and self.on_result is not None:
            self._delivery.stop()
        if self._ring is not None:
            self._ring.abort()
        if self._sockets is not None and not self._finished.is_set():
            self._sockets.call(self._now, self._machine.abort)
            if threading.current_thread() is not self._sockets.thread:
                self._finished.wait(5)
        if self._delivery is not None:
            self._delivery.end()
        if self._sockets is None:
            self._finished.set()  # never opened: a results() waiting for it ends
            self._notify_watcher()

    def hurry(self, within: float) -> None:
        """The user stopped the stream: stop pacing, and end within ``within`` seconds
        however the service behaves (results until then are delivered; speech not yet
        transcribed by then is named in a warning, and ``close()`` does not raise for it)."""
        self.pace = 0.0
        if self._sockets is not None:
            self._sockets.call(self._now, lambda now: self._machine.hurry(now, within))

    def results(self) -> Iterator[TranscriptResult]:
        """Every result as it arrives (partials too), times absolute; ends with the stream."""
        while self._delivery is None:
            if self._finished.wait(0.05):
                return
        yield from self._delivery

    def stats(self) -> dict[str, Any]:
        """What the stream did, for reports: the counters, and the queue's drops and high water."""
        m = self._machine
        out: dict[str, Any] = dict(vars(m.counters))
        out["speech_samples"] = m.coverage.speech_samples
        out["lost_speech_samples"] = m.coverage.lost_samples
        out["results_dropped"] = self._delivery.dropped if self._delivery else 0
        if self._ring is not None:
            out["dropped_frames"] = self._ring.dropped  # frames (messages), not samples
            out["dropped_samples"] = self._ring.dropped_samples
            out["ring_high_water"] = self._ring.high_water
        return out

    def dropped_audio(self) -> tuple[int, list[tuple[int, int]]]:
        """Samples a live stream's ring dropped before they were sent (sending fell behind),
        and the stream positions of the first of them."""
        if self._ring is None:
            return 0, []
        return self._ring.dropped_samples, list(self._ring.dropped_spans)

    # -- the same without waiting, for an event loop (nsaudio.aio) -------------------------

    def watch(self, fn: Callable[[], None]) -> None:
        """Before ``start()``: call ``fn`` whenever a waiter should look again: the first
        session opened, a result was queued, the ring made room after ``offer()`` found it
        full, the stream finished, or it settled. It runs on the socket loop's thread (or
        the caller's, from ``cancel()``), so it must not block: it schedules a look."""
        self._watcher = fn

    @property
    def opened(self) -> bool:
        """The first session opened (the stream may have finished since)."""
        return self._opened.is_set()

    @property
    def finished(self) -> bool:
        """The stream is over (its polite close may still be under way: ``settled``)."""
        return self._finished.is_set()

    @property
    def settled(self) -> bool:
        """Finished, and the last polite close has ended: ``raise_failure()`` does not wait."""
        return self._settled.is_set()

    def offer(self, frame: Frame, *, wake: bool = True) -> bool:
        """``write()`` without the wait: False when a file's ring is full (nothing queued;
        the watcher is called once it has room). A stream that has finished raises its
        failure once settled, or else ``RingClosed`` (it was aborted or ended, or is ending).
        ``wake=False``: the caller calls ``wake()`` later (once for many frames, see
        ``SocketLoop.held``)."""
        if self._ring is None or self._sockets is None:
            raise RuntimeError("NeuralSpaceSink.offer() before start()")
        try:
            queued = self._ring.offer(frame, self._notify_watcher)
        except RingClosed:
            if self._settled.is_set():
                self._raise_failure()
            raise
        if queued and wake:
            self._sockets.notify(id(self), self._feed)
        return queued

    def wake(self) -> None:
        """Tell the socket loop that frames were offered with ``wake=False``."""
        if self._sockets is not None:
            self._sockets.notify(id(self), self._feed)

    def take_results(self) -> tuple[list[TranscriptResult], bool]:
        """Every result queued for the consumer, without waiting, and whether no more will
        come (see ``Delivery.take_all``)."""
        if self._delivery is None:
            return [], self._finished.is_set()
        return self._delivery.take_all()

    def end(self) -> None:
        """``close()`` without the wait: the input is over; ``settled`` says when the drain
        (and the polite close) is, and ``raise_failure()`` how it went."""
        if self._ring is None or self._sockets is None:
            return
        self._ring.close()
        self._sockets.notify(id(self), self._feed)

    def cancel(self) -> None:
        """``abort()`` without the wait: no reconnect follows, and no result is received
        once the socket loop has taken it (on its next turn: ``finished``), when it also
        closes the sockets."""
        if self._delivery is not None and self.on_result is not None:
            self._delivery.stop()
        if self._ring is not None:
            self._ring.abort()
        if self._sockets is not None and not self._finished.is_set():
            self._sockets.call(self._now, self._machine.abort)
        elif self._sockets is None:  # never started: nothing to close
            self._finished.set()
            self._settled.set()
            self._notify_watcher()

    def fail(self, error: NsAudioError) -> None:
        """End the stream now with ``error`` (the caller's side of it failed: a speech
        detector...): nothing more is taken or sent, no reconnect, the session is closed
        politely; once ``settled``, ``raise_failure()`` raises ``error``."""
        if self._ring is not None:
            self._ring.abort()
        if self._sockets is not None:
            self._sockets.call(self._now, lambda now: self._machine.stop(error, now))
        else:  # never started: nothing to close
            self.cancel()

    def raise_failure(self) -> None:
        """Raise the verdict, if the stream failed (what ``close()`` raises after its wait).
        Once ``settled``, this never waits."""
        self._raise_failure()

    def _notify_watcher(self) -> None:
        if self._watcher is not None:
            self._watcher()

    def _wait(self, event: threading.Event) -> None:
        # In slices, so that Ctrl-C reaches the main thread while it waits.
        while not event.wait(0.2):
            pass

    def _raise_failure(self) -> None:
        """The verdict, in one place: the consumer's failure, then the stream's.

        Once the stream has finished, it first lets the last session's polite close end
        (bounded by the connector's close timeout), so that a process that exits right after
        does not cut the close handshake."""
        if self._finished.is_set():
            self._settled.wait(CLOSE_TIMEOUT + 0.5)
        delivery = self._delivery
        if delivery is not None and delivery.failure is not None:
            raise ConsumerError.of(delivery.failure)
        outcome = self._outcome
        if outcome is not None and outcome.error is not None:
            # A copy: the one raised collects the caller's frames in its traceback, and the
            # socket loop (which outlives this stream) must not keep those alive.
            error = copy.copy(outcome.error)
            error.__cause__ = outcome.error.__cause__
            raise error

    def _consumer_failed(self, err: BaseException) -> None:
        """On the delivery thread: the consumer raised; end the stream without it."""
        error = ConsumerError.of(err)
        if self._ring is not None:
            self._ring.abort()  # the pipeline stops at its next write
        if self._sockets is not None:
            self._sockets.call(self._now, lambda now: self._machine.stop(error, now))

    # -- the socket loop's side ------------------------------------------------------------

    def _now(self, event: Callable[[float], list[Action]]) -> None:
        """Run a machine event now and carry out what it says (on the loop)."""
        try:
            self._apply(event(time.monotonic()))
            self._feed()
        except BaseException as err:  # a callback of the loop's: nobody else would see it
            self._crash(err)

    def _start(self) -> None:
        assert self._sockets is not None
        self._sockets.every_tick(id(self), self._tick)
        self._now(self._machine.start)

    def _tick(self) -> None:
        """Every stream, ten times a second: the machine looks at its clock. Most ticks say
        nothing, and then the feeder has nothing new to look at either."""
        try:
            actions = self._machine.tick(time.monotonic())
            if actions:
                self._apply(actions)
                self._feed()
        except BaseException as err:  # a callback of the loop's: nobody else would see it
            self._crash(err)

    def _feed(self) -> None:
        """The one path from the ring to the machine: frames as the machine, the connection's
        backlog and the pace allow; at the end of the input, the end of the stream. Called on
        every notify, machine event, drained outbox and pacing timer."""
        if self._feeding or self._ring is None or self._machine.done:
            return
        self._feeding = True
        try:
            self._feed_frames(self._ring, self._machine)
        except BaseException as err:
            self._crash(err)
        finally:
            self._feeding = False

    def _feed_frames(self, ring: Ring[Frame], machine: SessionMachine) -> None:
        while not self._input_done:
            if self._held is None and not len(ring) and ring.at_end:
                self._input_done = True
                self._apply(machine.end_of_input(time.monotonic()))
                return
            if not machine.wants_frames:
                return
            conn = self._conns.get(machine.session)
            if conn is not None and len(conn.outbox) >= SEND_BACKLOG:
                return  # the writer calls back once it has written them
            frame = self._held if self._held is not None else ring.get(timeout=0)
            if frame is None:
                return
            if self.pace > 0:
                now = time.monotonic_ns()
                if self._t0 is None:
                    self._t0 = now - round(frame.start * 1e9 / self.rate / self.pace)
                due = self._t0 + round(frame.end * 1e9 / self.rate / self.pace)
                if due > now:
                    self._held = frame
                    self._pace_until(due - now)
                    return
            self._held = None
            self._apply(machine.frame(frame, time.monotonic()))

    def _pace_until(self, delay_ns: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
        assert self._sockets is not None
        self._timer = self._sockets.loop.call_later(delay_ns / 1e9, self._paced)

    def _paced(self) -> None:
        self._timer = None
        self._feed()

    def _crash(self, err: BaseException) -> None:
        if self._machine.done:
            return
        log.debug("sink failure", exc_info=err)
        error = ServiceError(
            f"internal error in the WebSocket sink: {type(err).__name__}: {err}",
            retryable=False,
        )
        self._apply(self._machine.stop(error, time.monotonic()))

    def _apply(self, actions: list[Action]) -> None:
        """Carry out the machine's actions; what they wrote to sockets leaves in one write
        per connection at the end (a frame and its ping: one system call, not two)."""
        self._depth += 1
        try:
            self._carry_out(actions)
        finally:
            self._depth -= 1
            if not self._depth and self._unflushed:
                for conn in self._unflushed:
                    _flush(conn.ws)
                self._unflushed.clear()

    def _carry_out(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                conn = self._conns.get(action.session)
                if conn is not None:
                    self._send(conn, action)
            elif isinstance(action, Deliver):
                assert self._delivery is not None
                if not self._delivery.put(action.result):
                    error = ConsumerError(
                        f"results were not taken: {self._delivery.capacity} waiting; "
                        "stopped the stream"
                    )
                    self._apply(self._machine.stop(error, time.monotonic()))
            elif isinstance(action, Ping):
                conn = self._conns.get(action.session)
                if conn is not None:
                    self._ping(conn, action)
            elif isinstance(action, Open):
                self._task(self._open(action))
            elif isinstance(action, Close):
                conn = self._conns.pop(action.session, None)
                if conn is not None:
                    self._task(self._close(conn, action), self._closing)
            elif isinstance(action, Abandon):
                conn = self._conns.pop(action.session, None)
                if conn is not None:
                    conn.abort()
            elif isinstance(action, Finish):
                self._finish(action.outcome)

    def _task(
        self, coro: Coroutine[Any, Any, None], owner: set[asyncio.Task[Any]] | None = None
    ) -> None:
        """``coro`` as a task held in ``owner`` (the sink's, or a connection's) until it ends;
        a failure ends the stream, reported once, never silently."""
        tasks = self._tasks if owner is None else owner
        task = asyncio.ensure_future(coro)
        tasks.add(task)
        task.add_done_callback(lambda t: self._task_done(t, tasks))

    def _task_done(self, task: asyncio.Task[Any], tasks: set[asyncio.Task[Any]]) -> None:
        tasks.discard(task)
        if self._finished.is_set() and not self._closing and not self._settled.is_set():
            self._settled.set()
            self._notify_watcher()
        if not task.cancelled() and task.exception() is not None:
            self._crash(task.exception())  # type: ignore[arg-type]

    def _send(self, conn: _Conn, item: Send) -> None:
        """Write ``item`` now if the connection takes it, else queue it for the writer task.

        The direct path is websockets' own ``send()`` without its coroutine: the protocol
        frames the message and the transport takes the bytes, on this one thread.
        """
        ws = conn.ws
        if not conn.outbox and not ws.paused and ws.protocol.state is conn.open_state:
            if ws.transport.is_closing():
                return  # the reader reports how it ended
            ws.protocol.send_binary(item.pcm)
            self._unflushed.add(conn)
            if self.send_log is not None and item.t_ns is not None:
                self.send_log.append((item.start, item.t_ns, time.monotonic_ns()))
            return
        conn.outbox.append(item)
        conn.has_work.set()

    def _ping(self, conn: _Conn, item: Ping) -> None:
        """A ping goes out after every frame handed over before it (its pong proves they
        were read), so it waits behind the outbox. Its payload is its mark; the pong comes
        back through :meth:`_pong` (see ``_Conn``), with no future or task per ping."""
        if conn.outbox:
            conn.outbox.append(item)
            conn.has_work.set()
            return
        ws = conn.ws
        if ws.protocol.state is not conn.open_state or ws.transport.is_closing():
            return  # the reader reports how it ended
        ws.protocol.send_ping(item.mark.to_bytes(8, "big"))
        self._unflushed.add(conn)

    def _pong(self, conn: _Conn, data: bytes) -> None:
        """A pong arrived (called by the connection as it reads it: one per frame sent)."""
        if len(data) != 8:
            return  # not one of ours
        machine = self._machine
        was_open = machine.wants_frames
        try:
            self._apply(machine.pong(conn.number, int.from_bytes(data, "big"), time.monotonic()))
            if not was_open:
                self._feed()  # the window may have room again
        except BaseException as err:  # inside the connection's read: nobody else would see it
            self._crash(err)

    def _finish(self, outcome: Outcome) -> None:
        self._outcome = outcome
        if self._sockets is not None:
            self._sockets.every_tick(id(self), None)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for conn in self._conns.values():
            conn.abort()
        self._conns.clear()
        for task in list(self._tasks):
            if task is not asyncio.current_task():
                task.cancel()
        if self._ring is not None and not outcome.ok:
            self._ring.abort()  # a writer waiting for room learns at once
        assert self._delivery is not None
        if outcome.aborted and self.on_result is not None:
            self._delivery.stop()
        self._delivery.end()
        self._opened.set()
        self._finished.set()
        if not self._closing:
            self._settled.set()
        self._notify_watcher()  # finished (and maybe settled)

    async def _open(self, action: Open) -> None:
        if action.delay > 0:
            await asyncio.sleep(action.delay)
        try:
            token = await self.connector.token(action.fresh_token)
            ws, _ = await self.connector.open(token)
        except NsAudioError as err:
            error = (
                err if isinstance(err, ServiceError) else ServiceError(str(err), retryable=False)
            )
            self._now(lambda now: self._machine.open_failed(action.session, error, now))
            return
        if action.session != self._machine.session or self._machine.done:
            self._task(ws.close(), self._closing)
            return
        conn = self._conns[action.session] = _Conn(ws, action.session, self._pong)
        self._task(self._read(conn), conn.tasks)
        self._task(self._write(conn), conn.tasks)
        self._now(lambda now: self._machine.opened(action.session, now))
        if not self._opened.is_set():
            self._opened.set()
            self._notify_watcher()

    async def _read(self, conn: _Conn) -> None:
        from websockets.exceptions import ConnectionClosed

        error: BaseException | None = None
        machine = self._machine
        try:
            async for message in conn.ws:
                self._apply(machine.message(conn.number, message, time.monotonic()))
                self._feed()
        except ConnectionClosed as err:
            error = err
        end = describe_end(conn.ws, error)
        reason = self.connector.redact(end.reason)
        self._now(lambda now: machine.closed(conn.number, end.code, reason, now, local=end.local))

    async def _write(self, conn: _Conn) -> None:
        """What the direct path could not write (the transport was paused), in order."""
        from websockets.exceptions import ConnectionClosed

        send_log = self.send_log
        try:
            while True:
                while conn.outbox:
                    if conn.ws.transport.is_closing():
                        return  # lost (websockets hears of it next pass): the reader reports
                    item = conn.outbox.popleft()
                    if isinstance(item, Ping):  # everything before it is written now
                        self._ping(conn, item)
                        if self._unflushed:
                            self._unflushed.discard(conn)
                            _flush(conn.ws)
                        continue
                    await conn.ws.send(item.pcm)
                    if send_log is not None and item.t_ns is not None:
                        send_log.append((item.start, item.t_ns, time.monotonic_ns()))
                conn.has_work.clear()
                self._feed()  # room in the backlog again
                await conn.has_work.wait()
        except ConnectionClosed:
            pass  # the reader reports how it ended

    async def _close(self, conn: _Conn, action: Close) -> None:
        try:
            await conn.ws.close(action.code, action.reason)
        except Exception as err:  # the end is reported below whatever the close met
            log.debug("closing session %d: %s", conn.number, err)
        conn.abort()
        # The reader may not run again once its task is cancelled: report the end here (a
        # second report of the same session is ignored).
        self._now(lambda now: self._machine.closed(conn.number, action.code, "", now, local=True))
