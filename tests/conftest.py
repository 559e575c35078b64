"""Shared test helpers: the fixture corpus, one-shot references, running the CLI, and the
stand-in service (`fault_server`) the fault and gateway tests start."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import soundfile as sf
import soxr

if TYPE_CHECKING:
    from .faults.server import FaultServer

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
MANIFEST = json.loads((FIXTURES / "fixtures.json").read_text())
SPEECH = [f for f in MANIFEST if f["kind"] == "speech"]

# A shell without job control that starts the suite in the background (`bash scripts/test.sh
# &`, `nohup ... &`) ignores SIGINT for it, and the children inherit that: Python then never
# installs its KeyboardInterrupt handler, here or in the commands the tests start, and every
# Ctrl-C test fails. Catching SIGINT again here restores both (a caught signal is reset to
# its default in a child; an ignored one stays ignored).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def fixture_path(name: str) -> Path:
    return FIXTURES / name


def fixture_ids(entries: list[dict]) -> list[str]:
    return [e["file"] for e in entries]


def read_float(path: Path) -> tuple[np.ndarray, int]:
    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return data, rate


def reference(path: Path, rate: int, channel: int | None = None) -> np.ndarray:
    """One-shot soxr HQ of the mean downmix: what every conversion is compared with."""
    data, in_rate = read_float(path)
    mono = (
        data.mean(axis=1, dtype=np.float64).astype(np.float32)
        if channel is None
        else data[:, channel]
    )
    return soxr.resample(np.ascontiguousarray(mono), in_rate, rate, quality="HQ")


def snr_db(ref: np.ndarray, out: np.ndarray) -> float:
    ref = ref.astype(np.float64)
    err = out.astype(np.float64) - ref
    return float(10 * np.log10(np.sum(ref * ref) / max(np.sum(err * err), 1e-30)))


def best_lag(ref: np.ndarray, out: np.ndarray, max_lag: int = 64) -> int:
    """The shift of ``out`` against ``ref`` that matches best (0 means no offset)."""
    n = min(len(ref), len(out)) - 2 * max_lag
    scores = [
        float(np.dot(ref[max_lag : max_lag + n], out[max_lag + k : max_lag + k + n]))
        for k in range(-max_lag, max_lag + 1)
    ]
    return int(np.argmax(scores)) - max_lag


def run_cli(
    *args: str, input: bytes | None = None, timeout: float = 120, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run ``nsaudio`` in a subprocess, as a user would."""
    full_env = dict(os.environ)
    full_env.pop("NS_API_KEY", None)
    full_env.pop("NS_BASE_URL", None)
    if env:
        full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "nsaudio", *args],
        input=input,
        capture_output=True,
        timeout=timeout,
        env=full_env,
        cwd=ROOT,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess, status: int = 2) -> str:
    err = proc.stderr.decode()
    assert proc.returncode == status, (proc.returncode, err)
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("nsaudio: error: "), err
    return lines[0]


@pytest.fixture
def tone() -> np.ndarray:
    """Two seconds of a rich test signal at 44.1 kHz stereo (float32)."""
    rate = 44100
    t = np.arange(2 * rate) / rate
    left = 0.4 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 3100 * t)
    right = 0.3 * np.sin(2 * np.pi * 1234 * t + 0.5)
    return np.stack([left, right], axis=1).astype(np.float32)


def wer(reference_text: str, hypothesis: str) -> float:
    """Word error rate: word-level edit distance over the reference length."""
    ref, hyp = reference_text.split(), hypothesis.split()
    if not ref:
        return float(bool(hyp))
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1] / len(ref)


def decode_one_shot(path: Path, rate: int = 16000) -> str:
    """What pocketsphinx hears in a one-shot soxr resampling of the file (the pipeline's bar)."""
    import pocketsphinx

    from nsaudio.stages import to_int16

    # Rounded to int16 at the format's rate, as any client must send it: at 8 kHz
    # pocketsphinx is so sensitive that one LSB can change a word.
    mono = to_int16(reference(path, rate)).astype(np.float32) / 32768
    if rate != 16000:
        mono = soxr.resample(mono, rate, 16000, quality="HQ")
    decoder = pocketsphinx.Decoder()
    decoder.start_utt()
    decoder.process_raw(to_int16(mono).tobytes(), full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    return hyp.hypstr if hyp is not None else ""


@pytest.fixture(scope="session")
def three_in_noise(tmp_path_factory: pytest.TempPathFactory):
    """26 s: three flite sentences 7 s apart in -53 dBFS brown noise (tests/recordings.py)."""
    from .recordings import three_utterances_in_noise

    try:
        return three_utterances_in_noise(tmp_path_factory.mktemp("three_in_noise"))
    except FileNotFoundError as err:
        pytest.skip(str(err))


@pytest.fixture
def fault_server() -> Iterator[Callable[..., FaultServer]]:
    """``fault_server(plans, **options)``: a started :class:`~tests.faults.server.FaultServer`
    (the stand-in service of the fault and gateway tests), stopped after the test."""
    from .faults.server import FaultServer

    servers: list[FaultServer] = []

    def start(*args: object, **kwargs: object) -> FaultServer:
        server = FaultServer(*args, **kwargs).start()  # type: ignore[arg-type]
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
