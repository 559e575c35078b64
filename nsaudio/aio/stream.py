"""The asyncio API: audio from your own event loop to the service, transcripts back.

::

    async with nsaudio.connect(url, key, StreamParams(format="pcm_16k"),
                               rate=48000, channels=1, dtype="float32", live=True) as stream:
        await stream.send(chunk)        # a numpy array or bytes, any number of frames
        async for result in stream:     # partials and finals, absolute times
            ...
    # leaving the block flushes the stages, drains, and raises what Pipeline.run() raises

Who does what (the same stages and session engine as ``nsaudio stream``):

- The caller's event loop (FastAPI, Jupyter, your own) runs ``send()``: the chunk is checked
  whole, then goes through the stages (downmix, soxr, framer, speech gate) a slice at a time,
  with a turn of the loop between slices, so no call holds the loop for long; frames go to
  the sink's bounded ring with :meth:`~nsaudio.sinks.neuralspace.NeuralSpaceSink.offer`,
  which never waits.
- The socket loop (:mod:`nsaudio.sinks.loop`, one thread for every stream of the process)
  owns the sockets, as for the CLI.
- Between them, only bounded structures: the sink's ring (frames) and its delivery
  (results). Each side tells the other to look again with wake-ups batched per caller loop
  (:mod:`.wakes`); the caller's side then looks without waiting.

Nothing here blocks the caller's loop: opening, waiting for room, for results and for the
drain are all awaited.
"""

from __future__ import annotations

import asyncio
import collections
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ..blocks import Frame
from ..errors import InputError, NsAudioError, RingClosed
from ..losses import Losses
from ..neuralspace.protocol import StreamParams, Transcript, TranscriptResult
from ..runner import RunStats, standard_stages
from ..sinks.neuralspace import NeuralSpaceSink
from ..sources.chunks import ChunkFormat
from ..stages import Chain, Framer, SpeechGate
from .onloop import OnLoop
from .placing import Placer, check_start

if TYPE_CHECKING:
    from .scoring import GateLane

__all__ = ["AsyncStream", "connect"]

#: Input put through the stages in one step of ``send()``: 0.1 s of 48 kHz stereo is about
#: 0.1 ms of soxr HQ here, so one step never holds the caller's loop long.
SLICE_SECONDS = 0.1


def connect(
    url: str,
    key: str,
    params: StreamParams | None = None,
    *,
    rate: int | None = None,
    channels: int = 1,
    dtype: str = "float32",
    live: bool = False,
    frame_ms: float = 100,
    channel: int | None = None,
    gate: bool = False,
    gate_threshold: float | None = 0.5,
    gate_pre_roll_ms: float = 300,
    gate_tail_ms: float = 700,
    gate_vad: str = "energy",
    gate_vad_model: str | Path | None = None,
    quality: str | None = None,
    buffer_seconds: float = 10.0,
    **options: Any,
) -> AsyncStream:
    """A stream to the service at ``url``, to use as ``async with connect(...) as stream``.

    ``url``: the service's REST base (``https://voice.neuralspace.ai``, or a local server's
    ``base_url``); ``key``: its API key (any for the local server); ``params``: language,
    format and the service's settings (:class:`~nsaudio.StreamParams`).

    What ``send()`` will be given: ``rate`` Hz (default: the format's rate), ``channels``,
    ``dtype`` (int16, int32, float32 or float64; bytes are read as interleaved
    little-endian samples of it). ``live``: audio that cannot wait (a microphone, a call):
    when sending falls ``buffer_seconds`` behind, the oldest audio is dropped, counted and
    reported at the end as :class:`~nsaudio.AudioLostError`; otherwise ``send()`` waits while
    that much is queued. ``frame_ms``: audio per message (20 to 1000). ``channel``: send one
    channel (0-based) instead of the mean of all. ``gate``: send only what the energy gate
    hears as speech (``gate_threshold``, as ``--gate-threshold``; None: no gate, and no
    speech labels for the drain to check against), with ``gate_pre_roll_ms`` before each
    onset and ``gate_tail_ms`` after it (``--gate-pre-roll``, ``--gate-tail``).
    ``gate_vad``: the gate's detector, ``"energy"`` or ``"silero"`` (``gate_vad_model``: its
    ONNX file instead of the bundled one; ``--gate-vad``, ``--gate-vad-model``); the
    Silero-gated streams of one loop are scored together in a worker thread, off the loop
    (:mod:`nsaudio.aio.scoring`), so each frame is decided 5 ms or more after it is complete.
    ``quality``: soxr's (default LQ live, HQ otherwise). ``options``: the session's settings, as the keyword
    arguments of :class:`~nsaudio.NeuralSpaceSink` (``drain_timeout``, ``ping_interval``,
    ``connect_timeout``, ``ca_file``...).

    Nothing connects until the block is entered; bad arguments raise ``InputError`` here.
    """
    return AsyncStream(
        url, key, params, rate=rate, channels=channels, dtype=dtype, live=live,
        frame_ms=frame_ms, channel=channel, gate=gate, gate_threshold=gate_threshold,
        gate_pre_roll_ms=gate_pre_roll_ms, gate_tail_ms=gate_tail_ms, gate_vad=gate_vad,
        gate_vad_model=gate_vad_model, quality=quality, buffer_seconds=buffer_seconds,
        **options,
    )  # fmt: skip


