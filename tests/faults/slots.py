"""Test audio that says where it is: every 100 ms slot of "speech" names its own position.

Slot ``k`` (samples ``[k * rate / 10, (k + 1) * rate / 10)`` of the stream) is either silent or
holds two tones, f1 = 300 + 50 * (k % 20) Hz and f2 = 1500 + 50 * ((k // 20) % 40) Hz: 800
distinct slots (80 s) before the code repeats. Each slot fades in and out over 5 ms so that
resampling rings little into its neighbours. A recogniser names a voiced slot ``w{k}`` by
the FFT peak in each band (Hann window over the slot: 10 Hz bins at any rate, tones on a
50 Hz grid, so a peak is off by less than half a step only if the audio is ruined).

Because the name comes from the tones, not from counting, a session that starts anywhere on
a slot boundary of the original stream decodes to the absolute slot numbers: a gap or a
repeat in what a server received shows up as a missing or repeated word.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

SLOTS_PER_SECOND = 10
CODES = 800
F1_BASE, F2_BASE, STEP = 300.0, 1500.0, 50.0
F1_CODES, F2_CODES = 20, 40
#: A slot is voiced when its RMS is above this (the tones are about -12 dBFS).
VOICED_RMS = 0.01
#: A decoded peak must stand this far above the band's median to count (else: noise).
MIN_PEAK_RATIO = 20.0


def slot_frequencies(k: int) -> tuple[float, float]:
    return F1_BASE + STEP * (k % F1_CODES), F2_BASE + STEP * ((k // F1_CODES) % F2_CODES)


@dataclass(frozen=True)
class SlotAudio:
    """The audio (float32, frames x channels), its rate, and which slots are voiced."""

    data: np.ndarray
    rate: int
    voiced: tuple[bool, ...]

    @property
    def words(self) -> list[str]:
        """What a perfect recogniser hears: ``w{k}`` for every voiced slot, in order."""
        return [f"w{k % CODES}" for k, v in enumerate(self.voiced) if v]

    def write(self, path: Path) -> Path:
        sf.write(str(path), self.data, self.rate, subtype="PCM_16")
        return path


def make_speech(
    seconds: float,
    *,
    rate: int = 48000,
    channels: int = 2,
    voiced_s: float = 2.5,
    silent_s: float = 0.5,
    level: float = 0.25,
) -> SlotAudio:
    """``seconds`` of slot-coded "speech": ``voiced_s`` of tones, then ``silent_s`` of silence, again.

    The stream ends with silence when the cycle does (60 s of 2.5 + 0.5 s does).
    """
    n_slots = round(seconds * SLOTS_PER_SECOND)
    cycle = round((voiced_s + silent_s) * SLOTS_PER_SECOND)
    voiced_slots = round(voiced_s * SLOTS_PER_SECOND)
    voiced = tuple(k % cycle < voiced_slots for k in range(n_slots))
    return from_voiced(voiced, rate=rate, channels=channels, level=level)


def make_pattern(
    parts: list[tuple[str, float]], *, rate: int = 48000, channels: int = 2,
    noise_dbfs: float | None = None,
) -> SlotAudio:  # fmt: skip
    """Slot-coded audio in the given order of ``("speech", seconds)`` and ``("pause",
    seconds)`` parts (whole slots); ``noise_dbfs``: quiet white noise under all of it."""
    voiced: list[bool] = []
    for kind, seconds in parts:
        if kind not in ("speech", "pause"):
            raise ValueError(f"a part is speech or pause, not {kind!r}")
        voiced += [kind == "speech"] * round(seconds * SLOTS_PER_SECOND)
    return from_voiced(tuple(voiced), rate=rate, channels=channels, noise_dbfs=noise_dbfs)


def from_voiced(
    voiced: tuple[bool, ...], *, rate: int = 48000, channels: int = 2, level: float = 0.25,
    noise_dbfs: float | None = None,
) -> SlotAudio:  # fmt: skip
    """The audio of these voiced and silent slots."""
    n_slots = len(voiced)
    slot = rate // SLOTS_PER_SECOND
    t = np.arange(slot) / rate
    ramp = np.ones(slot)
    fade = round(0.005 * rate)
    ramp[:fade] = ramp[-fade:][::-1] = 0.5 - 0.5 * np.cos(np.pi * np.arange(fade) / fade)
    mono = np.zeros(n_slots * slot)
    for k in range(n_slots):
        if voiced[k]:
            f1, f2 = slot_frequencies(k)
            tone = np.sin(2 * np.pi * f1 * t) + np.sin(2 * np.pi * f2 * t + 1.0)
            mono[k * slot : (k + 1) * slot] = level * ramp * tone
    if noise_dbfs is not None:  # from a fixed seed: the same file every run
        rms = 10 ** (noise_dbfs / 20)
        mono += np.random.default_rng(0).normal(0.0, rms, len(mono))
    # Unequal channels, so a downmix that drops or doubles one would still decode.
    cols = [mono * (1.0 - 0.2 * c) for c in range(channels)]
    return SlotAudio(np.stack(cols, axis=1).astype(np.float32), rate, voiced)


def _peak(spectrum: np.ndarray, freqs: np.ndarray, low: float, codes: int) -> int | None:
    band = (freqs > low - STEP / 2) & (freqs < low + STEP * (codes - 0.5))
    mag = spectrum[band]
    i = int(np.argmax(mag))
    if mag[i] < MIN_PEAK_RATIO * max(float(np.median(mag)), 1e-12):
        return None
    code = round((freqs[band][i] - low) / STEP)
    return code if 0 <= code < codes else None


def decode_slot(pcm: np.ndarray, rate: int) -> int | None:
    """The slot number ``k`` (mod 800) that a slot's tones say, or None if it is silent.

    ``pcm``: one slot of int16 or float mono audio. Voiced but undecodable audio raises
    ``ValueError``: a test must not mistake garbage for silence.
    """
    x = np.asarray(pcm, dtype=np.float64)
    if pcm.dtype == np.int16:
        x = x / 32768.0
    if not len(x) or float(np.sqrt(np.mean(x * x))) < VOICED_RMS:
        return None
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    freqs = np.fft.rfftfreq(len(x), 1.0 / rate)
    i1 = _peak(spectrum, freqs, F1_BASE, F1_CODES)
    i2 = _peak(spectrum, freqs, F2_BASE, F2_CODES)
    if i1 is None or i2 is None:
        raise ValueError(f"a voiced slot without a clear code (bands {i1}, {i2})")
    return i1 + F1_CODES * i2


def decode_pcm(pcm: bytes, rate: int) -> list[int | None]:
    """Every whole slot of int16 LE mono ``pcm``, decoded (None for silence)."""
    x = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2")  # a cut may split a sample
    slot = rate // SLOTS_PER_SECOND
    return [decode_slot(x[i : i + slot], rate) for i in range(0, len(x) - slot + 1, slot)]


def words_of(pcm: bytes, rate: int) -> list[str]:
    return [f"w{k}" for k in decode_pcm(pcm, rate) if k is not None]
