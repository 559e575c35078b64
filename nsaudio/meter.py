"""Am I audible? Levels, clipping and speech of a stream, a verdict, and a terminal meter.

Pure: no I/O, no threads, no clock of its own. ``nsaudio check`` feeds :class:`LevelStats`
the input blocks (before resampling: resampling smooths clipped plateaus into peaks below
full scale, hiding the clipping) and the frames after the energy gate, then asks for a
:class:`Verdict`. The verdict says what ``nsaudio stream`` will make of the audio: the gate
is the one ``stream --gate`` uses, and the local server's VAD decides speech with the same
detector at the same threshold. The rules, the first that applies wins:

1. ``clipping``  at least 0.1 % (``clip_fraction``) of the input samples are at full scale or
   within one 16-bit step of it (or beyond it, in float input): the gain is too high, and a
   recogniser mishears distorted speech (the clipped fixture: WER 0.86).
2. ``silence``   no frame stands out of the noise floor as speech, and none would 20 dB
   louder (``louder_db``): ``--gate`` sends nothing and no text comes back.
3. ``tone``      most (``tone_fraction``, 60 %) of the loud speech frames are one steady
   frequency (a dial tone, a test sine, a whistle): the gate sends it as speech, and a
   recogniser finds no words in it.
4. ``too quiet`` the gate hears less than ``quiet_ratio`` (80 %) of the speech it would hear
   20 dB louder: the detector's floor stops at -80 dBFS, so speech that quiet is cut up or
   missed, by ``--gate`` and by a VAD like the local server's (the speech fixture peaking at
   -55 dBFS is heard in 58 of the 99 frames it would be 20 dB louder, and comes back as wrong
   words; peaking at -50 dBFS, 98 of 99, word for word).
5. ``audible``   otherwise: it will be sent, and heard.

Levels are dBFS: 0 is full scale (a full-scale sine's RMS is -3), and silence floors at
-100, so every number stays finite (and valid JSON).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .blocks import Block, Frame
from .stages.energy_gate import EnergyGate

__all__ = [
    "CLIP_LEVEL",
    "VERDICTS",
    "LevelMeter",
    "LevelStats",
    "Verdict",
    "block_peak",
    "db",
    "dominant_tone",
]

#: Magnitudes at or above this count as clipped: full scale, or one 16-bit step below it.
CLIP_LEVEL = 32766 / 32768
_CLIP_INT16 = 32766
FLOOR_DB = -100.0

VERDICTS = ("audible", "too quiet", "tone", "clipping", "silence")
#: A frame quieter than this is not looked at for a tone (digital silence held as speech
#: by the gate's hangover has no frequency).
_TONE_MIN_DB = -90.0
#: Share of a frame's energy within two bins of its strongest that makes it one tone. Speech
#: frames here: 2-30 % of them pass (flite fixtures); a sine, with or without noise, 100 %.
_TONE_PEAK_SHARE = 0.95

#: What to do about a verdict, for a live input and for a recording.
_HINTS = {
    "audible": ("", ""),
    "too quiet": (
        "raise the input gain or move closer to the microphone: the gate and a service's VAD "
        "would miss part of the speech",
        "amplify or normalise the recording: the gate and a service's VAD would miss part of "
        "the speech",
    ),
    "clipping": (
        "lower the input gain or move away from the microphone",
        "the recording is distorted: record it again at a lower gain",
    ),
    "silence": (
        "check that the right input is selected, unmuted, and its gain up (see 'nsaudio devices')",
        "the recording holds no speech",
    ),
    "tone": (
        "that is a steady tone, not a voice: the gate would send it and a recogniser find no "
        "words in it",
        "that is a steady tone, not a voice: the gate would send it and a recogniser find no "
        "words in it",
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


def dominant_tone(pcm: np.ndarray, rate: int) -> tuple[float, float]:
    """The strongest frequency of a frame of samples (Hz, interpolated between FFT bins) and
    the share of the frame's energy within two bins of it (1.0: a pure tone)."""
    x = pcm.astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    total = float(spectrum.sum())
    if total <= 0 or len(spectrum) < 3:
        return 0.0, 0.0
    k = int(np.argmax(spectrum))
    share = float(spectrum[max(0, k - 2) : k + 3].sum()) / total
    shift = 0.0
    if 0 < k < len(spectrum) - 1:  # the peak of a parabola through the bin and its neighbours
        a, b, c = np.log(spectrum[k - 1 : k + 2] + 1e-30)
        if a - 2 * b + c < 0:
            shift = 0.5 * (a - c) / (a - 2 * b + c)
    return (k + shift) * rate / len(x), share


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
    #: What the gate would call speech were the audio ``louder_db`` (20 dB) louder.
    louder_speech_fraction: float = 0.0
    #: Of the loud speech frames, the share that is one steady frequency, and its median.
    tone_fraction: float = 0.0
    tone_hz: float = 0.0

    @property
    def ok(self) -> bool:
        return self.verdict == "audible"

    def line(self) -> str:
        """``audible: peak -3.0 dBFS, speech 62% of 2.4 s, speech RMS -14.1 dBFS``."""
        speech = f"speech {100 * self.speech_fraction:.0f}% of {self.seconds:.1f} s"
        if self.verdict in ("too quiet", "silence") and self.louder_speech_fraction:
            speech += f" ({100 * self.louder_speech_fraction:.0f}% were it 20 dB louder)"
        parts = [f"peak {self.peak_dbfs:.1f} dBFS", speech]
        if self.speech_fraction > 0:
            parts.append(f"speech RMS {self.speech_rms_dbfs:.1f} dBFS")
        if self.verdict == "tone":
            parts.append(
                f"one steady tone near {self.tone_hz:.0f} Hz in {100 * self.tone_fraction:.0f}% of it"
            )
        if self.clipped_fraction > 0:
            parts.append(f"{100 * self.clipped_fraction:.2f}% of samples clipped")
        text = f"{self.verdict}: " + ", ".join(parts)
        return f"{text}; {self.hint}" if self.hint else text

    def as_dict(self) -> dict[str, object]:
        out = asdict(self)
        for key in ("peak_dbfs", "speech_rms_dbfs", "seconds"):
            out[key] = round(out[key], 2)
        for key in ("speech_fraction", "louder_speech_fraction", "tone_fraction"):
            out[key] = round(out[key], 4)
        out["clipped_fraction"] = round(self.clipped_fraction, 6)
        out["tone_hz"] = round(self.tone_hz, 1)
        return out


