"""A session per channel from the caller's event loop: a call's agent and customer, each
transcribed on its own, one transcript in time order labelled by channel.

::

    async with nsaudio.connect_channels(url, key, StreamParams(format="pcm_16k"), rate=8000,
                                        channels=2, names=("agent", "customer")) as stream:
        await stream.send(chunk)        # interleaved: shape (frames, 2), or bytes
        async for result in stream:     # every channel's, merged; result.channel says whose
            ...
    # leaving the block drains every channel, and raises, naming the channel, if any failed

What ``nsaudio stream --split-channels`` and :func:`~nsaudio.split_channels` do on threads,
here driven from the caller's loop with the same pieces: a
:class:`~nsaudio.stages.split.ChannelSplit` (each channel its own resampler taking that
channel alone, framer and energy gate), a :class:`~nsaudio.sinks.neuralspace.NeuralSpaceSink`
per channel (its own session, replay, reconnects and verdict), and a
:class:`~nsaudio.sinks.merge.ResultMerger` putting their results in start-time order.

Who does what:

- ``send()`` (the caller's loop): the chunk is checked whole, split into each channel's
  frames a slice at a time (as :class:`~.stream.AsyncStream` does), each frame offered to its
  channel's sink without waiting, and told to the merger (where each channel has written to,
  and whether its gate heard speech).
- The iteration (the caller's loop) takes every channel's results without waiting
  (``take_results()``), gives them to the merger, and yields what it releases. The merger is
  used from the caller's loop alone, so it needs no lock.
- A channel whose session fails mid-stream is set aside: nothing more is sent to it, the
  others go on to their end, and leaving the block raises its error, labelled with its name.
"""

from __future__ import annotations

import asyncio
import collections
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ..blocks import Block, ChannelFrame
from ..channels import channel_names
from ..errors import ConsumerError, InputError, NsAudioError
from ..losses import Losses
from ..neuralspace.protocol import StreamParams, Transcript, TranscriptResult
from ..runner import RunStats, standard_stages
from ..sinks.channels import combined_error, labelled_error
from ..sinks.merge import ResultMerger
from ..sinks.neuralspace import NeuralSpaceSink
from ..sources.chunks import ChunkFormat
from ..stages.speech_gate import SpeechGate
from ..stages.split import ChannelSplit
from .onloop import OnLoop
from .stream import SLICE_SECONDS

if TYPE_CHECKING:
    from .scoring import GateLane

__all__ = ["AsyncChannelStream", "connect_channels"]

#: How much longer than its sink may queue ahead of what it has sent a channel's audio may
#: run past speech no result covers before the other channels stop waiting for it (the time
#: its service takes to finalise), as for ``--split-channels``.
FINALISE_SECONDS = 5.0
#: What a live channel's queue holds at most in practice (it is read as the audio comes).
LIVE_AHEAD_SECONDS = 2.0


def connect_channels(
    url: str,
    key: str,
    params: StreamParams | None = None,
    *,
    rate: int | None = None,
    channels: int = 2,
    names: Sequence[str] | None = None,
    dtype: str = "float32",
    live: bool = False,
    frame_ms: float = 100,
    gate: bool = False,
    gate_threshold: float | None = 0.5,
    gate_vad: str = "energy",
    gate_vad_model: str | Path | None = None,
    quality: str | None = None,
    buffer_seconds: float = 10.0,
    hold_seconds: float | None = None,
    **options: Any,
) -> AsyncChannelStream:
    """A session per channel of the audio ``send()`` will be given, to use as ``async with
    connect_channels(...) as stream``; see :class:`AsyncChannelStream`.

    ``url``, ``key``, ``params``, ``rate``, ``dtype``, ``live``, ``frame_ms``, ``gate``,
    ``gate_threshold``, ``gate_vad``, ``gate_vad_model``, ``quality``, ``buffer_seconds``
    and ``options`` are :func:`~nsaudio.connect` 's, for every channel's stages and session
    (each channel's sink has its own ``buffer_seconds``, its gate its own detector). ``channels``: 2 or more, interleaved in every chunk;
    ``names``: their labels, in channel order (default ``ch1``, ``ch2``...; the rules of
    :func:`~nsaudio.channels.channel_names`); ``hold_seconds``: how much of a channel's audio
    may be sent past speech no result covers before the other channels' results stop
    waiting for it (default: as ``--split-channels``, 7 s live, ``buffer_seconds`` + 5 s
    otherwise).

    Nothing connects until the block is entered; bad arguments raise ``InputError`` here.
    """
    return AsyncChannelStream(
        url, key, params, rate=rate, channels=channels, names=names, dtype=dtype, live=live,
        frame_ms=frame_ms, gate=gate, gate_threshold=gate_threshold, gate_vad=gate_vad,
        gate_vad_model=gate_vad_model, quality=quality, buffer_seconds=buffer_seconds,
        hold_seconds=hold_seconds, **options,
    )  # fmt: skip


