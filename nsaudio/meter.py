"""Am I audible? Levels, clipping and speech of a stream, a verdict, and a terminal meter.

Pure: no I/O, no threads, no clock of its own. ``nsaudio check`` feeds :class:`LevelStats`
the input blocks (before resampling: resampling smooths clipped plateaus into peaks below
full scale, hiding the clipping) and the frames after the energy gate, then asks for a
:class:`Verdict`. The rules, the first that applies wins:

1. ``silence``   the peak is below -60 dBFS (``silence_peak_db``): nothing is coming in.
2. ``clipping``  at least 0.1 % (``clip_fraction``) of the input samples are at full scale or
   within one 16-bit step of it (or beyond it, in float input): the gain is too high.
3. ``silence``   no frame stood out of the noise floor as speech (the energy gate's decision):
   there is signal, but nothing that sounds like someone talking.
4. ``too quiet`` speech was found, but the peak is below -35 dBFS (``quiet_peak_db``) or the
   RMS of the speech frames below -45 dBFS (``quiet_rms_db``): a service's VAD and
   recogniser will miss much of it.
5. ``audible``   otherwise.

Levels are dBFS: 0 is full scale (a full-scale sine's RMS is -3), and silence floors at
-100, so every number stays finite (and valid JSON).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .blocks import Block, Frame

__all__ = ["CLIP_LEVEL", "VERDICTS", "LevelMeter", "LevelStats", "Verdict", "block_peak", "db"]

#: Magnitudes at or above this count as clipped: full scale, or one 16-bit step below it.
CLIP_LEVEL = 32766 / 32768
_CLIP_INT16 = 32766
FLOOR_DB = -100.0

VERDICTS = ("audible", "too quiet", "clipping", "silence")

#: What to do about a verdict, for a live input and for a recording.
_HINTS = {
    "audible": ("", ""),
    "too quiet": (
        "raise the input gain or move closer to the microphone",
        "amplify or normalise the recording",
    ),
    "clipping": (
        "lower the input gain or move away from the microphone",
        "the recording is distorted: record it again at a lower gain",
    ),
    "silence": (
        "check that the right input is selected, unmuted, and its gain up (see 'nsaudio devices')",
        "the recording holds no speech",
    ),
}


def db(linear: float) -> float:
    """Amplitude (full scale 1.0) in dBFS, floored at -100."""
    return 20.0 * math.log10(linear) if linear > 1e-5 else FLOOR_DB


def block_peak(data: np.ndarray) -> tuple[float, int]:
    """Peak magnitude (full scale 1.0) and the number of clipped samples of an input block.

    int16 is compared as integers (no float copy); float NaN is ignored, infinity counts as
    full scale (which is what the resampler makes of it).
    """
    if not data.size:
        return 0.0, 0
    if data.dtype == np.int16:
        top, bottom = int(data.max()), int(data.min())
        clipped = np.count_nonzero(data >= _CLIP_INT16) + np.count_nonzero(data <= -_CLIP_INT16)
        return max(top, -bottom) / 32768.0, int(clipped)
    flat = data.reshape(-1)
    peak = max(float(np.fmax.reduce(flat)), -float(np.fmin.reduce(flat)))
    if not math.isfinite(peak):
        finite = np.nan_to_num(flat, nan=0.0, posinf=1.0, neginf=-1.0)
        peak = float(np.max(np.abs(finite)))
        flat = finite
    clipped = np.count_nonzero(flat >= CLIP_LEVEL) + np.count_nonzero(flat <= -CLIP_LEVEL)
    return peak, int(clipped)


@dataclass(frozen=True)
class Verdict:
    """The answer to "am I audible?" and the numbers behind it."""

    verdict: str
    peak_dbfs: float
    speech_fraction: float
    speech_rms_dbfs: float
    clipped_fraction: float
    seconds: float
    hint: str

    @property
    def ok(self) -> bool:
        return self.verdict == "audible"

    def line(self) -> str:
        """``audible: peak -3.0 dBFS, speech 62% of 2.4 s, speech RMS -14.1 dBFS``."""
        parts = [
            f"peak {self.peak_dbfs:.1f} dBFS",
            f"speech {100 * self.speech_fraction:.0f}% of {self.seconds:.1f} s",
        ]
        if self.speech_fraction > 0:
            parts.append(f"speech RMS {self.speech_rms_dbfs:.1f} dBFS")
        if self.clipped_fraction > 0:
            parts.append(f"{100 * self.clipped_fraction:.2f}% of samples clipped")
        text = f"{self.verdict}: " + ", ".join(parts)
        return f"{text}; {self.hint}" if self.hint else text

    def as_dict(self) -> dict[str, object]:
        out = asdict(self)
        for key in ("peak_dbfs", "speech_rms_dbfs", "seconds"):
            out[key] = round(out[key], 2)
        out["speech_fraction"] = round(self.speech_fraction, 4)
        out["clipped_fraction"] = round(self.clipped_fraction, 6)
        return out


class LevelStats:
    """Accumulates what the verdict needs; ``add_block`` the input, ``add_frame`` gated frames."""

    def __init__(
        self,
        *,
        silence_peak_db: float = -60.0,
        quiet_peak_db: float = -35.0,
        quiet_rms_db: float = -45.0,
        clip_fraction: float = 0.001,
    ) -> None:
        self.silence_peak_db = silence_peak_db
        self.quiet_peak_db = quiet_peak_db
        self.quiet_rms_db = quiet_rms_db
        self.clip_fraction = clip_fraction
        self.reset()

    def reset(self) -> None:
        self.input_frames = 0
        self.input_samples = 0
        self.input_rate = 0
        self.peak = 0.0
        self.clipped = 0
        self.frame_samples = 0
        self.speech_samples = 0
        self._speech_energy = 0.0

    def add_block(self, block: Block) -> tuple[float, int]:
        """Count an input block; returns its peak and clipped-sample count for a meter."""
        peak, clipped = block_peak(block.data)
        self.input_frames += block.frames
        self.input_samples += int(block.data.size)
        self.input_rate = block.rate
        self.clipped += clipped
        if peak > self.peak:
            self.peak = peak
        return peak, clipped

    def add_frame(self, frame: Frame) -> None:
        """Count a frame that went through the energy gate (``frame.speech`` set)."""
        self.frame_samples += frame.frames
        if frame.speech:
            x = np.frombuffer(frame.pcm, dtype="<i2").astype(np.float32)
            self.speech_samples += len(x)
            self._speech_energy += float(np.dot(x, x))

    @property
    def seconds(self) -> float:
        return self.input_frames / self.input_rate if self.input_rate else 0.0

    def verdict(self, *, live: bool = True) -> Verdict:
        """The verdict by the rules in this module's docstring; ``live`` picks the hint."""
        peak_db = db(self.peak)
        speech = self.speech_samples / self.frame_samples if self.frame_samples else 0.0
        if self.speech_samples:
            ms = self._speech_energy / self.speech_samples / (32768.0 * 32768.0)
            rms_db = max(FLOOR_DB, 10.0 * math.log10(ms)) if ms > 0 else FLOOR_DB
        else:
            rms_db = FLOOR_DB
        clipped = self.clipped / self.input_samples if self.input_samples else 0.0
        if peak_db < self.silence_peak_db:
            name = "silence"
        elif clipped >= self.clip_fraction:
            name = "clipping"
        elif not self.speech_samples:
            name = "silence"
        elif peak_db < self.quiet_peak_db or rms_db < self.quiet_rms_db:
            name = "too quiet"
        else:
            name = "audible"
        hint = _HINTS[name][0 if live else 1]
        return Verdict(name, peak_db, speech, rms_db, clipped, self.seconds, hint)


