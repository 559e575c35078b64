"""Recordings made at test time with flite and sox, for tests that need more than the
committed fixtures (``fixtures/``) hold.

``three_utterances_in_noise``: 26 s at 16 kHz, mono int16 - three flite sentences (voice rms,
peak -3 dBFS, trimmed where their level first/last exceeds -70 dBFS) starting at 3 s, with
exactly 7 s between them, mixed onto brown noise (sox ``synth brownnoise``, peak -48 dBFS,
RMS about -53 dBFS: quiet room rumble whose 20 ms level swings by 10 dB). Byte-reproducible:
flite is deterministic and sox runs with -D (no dither) and -R (fixed seeds). Built in a
second or so; 26 s of noise would make a committed FLAC of about 300 kB.

``three_utterances_with``: the same sentences at the same places with one of the noises of
``tests/noises.py`` (music, clicks in the pauses, babble) added at a given level on top of
that room noise, or (``steady``) on brown noise of the given level instead of it.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

__all__ = ["NOISY_TEXTS", "Recording", "three_utterances_in_noise", "three_utterances_with"]

RATE = 16000
NOISY_TEXTS = (
    "the children are playing in the garden",
    "the train leaves at seven in the morning",
    "please call me back after lunch today",
)
LEAD, GAP, TOTAL = 3 * RATE, 7 * RATE, 26 * RATE


@dataclass(frozen=True)
class Recording:
    path: Path
    samples: np.ndarray  # int16, mono
    rate: int
    texts: tuple[str, ...]
    segments: tuple[tuple[int, int], ...]  # (start, end) of each sentence, in samples

    @property
    def seconds(self) -> list[tuple[float, float]]:
        return [(s / self.rate, e / self.rate) for s, e in self.segments]


def three_utterances_in_noise(folder: Path) -> Recording:
    """Build the recording in ``folder`` (needs flite and sox); see the module docstring."""
    flite, sox = shutil.which("flite"), shutil.which("sox")
    if flite is None or sox is None:
        raise FileNotFoundError("flite and sox are needed (apt-get install flite sox)")
    cmd = [sox, "-D", "-V2", "-R"]
    pcm = ["-b", "16", "-e", "signed-integer"]
    parts, segments, pos = [], [], LEAD
    silent = [*cmd, "-r", str(RATE), "-c", "1", "-n", *pcm]
    subprocess.run([*silent, str(folder / "lead.wav"), "trim", "0", f"{LEAD}s"], check=True)
    subprocess.run([*silent, str(folder / "gap.wav"), "trim", "0", f"{GAP}s"], check=True)
    for i, text in enumerate(NOISY_TEXTS):
        raw, trimmed = folder / f"u{i}.wav", folder / f"t{i}.wav"
        subprocess.run([flite, "-voice", "rms", "-t", text, "-o", str(raw)], check=True)
        subprocess.run(
            [*cmd, str(raw), *pcm, str(trimmed), "gain", "-n", "-3",
             "silence", "1", "0.01", "-70d", "reverse", "silence", "1", "0.01", "-70d", "reverse"],
            check=True,
        )  # fmt: skip
        n = sf.info(str(trimmed)).frames
        segments.append((pos, pos + n))
        pos += n + GAP
        parts += [str(folder / ("lead.wav" if i == 0 else "gap.wav")), str(trimmed)]
    voice, noise, out = folder / "voice.wav", folder / "noise.wav", folder / "three_in_noise.wav"
    subprocess.run(
        [*cmd, *parts, *pcm, str(voice), "pad", "0", "5", "trim", "0", f"{TOTAL}s"], check=True
    )
    subprocess.run(
        [*silent, str(noise), "synth", f"{TOTAL}s", "brownnoise", "gain", "-n", "-48"], check=True
    )
    subprocess.run(
        [*cmd, "-m", "-v", "1", str(voice), "-v", "1", str(noise), *pcm, str(out)], check=True
    )
    samples, rate = sf.read(str(out), dtype="int16")
    assert rate == RATE and len(samples) == TOTAL
    return Recording(out, samples, RATE, NOISY_TEXTS, tuple(segments))


def three_utterances_with(folder: Path, kind: str, level_db: float) -> Recording:
    """The sentences of :func:`three_utterances_in_noise` with the noise ``kind`` at
    ``level_db`` (see the module's docstring), written to ``folder``."""
    from .noises import make_noise

    base = three_utterances_in_noise(folder)
    voice, _ = sf.read(str(folder / "voice.wav"), dtype="float64")
    quiet = np.ones(len(voice), bool)
    for start, end in base.segments:
        quiet[start:end] = False
    if kind == "steady":
        mix = voice + make_noise("steady", len(voice), RATE, level_db)
    else:
        mix = base.samples / 32768 + make_noise(kind, len(voice), RATE, level_db, quiet)
    samples = np.clip(np.rint(mix * 32768), -32768, 32767).astype(np.int16)
    out = folder / f"three_with_{kind}_{level_db:g}.wav"
    sf.write(str(out), samples, RATE, subtype="PCM_16")
    return Recording(out, samples, RATE, NOISY_TEXTS, base.segments)
