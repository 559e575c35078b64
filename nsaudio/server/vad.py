"""Speech segmentation for the local server, as a pure state machine.

Each 20 ms frame is labelled speech or not by a speech detector (``nsaudio.detectors``, the
interface the client's gate uses too): by default
:class:`~nsaudio.detectors.energy.EnergyDetector`, the same adaptive-floor detector as the
client's energy gate (one implementation: see its module for the floor and the score; here
its floor rises faster between segments, :data:`QUIET_RISE_DB_PER_S`), or
Silero (``VadConfig(detector="silero")``, ``nsaudio serve --vad silero``). The session's
``vad_threshold`` is the detector's ``threshold`` unchanged. With energy, a frame is speech
when its level stands ``6 + 20 * vad_threshold`` dB above the noise floor (16 dB at the
default 0.5, 26 dB at 1.0), so a higher threshold needs louder speech, as on the service. The
service takes any positive threshold, and so does this VAD: 1.5 needs 36 dB; from about 3.7
up (over 80 dB above a floor of digital silence) no 16-bit audio is loud enough, and nothing
is transcribed. With Silero it is the speech probability (above 1, nothing is speech).

:class:`Segmenter` turns those labels into segments: a segment opens after ``onset_ms`` of
consecutive speech frames, starting ``preroll_ms`` earlier so word onsets are kept; the first
``hangover_ms`` of non-speech after speech still belong to it; it closes once ``pause_ms`` of
non-speech have followed the last speech frame. Non-speech beyond the hangover is held back
and only handed on if speech resumes, so a closed segment never contains the pause itself.

Timing, with the defaults: a segment closes ``pause_ms`` = 600 ms after the last speech frame,
so a client must send at least 0.6 s of silence (plus up to one 20 ms frame) after speech for
the last segment to be finalised; 1 s is comfortable.

Everything is integer sample positions; no clocks, no randomness.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from ..detectors.base import DETECTORS, make_detector
from ..detectors.energy import EnergyDetector

__all__ = [
    "SegmentAudio",
    "SegmentEnd",
    "SegmentEvent",
    "SegmentStart",
    "Segmenter",
    "VadConfig",
]

Int16Array = npt.NDArray[np.int16]

#: How fast the energy detector's floor rises through frames short of speech between
#: segments, in dB/s: ten times its rise elsewhere, so the floor at a sentence's onset is
#: that of the last 0.2-0.3 s of noise. A gate sends that much before each onset (its
#: pre-roll), so a gated stream's segments start and end where the whole stream's do; with
#: the slow rise everywhere, the floor sat on the quietest frame of the last seconds and
#: moved with how much of the pause was sent (see ``nsaudio.detectors.energy``).
QUIET_RISE_DB_PER_S = 60.0


@dataclass(frozen=True)
class VadConfig:
    """Tuning of :class:`Segmenter`; durations in milliseconds.

    ``threshold`` is the detector's (the session's ``vad_threshold``); ``detector`` names it
    (``"energy"`` or ``"silero"``), which otherwise keeps its shared defaults.
    """

    threshold: float = 0.5
    detector: str = "energy"
    rate: int = 16000
    frame_ms: int = 20
    preroll_ms: int = 300
    onset_ms: int = 40
    hangover_ms: int = 200
    pause_ms: int = 600

    def __post_init__(self) -> None:
        if not (math.isfinite(self.threshold) and self.threshold > 0.0):
            raise ValueError(f"threshold must be a positive number, got {self.threshold!r}")
        if self.detector not in DETECTORS:
            raise ValueError(
                f"detector must be one of {', '.join(DETECTORS)}, got {self.detector!r}"
            )
        if self.rate <= 0 or self.frame_ms <= 0 or (self.rate * self.frame_ms) % 1000:
            raise ValueError(
                f"frame_ms={self.frame_ms} must be a positive whole number of samples at {self.rate} Hz"
            )
        for name in ("preroll_ms", "onset_ms", "hangover_ms", "pause_ms"):
            value = getattr(self, name)
            if value < 0 or value % self.frame_ms:
                raise ValueError(f"{name} must be a non-negative multiple of frame_ms, got {value}")
        if self.onset_ms < self.frame_ms:
            raise ValueError("onset_ms must be at least one frame")
        if not self.hangover_ms < self.pause_ms:
            raise ValueError("hangover_ms must be shorter than pause_ms")

    @property
    def frame_samples(self) -> int:
        return self.rate * self.frame_ms // 1000

    def frames(self, ms: int) -> int:
        return ms // self.frame_ms


@dataclass(frozen=True)
class SegmentStart:
    position: int


@dataclass(frozen=True)
class SegmentAudio:
    """Audio belonging to the open segment, starting at sample ``position``."""

    position: int
    samples: Int16Array = field(repr=False)

    @property
    def end(self) -> int:
        return self.position + len(self.samples)


@dataclass(frozen=True)
class SegmentEnd:
    """The open segment closed; ``position`` is the end of its last audio."""

    position: int


SegmentEvent = SegmentStart | SegmentAudio | SegmentEnd


class _Events:
    """Event list builder that merges contiguous audio into one array per run."""

    def __init__(self) -> None:
        self.events: list[SegmentEvent] = []
        self._run: list[Int16Array] = []
        self._run_start = 0
        self._run_end = 0

    def audio(self, position: int, samples: Int16Array) -> None:
        if self._run and position != self._run_end:
            self._close_run()
        if not self._run:
            self._run_start = position
        self._run.append(samples)
        self._run_end = position + len(samples)

    def mark(self, event: SegmentStart | SegmentEnd) -> None:
        self._close_run()
        self.events.append(event)

    def done(self) -> list[SegmentEvent]:
        self._close_run()
        return self.events

    def _close_run(self) -> None:
        if self._run:
            samples = self._run[0] if len(self._run) == 1 else np.concatenate(self._run)
            self.events.append(SegmentAudio(self._run_start, samples))
            self._run = []


class Segmenter:
    """Splits a 16-bit mono stream into speech segments.

    ``push(samples) -> list[SegmentEvent]`` takes any number of samples; ``flush()`` closes an
    open segment at end of stream; ``reset()`` starts over at position 0.
    """

    def __init__(self, config: VadConfig | None = None) -> None:
        self.config = config if config is not None else VadConfig()
        c = self.config
        self._frame = c.frame_samples
        self._onset = c.frames(c.onset_ms)
        self._hangover = c.frames(c.hangover_ms)
        self._pause = c.frames(c.pause_ms)
        self._preroll_frames = c.frames(c.preroll_ms) + self._onset
        self.detector = (
            EnergyDetector(c.threshold, quiet_rise_db_per_s=QUIET_RISE_DB_PER_S)
            if c.detector == "energy"
            else make_detector(c.detector, c.threshold)
        )
        self.reset()

    def reset(self) -> None:
        self.detector.reset()
        self.position = 0  # samples consumed, including the incomplete frame held back
        self._remainder: Int16Array = np.zeros(0, dtype=np.int16)
        self._in_speech = False
        self._speech_run = 0
        self._silence_run = 0
        self._fed_end = 0
        self._preroll: deque[tuple[int, Int16Array]] = deque(maxlen=self._preroll_frames)
        self._pending: list[tuple[int, Int16Array]] = []

    @property
    def in_speech(self) -> bool:
        return self._in_speech

    def push(self, samples: Int16Array) -> list[SegmentEvent]:
        if samples.dtype != np.int16 or samples.ndim != 1:
            raise TypeError(
                f"expected a 1-D int16 array, got {samples.dtype} with shape {samples.shape}"
            )
        self.position += len(samples)
        if len(self._remainder):
            samples = np.concatenate([self._remainder, samples])
        n = len(samples) // self._frame
        start = self.position - len(samples)
        self._remainder = samples[n * self._frame :]
        out = _Events()
        if n:
            frames = samples[: n * self._frame].reshape(n, self._frame)
            threshold = self.detector.threshold
            for i, score in enumerate(self._scores(frames)):
                self._step(out, start + i * self._frame, frames[i], score >= threshold)
        return out.done()

    def _scores(self, frames: Int16Array) -> Iterator[float]:
        """The detector's scores of ``frames``: Silero's (any other's) in one batch; the energy
        detector's one frame at a time, each told whether the frame before it left a segment
        open (its floor rises faster between segments), so this is consumed in step with
        ``_step``."""
        detector = self.detector
        if not isinstance(detector, EnergyDetector):
            yield from detector.scores(frames, self.config.rate)
            return
        for i in range(len(frames)):
            detector.between = not self._in_speech
            yield from detector.scores(frames[i : i + 1], self.config.rate)

    def flush(self) -> list[SegmentEvent]:
        """Close an open segment at end of stream, with the incomplete last frame if it adjoins.

        Held-back non-speech is dropped. The noise floor and the position are kept.
        """
        out = _Events()
        if self._in_speech:
            tail_start = self.position - len(self._remainder)
            if len(self._remainder) and tail_start == self._fed_end:
                self._feed(out, tail_start, self._remainder)
            out.mark(SegmentEnd(self._fed_end))
        self._remainder = np.zeros(0, dtype=np.int16)
        self._in_speech = False
        self._speech_run = 0
        self._silence_run = 0
        self._preroll.clear()
        self._pending.clear()
        return out.done()

    def _feed(self, out: _Events, position: int, frame: Int16Array) -> None:
        out.audio(position, frame)
        self._fed_end = position + len(frame)

    def _step(self, out: _Events, position: int, frame: Int16Array, speech: bool) -> None:
        if not self._in_speech:
            self._preroll.append((position, frame))
            self._speech_run = self._speech_run + 1 if speech else 0
            if self._speech_run >= self._onset:
                self._in_speech = True
                self._silence_run = 0
                out.mark(SegmentStart(self._preroll[0][0]))
                for p, f in self._preroll:
                    self._feed(out, p, f)
                self._preroll.clear()
            return
        if speech:
            self._silence_run = 0
            for p, f in self._pending:
                self._feed(out, p, f)
            self._pending.clear()
            self._feed(out, position, frame)
            return
        self._silence_run += 1
        if self._silence_run <= self._hangover:
            self._feed(out, position, frame)
        else:
            self._pending.append((position, frame))
        if self._silence_run >= self._pause:
            out.mark(SegmentEnd(self._fed_end))
            self._in_speech = False
            self._speech_run = 0
            self._preroll.extend(self._pending)
            self._pending.clear()
