"""One sink per channel behind the one sink a pipeline writes to: a session per channel.

:class:`ChannelSinks` takes the :class:`~nsaudio.blocks.ChannelFrame` s of a
:class:`~nsaudio.stages.split.ChannelSplit` and writes each to its channel's own sink (a
:class:`~nsaudio.sinks.neuralspace.NeuralSpaceSink`, maybe teed to a WAV), made by the
caller's ``make_sink(name, on_result)``. Every channel's session has its own replay,
reconnects and verdict; they all run on the one engine loop of the process.

- **Results** come back on each session's delivery thread, are merged in start-time order
  (:class:`~.merge.ResultMerger`) and labelled with their channel's name, and reach
  ``on_result`` or ``results()`` through one bounded :class:`~.delivery.Delivery` of their
  own: a slow consumer never holds up a session.
- **Failures** are the channel's: a session that fails mid-stream is set aside with its
  error while the others go on to their end, and ``close()`` then raises it, saying which
  channel (``channel customer: ... untranscribed: 3.1-4.2 s of the stream``). A failing
  consumer of the merged results (a closed stdout) stops every session at once.
- ``open()`` and ``close()`` run every channel's at once (one short-lived thread each), so
  the sessions connect and drain side by side, not one after another.
"""

from __future__ import annotations

import copy
import functools
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

from ..blocks import ChannelFrame, Frame
from ..errors import ConsumerError, NsAudioError, ServiceError
from ..neuralspace.protocol import TranscriptResult
from . import Sink
from .delivery import Delivery
from .merge import ResultMerger

__all__ = ["ChannelSinks", "MakeSink", "combined_error", "labelled_error"]

#: ``make_sink(name, on_result)``: the sink for the channel called ``name``, whose results
#: must go to ``on_result``.
MakeSink = Callable[[str, Callable[[TranscriptResult], None]], Sink]


@runtime_checkable
class _Hurries(Protocol):
    def hurry(self, within: float) -> None: ...


@runtime_checkable
class _Drops(Protocol):
    def dropped_audio(self) -> tuple[int, list[tuple[int, int]]]: ...


@runtime_checkable
class _Counts(Protocol):
    def stats(self) -> dict[str, Any]: ...


class _Channel:
    def __init__(self, index: int, name: str, sink: Sink) -> None:
        self.index, self.name, self.sink = index, name, sink
        self.error: NsAudioError | None = None  # set aside with this


