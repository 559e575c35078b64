"""Fixtures for the local server's tests: real servers on loopback port 0, a real client
(requests + websocket-client, see server_support.py), and speech made with flite at test time."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from nsaudio.server.app import LocalServer  # noqa: E402

from .counting_engine import CountingEngine  # noqa: E402
from .server_support import StreamClient  # noqa: E402


@pytest.fixture(scope="session")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, int], np.ndarray]:
    """``speech(text, rate)``: int16 mono speech from flite (voice slt), at 16000 or 8000 Hz."""
    flite, sox = shutil.which("flite"), shutil.which("sox")
    if flite is None or sox is None:
        pytest.skip("flite and sox are needed to make speech (apt-get install flite sox)")
    folder = tmp_path_factory.mktemp("speech")
    cache: dict[tuple[str, int], np.ndarray] = {}

    def make(text: str, rate: int = 16000) -> np.ndarray:
        key = (text, rate)
        if key not in cache:
            stem = folder / f"s{len(cache)}"
            wav16 = stem.with_suffix(".16k.wav")
            subprocess.run([flite, "-voice", "slt", "-t", text, "-o", str(wav16)], check=True)
            path = wav16
            if rate != 16000:
                path = stem.with_suffix(f".{rate}.wav")
                subprocess.run([sox, str(wav16), "-r", str(rate), str(path)], check=True)
            data, file_rate = sf.read(path, dtype="int16")
            assert file_rate == rate and data.ndim == 1
            cache[key] = data
        return cache[key]

    return make


@pytest.fixture(scope="session")
def sphinx_server() -> Iterator[LocalServer]:
    """One pocketsphinx server for the whole run: its decoders are made once."""
    with LocalServer() as server:
        yield server


@pytest.fixture(scope="session")
def counting_server() -> Iterator[LocalServer]:
    with LocalServer(engine_factory=CountingEngine, prewarm=False) as server:
        yield server


@pytest.fixture
def sphinx(sphinx_server: LocalServer) -> StreamClient:
    return StreamClient(sphinx_server)


@pytest.fixture
def counting(counting_server: LocalServer) -> StreamClient:
    return StreamClient(counting_server)