class AsyncChannelStream(OnLoop):
    """A session per channel, driven from an asyncio loop; made by :func:`connect_channels`.

    Used as :class:`~nsaudio.AsyncStream` is: inside ``async with``, ``await send(chunk)``
    (interleaved frames of every channel), ``async for result in stream`` (every channel's
    results, each with ``result.channel`` set to its name: partials as they come, full
    results in order of their start time), and ``await end()`` when the audio is over.
    Leaving the block drains every channel's session side by side and raises, naming the
    channel and its untranscribed seconds, if any channel's transcript is incomplete (a
    channel silent throughout is complete: its transcript is empty); a channel that failed
    mid-stream was set aside while the others went on. Left by an exception or a
    cancellation, every channel stops at once: no reconnect, no result after it, no socket
    left.

    Its arguments (``url``, ``key``, ``params``, ``rate``, ``channels``, ``names``,
    ``dtype``, ``live``, ``frame_ms``, ``gate``, ``gate_threshold``, ``gate_vad``,
    ``gate_vad_model``, ``quality``, ``buffer_seconds``, ``hold_seconds`` and the sessions'
    settings) are
    :func:`connect_channels`'s, documented there.
    """

    _OPENER = "connect_channels()"

    def __init__(
        self,
        url: str,
        key: str,
        params: StreamParams | None = None,
        *,
        rate: int | None = None,
        channels: int = 2,
        names: Sequence[str] | None = None,
        dtype: str = "float32",
        live: bool = False,
        frame_ms: float = 100,
        gate: bool = False,
        gate_threshold: float | None = 0.5,
        gate_vad: str = "energy",
        gate_vad_model: str | Path | None = None,
        quality: str | None = None,
        buffer_seconds: float = 10.0,
        hold_seconds: float | None = None,
        **options: Any,
    ) -> None:
        """See :func:`connect_channels`."""
        if "on_result" in options:
            raise InputError("the stream delivers its results itself: iterate it instead")
        if "channel" in options:
            raise InputError(
                "a stream per channel sends every channel; to send one, use connect(channel=)"
            )
        super().__init__()
        self.params = params or StreamParams()
        self.format = ChunkFormat(self.params.rate if rate is None else rate, channels, dtype,
                                  "stream")  # fmt: skip
        #: The channels' labels, in channel order.
        self.names = channel_names(names, channels, "the stream")
        self.live = live
        if hold_seconds is None:
            ahead = LIVE_AHEAD_SECONDS if live else buffer_seconds
            hold_seconds = ahead + FINALISE_SECONDS
        elif isinstance(hold_seconds, bool) or not (
            isinstance(hold_seconds, (int, float)) and math.isfinite(hold_seconds)
            and hold_seconds >= 0
        ):  # fmt: skip
            raise InputError(f"hold_seconds must be 0 or more, not {hold_seconds!r}")
        self.hold_seconds = float(hold_seconds)
        quality = quality or ("LQ" if live else "HQ")
        lanes = [
            standard_stages(
                cast(Any, self.format),
                self.params.format,
                frame_ms=frame_ms,
                channel=i,
                quality=quality,
                gate_threshold=gate_threshold,
                skip_silence=gate,
                gate_vad=gate_vad,
                gate_vad_model=gate_vad_model,
            )
            for i in range(channels)
        ]
        self._gates = [
            stages[-1] if isinstance(stages[-1], SpeechGate) else None for stages in lanes
        ]
        # Silero gates score with the other streams of the loop, off it (see .scoring): the
        # stages before them run here, their decisions come after each batch.
        self._batched = gate_vad == "silero" and all(g is not None for g in self._gates)
        if self._batched:
            lanes = [stages[:-1] for stages in lanes]
        self._lanes: list[GateLane] = []
        self._split = ChannelSplit(lanes, rate=self.params.rate)
        #: Each channel's sink, by name.
        self.sinks = {
            name: NeuralSpaceSink(
                url, key, self.params, live=live, ring_seconds=buffer_seconds, **options
            )
            for name in self.names
        }
        self._sinks = tuple(self.sinks.values())
        self._merger = ResultMerger(self.names, self.params.rate, hold=self.hold_seconds)
        self._aside = [False] * channels  # failed mid-stream: nothing more goes to it
        self._over = [False] * channels  # its results are all taken
        self._slice = max(1, round(SLICE_SECONDS * self.format.rate))
        self._position = 0  # input frames taken so far: the next block's start
        self._sent_frames = 0  # frames handed to the sinks, every channel's
        self._t0 = 0.0
        self._results: collections.deque[TranscriptResult] = collections.deque()
        self._results_over = False

    def __repr__(self) -> str:
        return f"AsyncChannelStream({self.names!r}, {self.format!r}, live={self.live})"

    # -- the block ---------------------------------------------------------------------------

    async def __aenter__(self) -> AsyncChannelStream:
        self._bind()
        if self._batched:
            self._lanes = self._gate_lanes([g for g in self._gates if g is not None])
        self._t0 = time.perf_counter()
        sinks = self._sinks
        try:
            for sink in sinks:
                sink.start(self.params.rate)  # they all connect side by side
            await self._until(lambda: all(s.opened for s in sinks) or any(s.finished for s in sinks))  # fmt: skip
            failed = next(((n, s) for n, s in self.sinks.items() if s.finished), None)
            if failed is not None:  # could not open: this one is named, the others stopped
                name, sink = failed
                await self._until(lambda: sink.settled)
                _raise_labelled(name, sink)
        except BaseException:
            await self._stop_now()
            raise
        return self

    # -- audio in ---------------------------------------------------------------------------

    async def send(self, chunk: Any) -> None:
        """Send ``chunk``: a numpy array of the stream's dtype, shape ``(frames, channels)``,
        or bytes of whole interleaved frames; any number of frames. Each channel's samples go
        to that channel's session.

        Checked whole first: a wrong dtype or shape (another channel count), NaN or infinite
        samples, or a send after ``end()`` raise ``InputError`` and nothing of it is sent.
        Not live, this waits while a channel's ``buffer_seconds`` wait to be sent. Once every
        channel has failed, this raises their error.
        """
        t_ns = time.monotonic_ns()  # when the newest sample of the chunk came
        self._check_open("send()")
        data = self.format.samples(chunk)
        sending = self._sending
        assert sending is not None
        async with sending:  # whole chunks in call order
            self._check_open("send()")
            rate = self.format.rate
            for i in range(0, len(data), self._slice):
                if i:
                    await asyncio.sleep(0)  # others run between slices of a long chunk
                piece = data[i : i + self._slice]
                block = Block(piece, self._position, rate, t_ns)
                self._position += len(piece)
                frames = self._split.push(block)
                if self._lanes:  # the gates decide after the loop's next batch
                    frames = await self._gated(frames)
                for frame in frames:
                    await self._put(frame)

    async def end(self) -> None:
        """No more audio: every channel's stages are flushed and its drain begins. Results
        keep coming; an iteration ends after the last of every channel. Idempotent; the
        verdict comes when the block is left. Cancelled while it flushes, the flush goes on
        (the next ``end()``, and leaving the block, wait for it)."""
        await self._end_once()

    async def _end_input(self) -> None:
        assert self._sending is not None
        async with self._sending:  # after the send under way, if any
            if self._ended:
                return
            self._ended = True
            frames = self._split.flush()
            if self._lanes:  # and every frame the gates have not decided yet
                frames = await self._gated(frames)
            for frame in frames:
                await self._put(frame)
            for sink, aside in zip(self._sinks, self._aside, strict=True):
                if not aside:
                    sink.end()

    async def _gated(self, frames: list[ChannelFrame]) -> list[ChannelFrame]:
        """``frames`` through their channels' Silero gates, scored in one batch: what the
        gates passed, in stream order (by position, then channel)."""
        lanes = self._lanes
        for i, lane in enumerate(lanes):
            lane.push((f for f in frames if f.channel == i), soon=True)
        passed = [cast(ChannelFrame, f) for lane in lanes for f in await lane.through(())]
        passed.sort(key=lambda f: (f.start, f.channel))
        return passed

    async def _put(self, frame: ChannelFrame) -> None:
        """``frame`` to its channel's sink (waiting while that one's ring is full), unless
        that channel was set aside; then to the merger."""
        i = frame.channel
        if not self._aside[i]:
            try:
                await self._offer(self._sinks[i], frame)
                self._sent_frames += len(frame)
            except NsAudioError:  # its stream is over: failing, or everything was cancelled
                self._aside[i] = True
            if self._aside[i]:
                await self._check_any_left()
        self._released(self._merger.frame(i, frame.start, frame.end, frame.speech))

    async def _check_any_left(self) -> None:
        """A channel's session was found over mid-stream and set aside: the others go on
        without it; if none is left (or all were cancelled), this raises why."""
        if self._cancelled or all(self._aside):
            await self._until(self._settled)
            self._raise_verdict()
            raise InputError("stream: the stream has ended; nothing more can be sent")

    # -- results out ------------------------------------------------------------------------

    def __aiter__(self) -> AsyncChannelStream:
        return self

    async def __anext__(self) -> TranscriptResult:
        """The next result of any channel, labelled (partials at once, full results in
        start-time order); ends when every channel's stream has, or at once after a
        cancellation."""
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
            if not self._take():
                await self._event.wait()

    def _take(self) -> bool:
        """Every channel's results so far, through the merger; whether any came out (or the
        last did)."""
        taken = [(i, *s.take_results()) for i, s in enumerate(self._sinks) if not self._over[i]]
        for i, got, over in taken:  # every channel's first: the merger sees them all at once
            for result in got:
                self._released(self._merger.result(i, result))
            if over:
                self._over[i] = True
                self._released(self._merger.end(i))
        if all(self._over) and not self._results_over:
            self._released(self._merger.flush())
            self._results_over = True
        return bool(self._results) or self._results_over

    def _released(self, results: list[TranscriptResult]) -> None:
        if results:
            self._results.extend(results)
            self._woken()  # an iteration waiting in another task looks again

    @property
    def transcripts(self) -> dict[str, Transcript]:
        """Each channel's latest full results and current partial, by name."""
        return {name: sink.transcript for name, sink in self.sinks.items()}

    @property
    def gates(self) -> dict[str, SpeechGate | None]:
        """Each channel's speech gate (None without a gate), by name: its meter."""
        return dict(zip(self.names, self._gates, strict=True))

    # -- what happened ------------------------------------------------------------------------

    def _raise_verdict(self) -> None:
        """Raise what went wrong, once every sink is settled: the caller's iteration falling
        behind (a :class:`~nsaudio.errors.ConsumerError`, whichever channel found it), else
        every failed channel's error, each named (one message); first, the gates' failure."""
        if self._failure is not None:
            raise self._failure
        errors: list[NsAudioError] = []
        for name, sink in self.sinks.items():
            try:
                sink.raise_failure()
            except ConsumerError:
                raise
            except NsAudioError as err:
                errors.append(labelled_error(err, name))
        if errors:
            raise combined_error(errors)

    def losses(self) -> Losses:
        """Live audio dropped before it could be sent: the most any channel dropped, and
        where any did."""
        most, spans = 0, set()
        for sink in self._sinks:
            samples, places = sink.dropped_audio()
            most = max(most, samples)
            spans.update(places)
        rate = self.params.rate
        return Losses(
            queued=[(a / rate, b / rate) for a, b in sorted(spans)], queued_seconds=most / rate
        )

    def run_stats(self) -> RunStats:
        """Frames in, frames out (every channel's), and seconds since the block was entered."""
        return RunStats(
            input_frames=self._position,
            output_frames=self._sent_frames,
            seconds=time.perf_counter() - self._t0 if self._t0 else 0.0,
        )

    def stats(self) -> dict[str, dict[str, Any]]:
        """Each channel's sink's counters (frames sent, reconnects, drops...) by name, each
        with the input taken."""
        return {
            name: {**sink.stats(), "input_frames": self._position}
            for name, sink in self.sinks.items()
        }


def _raise_labelled(name: str, sink: NeuralSpaceSink) -> None:
    """Raise ``sink``'s failure, if any, saying it is channel ``name``'s."""
    try:
        sink.raise_failure()
    except NsAudioError as err:
        raise labelled_error(err, name) from err.__cause__