class ChannelSinks:
    """Frames of a :class:`~nsaudio.stages.split.ChannelSplit` into one sink per channel;
    their results merged, in time order, labelled. See the module docstring.

    ``names``: the channels' labels, in channel order; ``make_sink``: makes each channel's
    sink (see :data:`MakeSink`); ``on_result``: takes every merged result on a thread of
    its own (else iterate :meth:`results`); ``hold_seconds``: how much of a channel's audio
    may be written past speech that no result covers before the others stop waiting for it
    (more than its sink queues ahead of what it has sent: the CLI gives its ring plus 5 s);
    ``capacity``: full results waiting for their consumer before the stream fails.
    """

    def __init__(
        self,
        names: Sequence[str],
        make_sink: MakeSink,
        *,
        on_result: Callable[[TranscriptResult], None] | None = None,
        hold_seconds: float = 15.0,
        capacity: int = 1000,
    ) -> None:
        if len(names) < 2 or len(set(names)) != len(names):
            raise ValueError(f"channel sinks need 2 or more distinct names, not {list(names)}")
        self.names = list(names)
        self.on_result = on_result
        self.hold_seconds = hold_seconds
        self.capacity = capacity
        self._channels = [
            _Channel(i, name, make_sink(name, self._taker(i))) for i, name in enumerate(names)
        ]
        self._lock = threading.Lock()  # the merger, and the order of what it releases
        self._merger: ResultMerger | None = None
        self._out: Delivery | None = None
        self._failure: ConsumerError | None = None
        self._done = threading.Event()  # closed or aborted: results() ends even if never opened

    def __repr__(self) -> str:
        return f"ChannelSinks({self.names!r})"

    @property
    def sinks(self) -> dict[str, Sink]:
        """Each channel's sink, by name."""
        return {c.name: c.sink for c in self._channels}

    # -- the pipeline's side ---------------------------------------------------------------

    def open(self, rate: int) -> None:
        """Open every channel's sink at once; if one cannot open, the others are aborted
        and its error raised, naming its channel."""
        if self._out is not None:
            raise RuntimeError("ChannelSinks.open() twice")
        self._merger = ResultMerger(self.names, rate, hold=self.hold_seconds)
        self._out = Delivery(self.on_result, self._consumer_failed, self.capacity)
        errors = _all_at_once([functools.partial(c.sink.open, rate) for c in self._channels])
        failed = [
            (c, err) for c, err in zip(self._channels, errors, strict=True) if err is not None
        ]
        if failed:
            self.abort()
            channel, err = failed[0]
            if isinstance(err, NsAudioError):
                raise labelled_error(err, channel.name) from err.__cause__
            raise err

    def write(self, frame: Frame) -> None:
        """``frame`` (a ChannelFrame) to its channel's sink, unless that one was set aside."""
        if self._failure is not None:
            raise _fresh(self._failure)
        if not isinstance(frame, ChannelFrame) or not 0 <= frame.channel < len(self._channels):
            raise TypeError(f"{self!r} takes the frames of a ChannelSplit of as many channels")
        channel = self._channels[frame.channel]
        if channel.error is None:
            try:
                channel.sink.write(frame)
            except NsAudioError as err:
                if self._failure is not None:
                    raise _fresh(self._failure)  # noqa: B904 - its cause is the consumer's error
                self._set_aside(channel, err)
        self._merged(lambda m: m.frame(frame.channel, frame.start, frame.end, frame.speech))

    def close(self) -> None:
        """End of stream: every channel's sink closed at once (each drains); then the
        merged results are all delivered, and the first failure raised, naming its channel
        (several: each named in one message)."""
        out = self._out
        if out is None:
            self._done.set()
            return
        going = [c for c in self._channels if c.error is None]
        errors = _all_at_once([functools.partial(self._close_channel, c) for c in going])
        bug = next((err for err in errors if err is not None), None)
        if bug is not None:
            self.abort()
            raise bug
        self._merged(lambda m: m.flush())
        out.end()
        out.join()  # on_result has had every result (Ctrl-C still interrupts the wait)
        self._done.set()
        if self._failure is not None:
            raise _fresh(self._failure)
        failed = [c for c in self._channels if c.error is not None]
        if failed:
            raise combined_error([c.error for c in failed if c.error is not None])

    def abort(self) -> None:
        """Stop every channel's sink at once; no result is delivered once this returns."""
        if self._out is not None:
            self._out.stop()
        for channel in self._channels:
            channel.sink.abort()
        if self._out is not None:
            self._out.end()
        self._done.set()

    def hurry(self, within: float) -> None:
        """The user stopped the stream: every channel's sink that can end sooner (stop
        pacing, wait at most ``within`` seconds for its last results) is told so."""
        for channel in self._channels:
            if isinstance(channel.sink, _Hurries):
                channel.sink.hurry(within)

    def results(self) -> Iterator[TranscriptResult]:
        """Every channel's results, merged (full results in start-time order, partials as
        they come), each with ``channel`` set; ends with the stream."""
        while self._out is None:
            if self._done.wait(0.05):
                return
        yield from self._out

    def dropped_audio(self) -> tuple[int, list[tuple[int, int]]]:
        """Live audio the channels' sinks dropped before sending it: the most any one
        dropped, and where any did."""
        most, spans = 0, set()
        for channel in self._channels:
            if isinstance(channel.sink, _Drops):
                n, places = channel.sink.dropped_audio()
                most = max(most, n)
                spans.update(places)
        return most, sorted(spans)

    def stats(self) -> dict[str, dict[str, Any]]:
        """Each channel's sink's ``stats()``, by name (where it has them)."""
        return {c.name: c.sink.stats() for c in self._channels if isinstance(c.sink, _Counts)}

    # -- the channels' side ------------------------------------------------------------------

    def _taker(self, index: int) -> Callable[[TranscriptResult], None]:
        def take(result: TranscriptResult) -> None:  # on that channel's delivery thread
            self._merged(lambda m: m.result(index, result))

        return take

    def _merged(self, event: Callable[[ResultMerger], list[TranscriptResult]]) -> None:
        """Tell the merger ``event`` and pass on what it releases, under one lock, so what
        is released is queued in the order it was released."""
        with self._lock:
            merger, out = self._merger, self._out
            if merger is None or out is None:
                return
            for result in event(merger):
                if not out.put(result):
                    error = ConsumerError(
                        f"results were not taken: {out.capacity} waiting; stopped the stream"
                    )
                    # Not under this lock: a session's abort waits for its delivery thread,
                    # which may be waiting for the lock.
                    threading.Thread(target=self._fail, args=(error,), daemon=True).start()
                    return

    def _close_channel(self, channel: _Channel) -> None:
        try:
            channel.sink.close()
        except NsAudioError as err:
            channel.error = labelled_error(err, channel.name)
        finally:
            self._merged(lambda m: m.end(channel.index))

    def _set_aside(self, channel: _Channel, err: NsAudioError) -> None:
        """``channel``'s sink failed mid-stream: keep its error, let the others go on; if
        none is left, the stream is over."""
        channel.error = labelled_error(err, channel.name)
        channel.sink.abort()
        self._merged(lambda m: m.end(channel.index))
        if all(c.error is not None for c in self._channels):
            raise combined_error([c.error for c in self._channels if c.error is not None])

    def _consumer_failed(self, err: BaseException) -> None:
        """On the merged delivery's thread: ``on_result`` raised; every session stops."""
        self._fail(ConsumerError.of(err))

    def _fail(self, error: ConsumerError) -> None:
        """The merged results' consumer is gone: every channel's session stops now."""
        if self._failure is None:
            self._failure = error
        for channel in self._channels:
            channel.sink.abort()  # a writer waiting on one is released with RingClosed


