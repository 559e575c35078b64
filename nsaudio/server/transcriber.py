"""One stream session's transcription logic, with no I/O: bytes in, result messages out.

:class:`Transcriber` converts the client's PCM to 16 kHz, segments it (``vad``: the energy
gate's speech detector) and drives an engine, deciding when partial and full results are due
and numbering them. The server runs ``feed`` in a worker thread because the engine's
decoding is CPU work.

Result rules:

* an *utterance* is a VAD segment, or a ``max_chunk_size``-second piece of a longer one;
* while an utterance grows, a partial result (``full: false``) is due after each second of new
  audio (at most one per ``feed``: only the newest matters, each replaces the one before),
  unless ``disable_partial``; an empty hypothesis is not sent;
* when the utterance ends, its full result is sent if its text is not empty, or if partials
  were sent (an empty full result then tells the client to clear its partial);
* every utterance that sends anything gets the next ``chunk_id`` (0, 1, 2...), shared by its
  partials and its full result;
* ``start_time``/``end_time`` are 16 kHz sample positions of the utterance's audio divided by
  16000, i.e. seconds of session audio at either input rate; that audio is the speech with
  the VAD's pre-roll (300 ms) before it and hangover (200 ms) after it.

``pcm_8k`` is upsampled to 16 kHz (soxr, HQ) for the VAD and the engine: the bundled
pocketsphinx model is wideband, and configuring it for 8 kHz input instead (its filterbank cut
to 3.5 kHz) recognised nothing useful (WER 0.95 on flite sentences, against 0.53 upsampled).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import soxr

from .engines import ENGINE_RATE, Engine, Int16Array
from .params import SessionParams
from .vad import SegmentAudio, Segmenter, SegmentEvent, SegmentStart, VadConfig

__all__ = ["PARTIAL_INTERVAL_S", "Transcriber"]

PARTIAL_INTERVAL_S = 1.0


class Transcriber:
    """Turns one session's audio into NeuralSpace result messages.

    ``feed(pcm) -> list[dict]`` takes int16 LE mono PCM at ``params.sample_rate`` (any byte
    count; an odd byte is carried to the next call). ``flush()`` finishes the open utterance
    (for in-process use; the WebSocket protocol has no end-of-stream, so the server calls
    ``close()`` instead, which drops it).

    ``clock`` stamps ``send_time``; the server overwrites it when it actually sends.
    """

    def __init__(
        self,
        params: SessionParams,
        engine: Engine,
        *,
        vad_config: VadConfig | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if vad_config is None:
            vad_config = VadConfig(threshold=params.vad_threshold, rate=ENGINE_RATE)
        elif vad_config.rate != ENGINE_RATE:
            raise ValueError(f"vad_config.rate must be {ENGINE_RATE}, got {vad_config.rate}")
        self.params = params
        self._engine = engine
        self._clock = clock
        self._segmenter = Segmenter(vad_config)
        self._resampler = self._new_resampler()
        self._max_utterance = params.max_chunk_size * ENGINE_RATE
        self._partial_every = int(PARTIAL_INTERVAL_S * ENGINE_RATE)
        self._odd = b""
        self.bytes_received = 0
        self.results_made = 0
        self._next_chunk_id = 0
        self._closed = False
        self._utt_start: int | None = None  # position of the open utterance, if any
        self._utt_end = 0
        self._utt_chunk_id: int | None = None
        self._partial_due_at = 0

    @property
    def position(self) -> int:
        """16 kHz samples of session audio consumed so far."""
        return self._segmenter.position

    def feed(self, pcm: bytes) -> list[dict[str, Any]]:
        if self._closed:
            raise RuntimeError("Transcriber is closed")
        self.bytes_received += len(pcm)
        data = self._odd + pcm if self._odd else pcm
        usable = len(data) & ~1
        self._odd = data[usable:]
        if not usable:
            return []
        samples: Int16Array = np.frombuffer(data, dtype="<i2", count=usable // 2).astype(
            np.int16, copy=False
        )
        if self._resampler is not None:
            samples = self._upsample(self._resampler, samples)
        out: list[dict[str, Any]] = []
        self._handle(self._segmenter.push(samples), out)
        self._maybe_partial(out)
        return out

    def flush(self) -> list[dict[str, Any]]:
        """Finish the open utterance as if the stream had ended with silence."""
        if self._closed:
            raise RuntimeError("Transcriber is closed")
        out: list[dict[str, Any]] = []
        if self._resampler is not None:
            tail = self._upsample(self._resampler, np.zeros(0, dtype=np.int16), last=True)
            self._resampler = self._new_resampler()
            self._handle(self._segmenter.push(tail), out)
        self._handle(self._segmenter.flush(), out)
        return out

    def close(self) -> None:
        """Drop the open utterance (the client went away); the engine is left idle."""
        if self._closed:
            return
        self._closed = True
        if self._utt_start is not None:
            self._utt_start = None
            self._engine.finish()

    def _new_resampler(self) -> soxr.ResampleStream | None:
        if self.params.sample_rate == ENGINE_RATE:
            return None
        # float32, not int16: soxr's int16 stream output changes by an LSB with the chunking,
        # and pocketsphinx can turn an LSB into another word; the float32 stream output is the
        # same however the client cuts its messages.
        return soxr.ResampleStream(
            self.params.sample_rate, ENGINE_RATE, 1, dtype="float32", quality="HQ"
        )

    @staticmethod
    def _upsample(
        resampler: soxr.ResampleStream, samples: Int16Array, last: bool = False
    ) -> Int16Array:
        x = samples.astype(np.float32) * np.float32(1 / 32768)
        y = resampler.resample_chunk(x, last=last)
        return np.clip(np.rint(y * 32768), -32768, 32767).astype(np.int16)

    def _handle(self, events: list[SegmentEvent], out: list[dict[str, Any]]) -> None:
        for event in events:
            if isinstance(event, SegmentStart):
                self._start_utterance(event.position)
            elif isinstance(event, SegmentAudio):
                self._process(event.position, event.samples, out)
            else:
                self._end_utterance(out)

    def _start_utterance(self, position: int) -> None:
        self._engine.start(position, live=not self.params.disable_partial)
        self._utt_start = self._utt_end = position
        self._utt_chunk_id = None
        self._partial_due_at = position + self._partial_every

    def _process(self, position: int, samples: Int16Array, out: list[dict[str, Any]]) -> None:
        if self._utt_start is None:
            raise RuntimeError("segment audio outside a segment")  # a Segmenter bug
        while len(samples):
            room = self._utt_start + self._max_utterance - self._utt_end
            piece, samples = samples[:room], samples[room:]
            self._engine.process(piece)
            self._utt_end += len(piece)
            if self._utt_end - self._utt_start >= self._max_utterance:
                self._end_utterance(out)
                self._start_utterance(self._utt_end)

    def _end_utterance(self, out: list[dict[str, Any]]) -> None:
        if self._utt_start is None:
            return
        start, self._utt_start = self._utt_start, None
        text = self._engine.finish()
        if text or self._utt_chunk_id is not None:
            out.append(self._message(True, text, start))

    def _maybe_partial(self, out: list[dict[str, Any]]) -> None:
        if self.params.disable_partial or self._utt_start is None:
            return
        if self._utt_end < self._partial_due_at:
            return
        self._partial_due_at = self._utt_end + self._partial_every
        text = self._engine.partial()
        if text:
            out.append(self._message(False, text, self._utt_start))

    def _message(self, full: bool, text: str, start: int) -> dict[str, Any]:
        if self._utt_chunk_id is None:
            self._utt_chunk_id = self._next_chunk_id
            self._next_chunk_id += 1
        self.results_made += 1
        return {
            "full": full,
            "stream_id": self.params.session_id,
            "chunk_id": self._utt_chunk_id,
            "start_time": start / ENGINE_RATE,
            "end_time": self._utt_end / ENGINE_RATE,
            "send_time": self._clock(),
            "text": text,
        }
