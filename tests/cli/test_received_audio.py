"""What the service receives is the input, resampled: nothing missing, nothing shifted."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from nsaudio.server.app import LocalServer

from ..conftest import FIXTURES, SPEECH, best_lag, fixture_ids, reference, snr_db
from .support import stream

pytestmark = pytest.mark.server


class RecordingServer(LocalServer):
    """The local server, keeping every audio message each session received."""

    def __init__(self) -> None:
        super().__init__()
        self.audio: dict[str, bytearray] = collections.defaultdict(bytearray)

    def received(self, session_id: str, pcm: bytes) -> None:
        self.audio[session_id] += pcm


@pytest.fixture(scope="module")
def recording_server():
    with RecordingServer() as server:
        yield server, server.audio


@pytest.mark.parametrize("fmt, rate", [("pcm_16k", 16000), ("pcm_8k", 8000)])
@pytest.mark.parametrize("entry", SPEECH, ids=fixture_ids(SPEECH))
def test_server_receives_the_input_resampled(recording_server, entry, fmt, rate):
    server, received = recording_server
    before = set(received)
    path = FIXTURES / entry["file"]
    stream(server, path, "--format", fmt, "--disable-partial")
    (session,) = set(received) - before  # one session, no reconnect
    got = np.frombuffer(bytes(received[session]), "<i2").astype(np.float32) / 32768
    ref = reference(path, rate)
    assert len(got) >= len(ref)  # no input sample missing...
    assert not np.any(got[len(ref) + 1 :])  # ...and after it, only the trailing silence
    n = len(ref)
    lag = best_lag(ref, got[:n])
    assert abs(lag) * 1000 / rate <= 1  # offset within 1 ms (in fact none)
    assert snr_db(ref, got[:n]) >= 40
