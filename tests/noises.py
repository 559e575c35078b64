"""Noises that are not stationary, made here and reproducibly, to put under speech.

Each maker returns float64 samples at ``rate`` for ``n`` samples, from a fixed seed, scaled so
that its RMS (``music``, ``babble``, ``steady``) or its clicks' peak (``clicks``) is
``level_db`` dBFS:

- ``music``: a chord and a beat, steady: four chords (C, G, Am, F; each note with six
  harmonics, struck on every beat and dying away) at 120 beats a minute, with a kick drum
  on beats 1 and 3, a snare on 2 and 4 and a hi-hat on every half-beat. Music on hold.
- ``clicks``: keyboard-like clicks (3 ms of noise with a 2 ms decay, now low, now bright),
  in bursts of typing with a few quiet seconds between, only where ``quiet`` is true (in the
  pauses between sentences).
- ``babble``: other people talking, low: flite sentences in three other voices (kal, awb,
  slt), each voice looping its own sentences, all three at once.
- ``steady``: brown noise (room rumble), the stationary case the energy gate is made for.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

__all__ = ["KINDS", "babble", "clicks", "make_noise", "music", "steady"]

KINDS = ("music", "clicks", "babble", "steady")


def _to_rms(x: np.ndarray, level_db: float) -> np.ndarray:
    return x * (10 ** (level_db / 20) / np.sqrt(np.mean(x**2)))


def _decay(n: int, rate: int, seconds: float) -> np.ndarray:
    return np.exp(-np.arange(n) / (rate * seconds))


def music(n: int, rate: int, level_db: float, seed: int = 11) -> np.ndarray:
    rng = np.random.default_rng(seed)
    beat = rate // 2  # 120 bpm
    t = np.arange(n) / rate
    chords = [(261.63, 329.63, 392.00), (196.00, 246.94, 392.00),
              (220.00, 261.63, 329.63), (174.61, 220.00, 349.23)]  # fmt: skip
    x = np.zeros(n)
    bar = 4 * beat
    for start in range(0, n, bar):
        seg = slice(start, min(n, start + bar))
        for f in chords[(start // bar) % len(chords)]:
            tone = sum(np.sin(2 * np.pi * f * k * t[seg]) / k for k in range(1, 7))
            x[seg] += 0.25 * tone
    # Struck on every beat and dying away before the next, as a strummed guitar or a piano
    # plays them: what makes music's level move, beat by beat.
    x *= _decay(beat, rate, 0.08)[np.arange(n) % beat]
    for b, start in enumerate(range(0, n, beat)):
        end = min(n, start + beat)
        k = np.arange(end - start)
        if b % 2 == 0:  # kick: a falling sine
            f = 50 + 70 * _decay(len(k), rate, 0.03)
            x[start:end] += (
                1.5 * np.sin(2 * np.pi * np.cumsum(f) / rate) * _decay(len(k), rate, 0.12)
            )
        else:  # snare: a burst of noise
            x[start:end] += 0.8 * rng.standard_normal(len(k)) * _decay(len(k), rate, 0.06)
        for half in (start, start + beat // 2):  # hi-hat: bright noise, short
            m = min(n, half + rate // 20) - half
            if m > 0:
                x[half : half + m] += (
                    0.3 * np.diff(rng.standard_normal(m + 1)) * _decay(m, rate, 0.01)
                )
    return _to_rms(x, level_db)


def clicks(n: int, rate: int, level_db: float, quiet: np.ndarray, seed: int = 12) -> np.ndarray:
    """Clicks only where ``quiet`` (a boolean array of length n) holds, 0.5 s clear of the rest."""
    rng = np.random.default_rng(seed)
    x = np.zeros(n)
    margin = rate // 2
    allowed = quiet.copy()
    edges = np.flatnonzero(np.diff(quiet.astype(np.int8)))
    for e in edges:
        allowed[max(0, e - margin) : e + margin + 1] = False
    click = 3 * rate // 1000
    pos = int(rng.integers(0, rate))
    while pos < n:
        burst_end = pos + int(rng.uniform(0.8, 2.0) * rate)  # a burst of typing
        while pos < min(burst_end, n - click):
            if allowed[pos : pos + click].all():
                c = rng.standard_normal(click) * _decay(click, rate, 0.002)
                if rng.random() < 0.5:
                    c = np.diff(np.concatenate([[0.0], c]))  # a brighter key
                x[pos : pos + click] += c / np.max(np.abs(c))
            pos += int(rng.uniform(0.08, 0.25) * rate)
        pos = burst_end + int(rng.uniform(1.0, 3.0) * rate)
    return x * 10 ** (level_db / 20)


BABBLE = {
    "kal": ("we should move the meeting to thursday afternoon",
            "the report is almost finished but the numbers are late",
            "can you send me the address of the new office"),
    "awb": ("i think the weather will change by the weekend",
            "my brother bought a car last month and he loves it",
            "the shop on the corner closes early on sundays"),
    "slt": ("she said the tickets were sold out in an hour",
            "there is a small park behind the station",
            "put the boxes in the hall and we will sort them later"),
}  # fmt: skip


def babble(n: int, rate: int, level_db: float, seed: int = 13) -> np.ndarray:
    """Needs flite (and its voices kal, awb, slt)."""
    flite = shutil.which("flite")
    if flite is None:
        raise FileNotFoundError("flite is needed (apt-get install flite)")
    rng = np.random.default_rng(seed)
    x = np.zeros(n)
    with tempfile.TemporaryDirectory() as tmp:
        for voice, texts in BABBLE.items():
            track = []
            for i, text in enumerate(texts):
                path = Path(tmp) / f"{voice}{i}.wav"
                subprocess.run([flite, "-voice", voice, "-t", text, "-o", str(path)], check=True)
                y, r = sf.read(str(path), dtype="float64")
                y = soxr.resample(y, r, rate, quality="HQ") if r != rate else y
                track += [y / np.sqrt(np.mean(y**2)), np.zeros(int(rng.uniform(0.1, 0.4) * rate))]
            loop = np.concatenate(track)
            start = int(rng.integers(0, len(loop)))
            x += np.resize(np.roll(loop, -start), n)
    return _to_rms(x, level_db)


def steady(n: int, rate: int, level_db: float, seed: int = 14) -> np.ndarray:
    rng = np.random.default_rng(seed)
    brown = np.cumsum(rng.standard_normal(n))
    brown -= np.convolve(brown, np.ones(1601) / 1601, mode="same")  # no drift: rumble
    return _to_rms(brown, level_db)


def make_noise(
    kind: str, n: int, rate: int, level_db: float, quiet: np.ndarray | None = None
) -> np.ndarray:
    """The noise ``kind`` (see the module's docstring); ``quiet`` is needed for clicks."""
    if kind == "music":
        return music(n, rate, level_db)
    if kind == "clicks":
        if quiet is None:
            raise ValueError("clicks go only where it is quiet: give quiet")
        return clicks(n, rate, level_db, quiet)
    if kind == "babble":
        return babble(n, rate, level_db)
    if kind == "steady":
        return steady(n, rate, level_db)
    raise ValueError(f"unknown noise {kind!r}: one of {', '.join(KINDS)}")