class AsyncStream(OnLoop):
    """One stream to the service, driven from an asyncio loop; made by :func:`connect`.

    Inside ``async with``: ``await send(chunk)`` any number of times (from one task or
    several: each chunk goes whole, in call order), ``async for result in stream`` for every
    result as it arrives (partials too, each replacing the one before; times absolute), and
    ``await end()`` when the audio is over, so that an iteration in the same task ends after
    the last result. Leaving the block ends the audio if ``end()`` was not awaited, waits for
    the drain, and raises what ``Pipeline.run()`` would (untranscribed speech, a service or
    authentication failure, :class:`~nsaudio.AudioLostError`...). Left by an exception or a
    cancellation, it stops at once instead: no reconnect, no result after it, no socket left.

    Its arguments (``url``, ``key``, ``params``, ``rate``, ``channels``, ``dtype``, ``live``,
    ``frame_ms``, ``channel``, ``gate``, ``gate_threshold``, ``gate_pre_roll_ms``,
    ``gate_tail_ms``, ``gate_vad``, ``gate_vad_model``, ``quality``, ``buffer_seconds`` and
    the session's settings) are
    :func:`connect`'s, documented there.
    """

    def __init__(
        self,
        url: str,
        key: str,
        params: StreamParams | None = None,
        *,
        rate: int | None = None,
        channels: int = 1,
        dtype: str = "float32",
        live: bool = False,
        frame_ms: float = 100,
        channel: int | None = None,
        gate: bool = False,
        gate_threshold: float | None = 0.5,
        gate_pre_roll_ms: float = 300,
        gate_tail_ms: float = 700,
        gate_vad: str = "energy",
        gate_vad_model: str | Path | None = None,
        quality: str | None = None,
        buffer_seconds: float = 10.0,
        **options: Any,
    ) -> None:
        """See :func:`connect`."""
        if "on_result" in options:
            raise InputError("the stream delivers its results itself: iterate it instead")
        super().__init__()
        self.params = params or StreamParams()
        self.format = ChunkFormat(self.params.rate if rate is None else rate, channels, dtype,
                                  "stream")  # fmt: skip
        self.live = live
        stages = standard_stages(
            cast(Any, self.format), self.params.format, frame_ms=frame_ms, channel=channel,
            quality=quality or ("LQ" if live else "HQ"), gate_threshold=gate_threshold,
            skip_silence=gate, pre_roll_ms=gate_pre_roll_ms, tail_ms=gate_tail_ms,
            gate_vad=gate_vad, gate_vad_model=gate_vad_model,
        )  # fmt: skip
        self._chain = Chain(stages)
        # Where each chunk goes, and at equal rates (nothing filtered) short chunks held
        # until they complete the frame being filled (see .placing).
        framer = stages[1] if isinstance(stages[1], Framer) else None
        self._placer = Placer(
            self.format.rate, max(1, round(SLICE_SECONDS * self.format.rate)),
            framer if self.format.rate == self.params.rate else None,
        )  # fmt: skip
        #: The gate (None with ``gate_threshold=None``): its level and speech label are the
        #: stream's meter, as the CLI's status line shows them.
        self.gate = stages[-1] if isinstance(stages[-1], SpeechGate) else None
        # A Silero gate scores with the other streams of the loop, off it (see .scoring):
        # the stages before it run here, the gate's decisions come after each batch.
        self._lane: GateLane | None = None
        self._batched = self.gate is not None and gate_vad == "silero"
        self._ring_samples = round(buffer_seconds * self.params.rate)
        if self._batched:
            self._chain = Chain(stages[:-1])
        self.sink = NeuralSpaceSink(
            url, key, self.params, live=live, ring_seconds=buffer_seconds, **options
        )
        self._sinks = (self.sink,)
        self._sent_frames = 0  # output frames handed to the sink
        self._t0 = 0.0
        self._results: collections.deque[TranscriptResult] = collections.deque()
        self._results_over = False

    def __repr__(self) -> str:
        return f"AsyncStream({self.sink!r}, {self.format!r}, live={self.live})"

    # -- the block ---------------------------------------------------------------------------

    async def __aenter__(self) -> AsyncStream:
        self._bind()
        if self._batched:
            assert self.gate is not None
            live = self.live
            (self._lane,) = self._gate_lanes(
                [self.gate], deliver=self._put_passed if live else None,
                limit_samples=self._ring_samples if live else None,
            )  # fmt: skip
        self._t0 = time.perf_counter()
        try:
            self.sink.start(self.params.rate)
            await self._until(lambda: self.sink.opened or self.sink.finished)
            if self.sink.finished:
                await self._until(lambda: self.sink.settled)
                self.sink.raise_failure()
        except BaseException:
            await self._stop_now()
            raise
        return self

    def _raise_verdict(self) -> None:
        if self._failure is not None:
            raise self._failure
        self.sink.raise_failure()

    # -- audio in ---------------------------------------------------------------------------

    async def send(self, chunk: Any, *, start: int | None = None) -> None:
        """Send ``chunk``: a numpy array of the stream's dtype, shape ``(frames,)`` (mono) or
        ``(frames, channels)``, or bytes of whole interleaved frames; any number of frames.

        ``start``: where the chunk sits in the stream, in input frames from the first (None:
        right after the previous chunk). A platform that stamps its packets (a phone call's
        media timestamps) says so: a ``start`` past the end of the audio so far is a gap (a
        packet that never came), which nothing fills and the results' times step over, so
        the times after it stay true; a ``start`` before that end is an ``InputError``.

        Checked whole before anything of it is used: a wrong dtype or shape, NaN or infinite
        samples, a ``start`` that goes back, or a send after ``end()`` raise ``InputError``
        and nothing of it is sent. Not live, this waits while ``buffer_seconds`` of audio
        wait to be sent. A stream that failed raises its error here.
        """
        t_ns = time.monotonic_ns()  # when the newest sample of the chunk came
        self._check_open("send()")
        data = self.format.samples(chunk)
        check_start(start)
        sending = self._sending
        assert sending is not None
        await sending.acquire()  # whole chunks in call order (not `async with`: a layer less)
        try:
            self._check_open("send()")
            for i, block in enumerate(self._placer.blocks(data, start, t_ns)):
                if i:
                    await asyncio.sleep(0)  # others run between slices of a long chunk
                frames = self._chain.push(block)
                if self._lane is not None:  # its gate decides after the loop's next batch
                    frames = await self._lane.through(frames)
                for frame in frames:
                    await self._put(frame)
        finally:
            sending.release()

    def send_nowait(self, chunk: Any, *, start: int | None = None) -> None:
        """:meth:`send` for a live stream, from code that cannot await (a protocol's
        ``data_received``, a callback on the loop): the chunk goes through the stages at
        once, whole, and this never waits, since a live stream drops its oldest audio rather
        than wait for room (counted, and reported at the end).

        The same checks and errors as :meth:`send`, and ``InputError`` on a stream that is
        not live; ``RuntimeError`` while a :meth:`send` or :meth:`end` is under way.
        """
        t_ns = time.monotonic_ns()
        self._check_open("send_nowait()")
        if not self.live:
            raise InputError(
                "stream: send_nowait() is for live streams (live=True), which drop their "
                "oldest audio rather than wait; await send() instead"
            )
        data = self.format.samples(chunk)
        check_start(start)
        assert self._sending is not None
        if self._sending.locked():
            raise RuntimeError("send_nowait() while a send() or end() is under way")
        lane = self._lane
        for block in self._placer.blocks(data, start, t_ns):
            if lane is not None:  # its gate decides after the loop's next batch
                lane.push(self._chain.push(block))
                continue
            for frame in self._chain.push(block):
                self._put_nowait(frame)

    async def end(self) -> None:
        """No more audio: the stages are flushed (the last milliseconds go too) and the drain
        begins. Results keep coming; an iteration ends after the last. Idempotent; the
        verdict comes when the block is left. Cancelled while it flushes, the flush goes on
        (the next ``end()``, and leaving the block, wait for it)."""
        await self._end_once()

    async def _end_input(self) -> None:
        assert self._sending is not None
        async with self._sending:  # after the send under way, if any
            if self._ended:
                return
            self._ended = True
            frames = [f for block in self._placer.rest() for f in self._chain.push(block)]
            frames += self._chain.flush()  # the last chunks, short of a frame, then the stages'
            if self._lane is not None:  # and every frame its gate has not decided yet
                assert self.gate is not None
                frames = await self._lane.through(frames) + self.gate.flush()
            for frame in frames:
                await self._put(frame)
            self.sink.end()

    async def _put(self, frame: Frame) -> None:
        """Hand ``frame`` to the sink, waiting (on this loop) while its ring is full."""
        try:
            await self._offer(self.sink, frame)
        except RingClosed:  # the stream is over: cancelled, or failing
            await self._until(lambda: self.sink.settled)
            self.sink.raise_failure()
            raise InputError("stream: the stream has ended; nothing more can be sent") from None
        self._sent_frames += len(frame)

    def _put_passed(self, frames: list[Frame]) -> None:
        """A live stream's frames that its gate passed after a batch (see .scoring)."""
        for frame in frames:
            try:
                self._put_nowait(frame)
            except NsAudioError:  # the stream is over (cancelled, failing): its verdict says
                return

    def _put_nowait(self, frame: Frame) -> None:
        """Hand ``frame`` to a live stream's sink (its ring drops the oldest, never refuses)."""
        assert self._wakes is not None
        try:
            queued = self.sink.offer(frame, wake=False)
        except RingClosed:  # the stream is over: cancelled, or failing
            if self.sink.settled:
                self.sink.raise_failure()
            raise InputError("stream: the stream has ended; nothing more can be sent") from None
        if queued:
            self._wakes.add(self.sink)
            self._sent_frames += len(frame)

    # -- results out ------------------------------------------------------------------------

    def __aiter__(self) -> AsyncStream:
        return self

    async def __anext__(self) -> TranscriptResult:
        """The next result (partial or full, times absolute); ends when the stream does, or
        at once after a cancellation."""
        self._check_entered("iteration")
        assert self._event is not None
        while True:
            if self._cancelled:
                raise StopAsyncIteration
            if self._results:
                return self._results.popleft()
            if self._results_over:
                raise StopAsyncIteration
            self._event.clear()
            got, over = self.sink.take_results()
            self._results.extend(got)
            self._results_over = over
            if not got and not over:
                await self._event.wait()

    @property
    def frame_due(self) -> int | None:
        """Where the audio sent so far must reach (a stream position, in input frames)
        before the stages can give their next frame; None when any chunk may give one (a
        resampler is in the way) or before the first chunk.

        A sender of many short chunks (a phone call's 20 ms packets) may join them until
        then and send them as one: the same frames leave at the same moment, for one
        :meth:`send_nowait` instead of several (the stream holds short chunks this way
        itself, at a few microseconds a chunk more)."""
        framer = self._placer.framer
        return None if framer is None else framer.next_end

    @property
    def transcript(self) -> Transcript:
        """The latest full results and the current partial (see :class:`~nsaudio.Transcript`)."""
        return self.sink.transcript

    # -- what happened ------------------------------------------------------------------------

    def losses(self) -> Losses:
        """Live audio dropped before it could be sent: the sink's ring fell behind (the
        connection), or the frames waiting for a batched Silero gate's decision did (this
        machine)."""
        samples, spans = self.sink.dropped_audio()
        lane = self._lane
        rate = self.params.rate
        return Losses(
            captured=[(a / rate, b / rate) for a, b in lane.dropped_spans] if lane else [],
            captured_seconds=lane.dropped_samples / rate if lane else 0.0,
            queued=[(a / rate, b / rate) for a, b in spans], queued_seconds=samples / rate,
        )  # fmt: skip

    def run_stats(self) -> RunStats:
        """Frames in and out, and seconds since the block was entered."""
        return RunStats(
            input_frames=self._placer.taken,
            output_frames=self._sent_frames,
            seconds=time.perf_counter() - self._t0 if self._t0 else 0.0,
        )

    def stats(self) -> dict[str, Any]:
        """The sink's counters (frames sent, reconnects, drops...), the input taken, and the
        gaps ``send(start=)`` left (how many, and the frames skipped)."""
        placer = self._placer
        stats = self.sink.stats()
        if self._lane is not None:  # the frames its gate could not score in time, too
            for key in ("dropped_samples", "dropped_frames"):
                stats[key] = stats.get(key, 0) + getattr(self._lane, key)
        return {
            **stats, "input_frames": placer.taken, "input_gaps": placer.gaps,
            "input_gap_frames": placer.gap_frames,
        }  # fmt: skip
