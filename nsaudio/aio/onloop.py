"""The caller's-loop side shared by the asyncio API's streams (:class:`~.stream.AsyncStream`,
one session; :class:`~.channels.AsyncChannelStream`, a session per channel).

A stream binds to the loop that enters its block; its waiters (senders waiting for room,
iterations waiting for results, the block waiting for the drain) all wait on one
:class:`asyncio.Event`, set when a sink's watcher says "look again" (batched per loop, see
:mod:`.wakes`), and each looks at the facts again after clearing it, so no call to look
again is missed. The sinks are only ever driven with their waitless verbs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

from ..blocks import Frame
from ..errors import AudioLostError, InputError, NsAudioError
from ..losses import Losses
from ..runner import RunStats
from ..sinks.neuralspace import NeuralSpaceSink
from .wakes import Looks, Wakes, per_loop

if TYPE_CHECKING:
    from ..stages.speech_gate import SpeechGate
    from .scoring import GateLane

__all__ = ["SETTLE_SECONDS", "OnLoop"]

#: After a cancellation, how long leaving the block waits for the socket loop to close
#: the sockets (it takes one of its turns; this only bounds a stuck one).
SETTLE_SECONDS = 5.0


class OnLoop:
    """What a stream driven from the caller's event loop shares with the others: see the
    module docstring. A subclass puts its sinks in ``_sinks`` before its block is entered."""

    #: What makes another stream, for the error of entering one twice.
    _OPENER = "connect()"

    def __init__(self) -> None:
        self._sinks: Sequence[NeuralSpaceSink] = ()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakes: Wakes | None = None
        self._looks: Looks | None = None
        self._event: asyncio.Event | None = None
        self._sending: asyncio.Lock | None = None
        self._ended = False  # no more audio (end(), or stopped)
        self._cancelled = False  # stopped at once: iterations end, nothing more is sent
        self._ending: asyncio.Future[None] | None = None  # end()'s work, once begun
        self._failure: NsAudioError | None = None  # the gates' scoring's, which ended it

    def _bind(self) -> None:
        """Bind to the running loop (entering the block) and start watching the sinks."""
        if self._loop is not None:
            raise RuntimeError(
                f"an {type(self).__name__} is entered once; {self._OPENER} again for another"
            )
        self._loop = asyncio.get_running_loop()
        batches = per_loop(self._loop)
        self._wakes, self._looks = batches.wakes, batches.looks
        self._event = asyncio.Event()
        self._sending = asyncio.Lock()
        for sink in self._sinks:
            sink.watch(self._look_again)

    def _gate_lanes(self, gates: Sequence[SpeechGate], **options: Any) -> list[GateLane]:
        """A lane of this loop's batched Silero scoring for each of ``gates`` (entered
        streams only; ``options``: :meth:`~.scoring.GateScoring.lane`'s): their failure ends
        every session of the stream (:meth:`_gates_failed`)."""
        from .scoring import scoring_for

        assert self._loop is not None
        scoring = scoring_for(self._loop, cast(Any, gates[0].detector))
        return [scoring.lane(g, on_fail=self._gates_failed, **options) for g in gates]

    def _gates_failed(self, error: NsAudioError) -> None:
        """The gates' batched scoring failed: their frames are gone, so every session ends
        now with that error (no drain to wait for), and so does the stream: its verdict
        raises ``error`` first."""
        if self._failure is None:
            self._failure = error
            for sink in self._sinks:
                sink.fail(error)

    async def _offer(self, sink: NeuralSpaceSink, frame: Frame) -> None:
        """Hand ``frame`` to ``sink``, waiting (on this loop) while its ring is full. Raises
        what ``sink.offer()`` raises for a stream that is over (``RingClosed``, or its
        failure once settled)."""
        assert self._event is not None and self._wakes is not None
        while True:
            self._event.clear()  # before the offer: the ring's call for room cannot be missed
            if sink.offer(frame, wake=False):
                self._wakes.add(sink)  # the socket loop hears of it when this turn ends
                return
            await self._event.wait()

    # -- the socket loop's side says "look again" -----------------------------------------------

    def _look_again(self) -> None:
        """From any thread (the socket loop's, mostly): wake this stream's waiters on its loop,
        with the other streams of that loop asked at the same time (:class:`~.wakes.Looks`)."""
        if self._looks is not None:
            self._looks.request(self)

    def _woken(self) -> None:
        if self._event is not None:
            self._event.set()

    async def _until(self, ready: Callable[[], bool]) -> None:
        assert self._event is not None
        while True:
            self._event.clear()
            if ready():
                return
            await self._event.wait()

    def _settled(self) -> bool:
        """Every sink's stream is over and its polite close has ended."""
        return all(sink.settled for sink in self._sinks)

    async def _stop_now(self) -> None:
        """Cancel every sink (no result after this, no reconnect) and wait, bounded, until
        the socket loop has closed their sockets."""
        self._cancelled = True
        self._ended = True
        for sink in self._sinks:
            sink.cancel()
        # A stuck socket loop only delays the sockets' end, never this block's.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._until(self._settled), SETTLE_SECONDS)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Leaving the block: flush, drain and close politely, then raise if anything went
        wrong; left by an exception (or cancelled in the drain), stop at once."""
        if exc_type is not None:
            await self._stop_now()
            return  # the exception goes on
        try:
            await self.end()
            await self._until(self._settled)  # every drain, then every polite close
        except BaseException:  # cancelled during the drain (or every channel failed): stop
            await self._stop_now()
            raise
        self._raise_verdict()
        losses = self.losses()
        if losses:
            raise AudioLostError(losses.describe(), losses, self.run_stats())

    # -- what each stream says for itself ----------------------------------------------------

    async def end(self) -> None:
        """No more audio: flush the stages and start the drain."""
        raise NotImplementedError

    async def _end_once(self) -> None:
        """What ``end()`` does: ``_end_input()`` once, as a task of its own, so that a
        cancelled ``end()`` does not cut the flush short (the next ``end()``, and leaving the
        block, wait for it); nothing after a stop."""
        self._check_entered("end()")
        if self._ending is None:
            if self._ended:  # stopped at once: nothing more goes
                return
            self._ending = asyncio.ensure_future(self._end_input())
            self._ending.add_done_callback(_retrieved)
        await asyncio.shield(self._ending)

    async def _end_input(self) -> None:
        """Flush the stages, send what they give, end every sink (under ``_sending``)."""
        raise NotImplementedError

    def _raise_verdict(self) -> None:
        """Raise what ended the stream's sessions badly (they are all settled)."""
        raise NotImplementedError

    def losses(self) -> Losses:
        """Audio dropped before it was sent (a live stream's full buffer), in seconds."""
        raise NotImplementedError

    def run_stats(self) -> RunStats:
        """What the stream did, for :class:`~nsaudio.AudioLostError` and reports."""
        raise NotImplementedError

    def _check_entered(self, what: str) -> None:
        if self._event is None:
            raise RuntimeError(f"{what} outside 'async with connect(...) as stream'")

    def _check_open(self, what: str) -> None:
        self._check_entered(what)
        if self._ended:
            raise InputError(f"stream: {what} after the stream ended; nothing was sent")


def _retrieved(task: asyncio.Future[None]) -> None:
    """``end()``'s work has ended: its error is raised to whoever awaits it (``end()``,
    leaving the block), and needs no other reporting if nobody does (the stream stopped)."""
    if not task.cancelled():
        task.exception()
