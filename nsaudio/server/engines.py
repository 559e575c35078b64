"""Recognition engines for the local server, and the pool that reuses them across sessions.

An engine decodes one utterance at a time from 16 kHz int16 mono audio:

``reset()``
    forget everything learnt from earlier sessions (called when a session takes the engine);
``start(position, live=True)``
    begin an utterance whose first sample is at ``position`` (16 kHz samples from the start of
    the session); ``live=False`` says ``partial()`` will not be called, so an engine may save
    the work of decoding as the audio arrives;
``process(samples)``
    add contiguous audio to the utterance;
``partial() -> str``
    the current hypothesis, cheap enough to call every second;
``finish() -> str``
    end the utterance and return its final text ("" if nothing was recognised).

Engines are synchronous and not thread-safe: a session owns its engine while it holds it. An
engine whose class sets ``inline = True`` costs next to nothing per call, so the server feeds
it on its event loop, 250 ms of audio at a time, instead of in a worker thread.

``ENGINES`` names the engines ``nsaudio serve --engine`` offers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from ..errors import ServerError

__all__ = [
    "ENGINES",
    "ENGINE_RATE",
    "Engine",
    "EngineFactory",
    "EnginePool",
    "EngineStateError",
    "PlaceholderEngine",
    "PocketSphinxEngine",
    "PoolExhausted",
]

ENGINE_RATE = 16000
# pocketsphinx keeps the GIL for a whole process_raw() call (about 50 ms per 4096 samples
# here), so the live pass takes audio in pieces no longer than this, letting other threads
# (the event loop) run between them. The batch pass cannot be split: it holds the GIL for
# about 0.1 s per second of utterance.
_PIECE = 4096
_FRAME_SHIFT = 160  # pocketsphinx's feature frame shift: 10 ms at 16 kHz

Int16Array = npt.NDArray[np.int16]


@runtime_checkable
class Engine(Protocol):
    def reset(self) -> None: ...
    def start(self, position: int, *, live: bool = True) -> None: ...
    def process(self, samples: Int16Array) -> None: ...
    def partial(self) -> str: ...
    def finish(self) -> str: ...


EngineFactory = Callable[[], Engine]


class EngineStateError(ServerError, RuntimeError):
    """An engine method was called out of order (e.g. ``process`` before ``start``)."""


class PoolExhausted(ServerError, RuntimeError):
    """Every engine of the pool is in use; the caller should refuse the session (1013)."""


class PocketSphinxEngine:
    """pocketsphinx with its bundled US English model.

    Two passes, because they are good at different things: while an utterance grows it is
    decoded live, in pieces as it arrives, for cheap partial hypotheses; when it ends, the
    final text comes from decoding the whole utterance again in one batch. pocketsphinx only
    updates its live cepstral-mean (CMN) estimate between utterances, starting far from real
    speech, whereas the batch pass normalises with the utterance's own mean; on flite
    sentences batch decoding gives WER 0.15 against 0.34 live at 16 kHz, and 0.53 against 0.88
    for 8 kHz speech upsampled. It also makes each final result independent of what was heard
    before. The price is decoding twice (about 0.2 s of CPU per second of speech here); with
    ``start(live=False)`` (no partials wanted) the live pass is skipped.

    Runs of exact zeros at either end of the utterance are left out of the batch pass, in
    whole 10 ms frames: digital silence drags the utterance mean away from the speech (200 ms
    of it each side: 8 kHz WER 0.53 -> 0.61).

    The batch pass starts from a freshly initialised front end, so a final text is what a new
    decoder would make of that utterance alone. Creating the decoder takes about 0.3 s, so
    engines are made once and reused through :class:`EnginePool`; ``reset()`` reinitialises
    the front end, so that partials do not depend on earlier sessions either.
    """

    def __init__(self) -> None:
        from pocketsphinx import Decoder  # imported here: ~0.1 s, and only the server needs it

        self._decoder = Decoder(loglevel="FATAL")
        self._initial_cmn: str = self._decoder.get_cmn()
        self._in_utterance = False
        self._live = True
        self._live_open = False
        self._audio: list[Int16Array] = []

    def reset(self) -> None:
        self._close_live()
        self._in_utterance = False
        self._audio = []
        self._decoder.reinit_feat()
        self._decoder.set_cmn(self._initial_cmn)

    def start(self, position: int, *, live: bool = True) -> None:
        self._close_live()
        self._in_utterance = True
        self._live = live
        self._audio = []
        if live:
            self._decoder.start_utt()
            self._live_open = True

    def process(self, samples: Int16Array) -> None:
        if not self._in_utterance:
            raise EngineStateError("process() called outside an utterance; call start() first")
        if not len(samples):
            return
        samples = samples.astype("<i2", copy=False)
        self._audio.append(samples)
        if self._live:
            for i in range(0, len(samples), _PIECE):
                self._decoder.process_raw(samples[i : i + _PIECE].tobytes(), False, False)

    def partial(self) -> str:
        if not self._live_open:
            return ""
        return self._hypothesis()

    def finish(self) -> str:
        if not self._in_utterance:
            raise EngineStateError("finish() called outside an utterance; call start() first")
        self._in_utterance = False
        self._close_live()
        audio = np.concatenate(self._audio) if self._audio else np.zeros(0, np.int16)
        self._audio = []
        voiced = np.flatnonzero(audio)
        if not len(voiced):
            return ""
        # Trim whole 10 ms feature frames only: shifting pocketsphinx's frame grid by a few
        # samples is enough to change a word.
        head = voiced[0] // _FRAME_SHIFT * _FRAME_SHIFT
        tail = (len(audio) - 1 - voiced[-1]) // _FRAME_SHIFT * _FRAME_SHIFT
        audio = audio[head : len(audio) - tail]
        # The front end keeps state between utterances (noise estimate, live CMN), and the
        # live pass over this very audio would leave the batch pass a different result from
        # a fresh decoder's: start the batch from a clean front end, then give the next live
        # pass back the CMN estimate the session has built up.
        live_cmn = self._decoder.get_cmn()
        self._decoder.reinit_feat()
        self._decoder.start_utt()
        self._decoder.process_raw(audio.tobytes(), False, True)
        self._decoder.end_utt()
        text = self._hypothesis()
        self._decoder.reinit_feat()
        self._decoder.set_cmn(live_cmn)
        return text

    def _close_live(self) -> None:
        if self._live_open:
            self._live_open = False
            self._decoder.end_utt()

    def _hypothesis(self) -> str:
        hyp = self._decoder.hyp()
        return hyp.hypstr.strip() if hyp is not None else ""


class PlaceholderEngine:
    """A recogniser that recognises nothing: each utterance the VAD finds becomes the text
    ``[speech 1.2 s]``, its length. For load tests (``nsaudio serve --engine cheap``): results
    keep the protocol's shape, partials included, at almost no CPU (the server feeds it
    250 ms at a time, so they come up to that much later), where pocketsphinx decodes about
    2.5 streams per core."""

    inline = True

    def __init__(self, rate: int = ENGINE_RATE) -> None:
        self._rate = rate
        self._samples: int | None = None

    def reset(self) -> None:
        self._samples = None

    def start(self, position: int, *, live: bool = True) -> None:
        self._samples = 0

    def process(self, samples: Int16Array) -> None:
        if self._samples is None:
            raise EngineStateError("process() called outside an utterance; call start() first")
        self._samples += len(samples)

    def partial(self) -> str:
        return self._text() if self._samples else ""

    def finish(self) -> str:
        if self._samples is None:
            raise EngineStateError("finish() called outside an utterance; call start() first")
        text = self._text() if self._samples else ""
        self._samples = None
        return text

    def _text(self) -> str:
        return f"[speech {(self._samples or 0) / self._rate:.1f} s]"


ENGINES: dict[str, EngineFactory] = {
    "pocketsphinx": PocketSphinxEngine,
    "cheap": PlaceholderEngine,
}


class EnginePool:
    """At most ``capacity`` engines, made on demand by ``factory`` and reused.

    Thread-safe: ``acquire`` may build an engine (slow) and is meant to run in a worker thread.
    """

    def __init__(self, factory: EngineFactory, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self._factory = factory
        self.capacity = capacity
        self._idle: list[Engine] = []
        self._count = 0  # engines in existence or being built
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"EnginePool(capacity={self.capacity}, engines={self._count}, idle={len(self._idle)})"
        )

    def acquire(self) -> Engine:
        """An idle engine, reset for a new session; raises :class:`PoolExhausted` if none can be had."""
        with self._lock:
            if self._idle:
                engine = self._idle.pop()
            elif self._count < self.capacity:
                self._count += 1
                engine = None
            else:
                raise PoolExhausted(f"all {self.capacity} engines are in use")
        if engine is None:
            try:
                engine = self._factory()
            except BaseException:
                with self._lock:
                    self._count -= 1
                raise
        try:
            engine.reset()
        except Exception:
            self.discard(engine)
            raise
        return engine

    def release(self, engine: Engine) -> None:
        with self._lock:
            self._idle.append(engine)

    def discard(self, engine: Engine) -> None:
        """Forget an engine that failed; a new one will be built when needed."""
        with self._lock:
            self._count -= 1

    def prewarm(self, count: int = 1) -> None:
        """Build up to ``count`` idle engines now, so the first sessions do not wait for them."""
        engines = []
        try:
            for _ in range(count):
                engines.append(self.acquire())
        except PoolExhausted:
            pass
        finally:
            for engine in engines:
                self.release(engine)