class LevelMeter:
    """What a live meter line shows: the recent level, a held peak, speech and clipping.

    Feed it ``peak()`` per input block and ``frame()`` per gated frame, with times in seconds
    from any clock; ``render(now)`` gives the line and starts a new level window.
    """

    def __init__(
        self,
        *,
        floor_db: float = -60.0,
        hold_seconds: float = 1.5,
        fall_db_per_second: float = 20.0,
        width: int = 30,
    ) -> None:
        self.floor_db = floor_db
        self.hold_seconds = hold_seconds
        self.fall_db_per_second = fall_db_per_second
        self.width = width
        self._level_db = FLOOR_DB
        self._held_db = FLOOR_DB
        self._held_at = 0.0
        self._clip_at: float | None = None
        self._speech = False

    def held_peak_db(self, now: float) -> float:
        late = now - self._held_at - self.hold_seconds
        if late <= 0:
            return self._held_db
        return max(FLOOR_DB, self._held_db - self.fall_db_per_second * late)

    def peak(self, peak: float, clipped: int, now: float) -> None:
        peak_db = db(peak)
        if peak_db >= self.held_peak_db(now):
            self._held_db, self._held_at = peak_db, now
        if clipped:
            self._clip_at = now

    def frame(self, level_db: float, speech: bool) -> None:
        self._level_db = max(self._level_db, level_db)
        self._speech = speech

    def _column(self, level_db: float) -> int:
        span = -self.floor_db
        return round(self.width * min(1.0, max(0.0, (level_db - self.floor_db) / span)))

    def bar(self, level_db: float, held_db: float | None = None) -> str:
        """``[##########.....|.....]``: ``width`` cells from ``floor_db`` to 0 dBFS, and a
        ``|`` at ``held_db`` when given and above the floor."""
        cells = ["#"] * self._column(level_db) + ["."] * (self.width - self._column(level_db))
        mark = 0 if held_db is None else self._column(held_db)
        if held_db is not None and held_db > self.floor_db and mark > 0:
            cells[mark - 1] = "|"
        return f"[{''.join(cells)}]"

    def render(self, now: float) -> str:
        """``[##########.....|.....] -23.4 dBFS  peak -12.0  speech   `` (fixed width)."""
        level, held = self._level_db, self.held_peak_db(now)
        clipping = self._clip_at is not None and now - self._clip_at <= self.hold_seconds
        state = "CLIP" if clipping else ("speech" if self._speech else "-")
        self._level_db = FLOOR_DB
        return f"{self.bar(level, held)} {level:6.1f} dBFS  peak {held:6.1f}  {state:<7}"