class LevelStats:
    """Accumulates what the verdict needs; ``add_block`` the input, ``add_frame`` the frames
    the energy gate labelled (``threshold``: that gate's, so that the gate kept here for
    audio ``louder_db`` louder judges alike). The other keywords are the rules' limits (see
    the module docstring)."""

    def __init__(
        self,
        *,
        threshold: float = 0.5,
        clip_fraction: float = 0.001,
        louder_db: float = 20.0,
        quiet_ratio: float = 0.8,
        tone_fraction: float = 0.6,
    ) -> None:
        self.threshold = threshold
        self.clip_fraction = clip_fraction
        self.louder_db = louder_db
        self.quiet_ratio = quiet_ratio
        self.tone_fraction = tone_fraction
        self._gain = 10 ** (louder_db / 20)
        self._louder = EnergyGate(threshold)
        self.reset()

    def reset(self) -> None:
        self.input_frames = 0
        self.input_samples = 0
        self.input_rate = 0
        self.peak = 0.0
        self.clipped = 0
        self.frame_samples = 0
        self.speech_samples = 0
        self.louder_speech_samples = 0
        self.loud_frames = 0  # speech frames above _TONE_MIN_DB: looked at for a tone
        self.tone_frames: list[float] = []  # their frequencies, where one tone held them
        self._speech_energy = 0.0
        self._louder.reset()

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
        x = np.frombuffer(frame.pcm, dtype="<i2")
        louder = np.clip(x * self._gain, -32768, 32767).astype("<i2")
        heard = self._louder.push(Frame(louder.tobytes(), frame.start, frame.rate, frame.t_ns))
        if heard and heard[0].speech:
            self.louder_speech_samples += frame.frames
        if not frame.speech:
            return
        energy = float(np.dot(x.astype(np.float32), x.astype(np.float32)))
        self.speech_samples += len(x)
        self._speech_energy += energy
        if len(x) and db(math.sqrt(energy / len(x)) / 32768.0) >= _TONE_MIN_DB:
            self.loud_frames += 1
            hz, share = dominant_tone(x, frame.rate)
            if share >= _TONE_PEAK_SHARE:
                self.tone_frames.append(hz)

    @property
    def seconds(self) -> float:
        return self.input_frames / self.input_rate if self.input_rate else 0.0

    def verdict(self, *, live: bool = True) -> Verdict:
        """The verdict by the rules in this module's docstring; ``live`` picks the hint."""
        peak_db = db(self.peak)
        frames = self.frame_samples
        speech = self.speech_samples / frames if frames else 0.0
        louder = self.louder_speech_samples / frames if frames else 0.0
        if self.speech_samples:
            ms = self._speech_energy / self.speech_samples / (32768.0 * 32768.0)
            rms_db = max(FLOOR_DB, 10.0 * math.log10(ms)) if ms > 0 else FLOOR_DB
        else:
            rms_db = FLOOR_DB
        clipped = self.clipped / self.input_samples if self.input_samples else 0.0
        tone = len(self.tone_frames) / self.loud_frames if self.loud_frames else 0.0
        if clipped >= self.clip_fraction:
            name = "clipping"
        elif not self.speech_samples and not self.louder_speech_samples:
            name = "silence"
        elif tone >= self.tone_fraction:
            name = "tone"
        elif self.speech_samples < self.quiet_ratio * self.louder_speech_samples:
            name = "too quiet"
        else:
            name = "audible"
        hint = _HINTS[name][0 if live else 1]
        hz = float(np.median(self.tone_frames)) if self.tone_frames else 0.0
        return Verdict(
            name, peak_db, speech, rms_db, clipped, self.seconds, hint,
            louder_speech_fraction=louder, tone_fraction=tone, tone_hz=hz,
        )  # fmt: skip


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