def _all_at_once(calls: Sequence[Callable[[], None]]) -> list[BaseException | None]:
    """Run every call on a thread of its own and wait for them all: what each raised."""
    raised: list[BaseException | None] = [None] * len(calls)

    def run(i: int) -> None:
        try:
            calls[i]()
        except BaseException as err:
            raised[i] = err

    threads = [
        threading.Thread(target=run, args=(i,), name=f"nsaudio-channel-{i}", daemon=True)
        for i in range(len(calls))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(0.2)  # in slices: Ctrl-C reaches the main thread
    return raised


def labelled_error(err: NsAudioError, name: str) -> NsAudioError:
    """``err`` (its class, so its exit status, and its attributes) saying it is channel
    ``name``'s: ``channel customer: ...``. A fresh copy; ``err`` is left as it was."""
    out = _fresh(err)
    out.args = (f"channel {name}: {err.args[0] if err.args else err}", *err.args[1:])
    return out


def combined_error(errors: Sequence[NsAudioError]) -> NsAudioError:
    """One error for several channels' ``errors`` (each labelled already, at least one): the
    first's class, a fresh copy to raise (the stored ones never carry a traceback, whose
    frames would keep the whole run alive)."""
    out = _fresh(errors[0])
    if len(errors) > 1:
        out.args = ("; ".join(str(err) for err in errors),)
        if isinstance(out, ServiceError):
            out.untranscribed([], None)  # each channel's is in the message already
    return out


def _fresh(err: NsAudioError) -> NsAudioError:
    out = copy.copy(err)
    out.__cause__ = err.__cause__
    return out
