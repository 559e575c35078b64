"""The local server's segmenter with Silero (``serve --vad silero``): music is not speech.

The suite's three sentences with music (a chord and a beat, -30 dBFS RMS) under and between
them, through a real session with the cheap engine (each segment comes back as
``[speech N s]``): the energy VAD takes the beats for speech, Silero finds the sentences.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from nsaudio.server.app import LocalServer
from nsaudio.server.engines import PlaceholderEngine

from ..recordings import Recording, three_utterances_with
from .server_support import StreamClient


@pytest.fixture(scope="module")
def music(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    try:
        return three_utterances_with(tmp_path_factory.mktemp("music"), "music", -30)
    except FileNotFoundError as err:
        pytest.skip(str(err))


@pytest.fixture(scope="module", params=["energy", "silero"])
def server(request: pytest.FixtureRequest) -> Iterator[LocalServer]:
    with LocalServer(engine_factory=PlaceholderEngine, prewarm=False, vad=request.param) as s:
        yield s


@pytest.mark.server
def test_segments_are_the_sentences_only_with_silero(server: LocalServer, music: Recording):
    pcm = music.samples.tobytes() + bytes(2 * 16000)  # a second of silence to finish
    fulls = [
        r for r in StreamClient(server).stream(pcm, chunk_bytes=3200, expect_full=3, idle=1.0)
        if r["full"]
    ]  # fmt: skip
    if server.vad == "energy":
        assert len(fulls) > 3  # the beats between the sentences are "speech" too
        return
    assert len(fulls) == 3, fulls
    for r, (start, end) in zip(fulls, music.seconds, strict=True):
        # each segment holds its sentence, with the segmenter's pre-roll and hangover
        assert start - 0.5 <= r["start_time"] <= start and end <= r["end_time"] <= end + 0.6


def test_an_unknown_vad_is_refused():
    with pytest.raises(ValueError, match="vad must be one of"):
        LocalServer(vad="webrtc")


def test_serve_has_the_option():
    from ..conftest import run_cli

    out = run_cli("serve", "--help").stdout.decode()
    assert "--vad {energy,silero}" in out
