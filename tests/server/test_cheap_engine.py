"""The cheap engine for load tests: the VAD's utterances come back as "[speech 1.2 s]"."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pytest
import soundfile as sf

from nsaudio.server.app import LocalServer
from nsaudio.server.child import ServerProcess
from nsaudio.server.engines import ENGINES, Engine, EngineStateError, PlaceholderEngine

from ..conftest import MANIFEST, fixture_path
from .server_support import StreamClient, expect_close

TWO = next(f for f in MANIFEST if f["kind"] == "two_utterances")
PLACEHOLDER = re.compile(r"\[speech \d+\.\d s\]")


def test_placeholder_engine_says_how_long_it_heard_speech() -> None:
    e = PlaceholderEngine()
    assert isinstance(e, Engine) and e.inline
    e.start(0)
    assert e.partial() == ""
    e.process(np.zeros(8000, np.int16))
    assert e.partial() == "[speech 0.5 s]"
    e.process(np.zeros(11200, np.int16))
    assert e.finish() == "[speech 1.2 s]"
    e.start(0)
    assert e.finish() == ""  # an utterance with no audio says nothing
    with pytest.raises(EngineStateError):
        e.process(np.zeros(1, np.int16))
    with pytest.raises(EngineStateError):
        e.finish()


def test_engines_are_named_for_the_command_line() -> None:
    assert list(ENGINES) == ["pocketsphinx", "cheap"]  # pocketsphinx stays the default
    assert ENGINES["cheap"] is PlaceholderEngine
    with pytest.raises(ValueError, match="engine must be one of"):
        ServerProcess(engine="whisper")
    with pytest.raises(ValueError, match="max_sessions"):
        ServerProcess(engine="cheap", max_sessions=0)


@pytest.fixture(scope="module")
def cheap_server() -> Iterator[LocalServer]:
    with LocalServer(engine_factory=PlaceholderEngine, max_sessions=300, prewarm=False) as server:
        yield server


@pytest.mark.server
@pytest.mark.parametrize("fmt,rate", [("pcm_16k", 16000), ("pcm_8k", 8000)])
def test_a_real_session_gets_one_result_per_utterance(
    cheap_server: LocalServer, fmt: str, rate: int
) -> None:
    audio, file_rate = sf.read(fixture_path(TWO["file"]), dtype="int16")
    assert file_rate == 16000
    if rate != file_rate:
        audio = audio[::2]  # crude, but the energy VAD only needs the level
    pcm = audio.tobytes() + bytes(2 * rate)  # a second of silence finalises the last utterance
    results = StreamClient(cheap_server).stream(
        pcm, chunk_bytes=rate * 2 // 50, expect_full=2, format=fmt
    )
    full = [r for r in results if r["full"]]
    assert len(full) == 2
    assert all(PLACEHOLDER.fullmatch(r["text"]) for r in results)
    assert [r["chunk_id"] for r in full] == [0, 1]
    assert 0 <= full[0]["start_time"] < full[0]["end_time"] <= full[1]["start_time"]


class _Remote:
    """What StreamClient needs of a server, for one in a child process."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.port = int(base_url.rsplit(":", 1)[1])


@pytest.mark.server
def test_serve_command_takes_the_engine_and_the_session_cap() -> None:
    with ServerProcess(engine="cheap", max_sessions=1) as server:
        client = StreamClient(_Remote(server.base_url))  # type: ignore[arg-type]
        first = client.connect()
        try:
            second = client.connect()
            assert expect_close(second)[0] == 1013
        finally:
            first.close()
    proc = subprocess.run(
        [sys.executable, "-m", "nsaudio", "serve", "--engine", "nope"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "invalid choice" in proc.stderr
