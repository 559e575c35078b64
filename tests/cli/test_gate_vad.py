"""``stream --gate --gate-vad silero`` on music, against a local server (cheap recogniser).

The suite's three sentences with music under and between them (a chord and a beat at -40 dBFS
RMS, ``tests/noises.py``): the energy gate hears every beat and sends nearly everything;
Silero sends the sentences with their pre-roll and tail, and the run ends well. What the
recogniser makes of it is ``benchmarks/gate.py --noise music``'s to measure (pocketsphinx on
26 s of music is too slow for the suite).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from nsaudio.server.child import ServerProcess

from ..recordings import Recording, three_utterances_with
from .test_gate import streamed


@pytest.fixture(scope="module")
def music(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    try:
        return three_utterances_with(tmp_path_factory.mktemp("music"), "music", -40)
    except FileNotFoundError as err:
        pytest.skip(str(err))


@pytest.fixture(scope="module")
def cheap() -> Iterator[ServerProcess]:
    with ServerProcess(engine="cheap") as server:
        yield server


def sent_share(music: Recording, server: ServerProcess, *gate: str) -> float:
    run = streamed(str(music.path), "--base-url", server.base_url, *gate)
    assert run.returncode == 0, run.stderr
    assert run.fulls  # the server heard speech in what was sent
    m = re.search(r"^nsaudio: sent ([\d.]+) s of 26.0 s", run.stderr, re.M)
    assert m, run.stderr
    return float(m.group(1)) / 26.0


@pytest.mark.server
def test_silero_sends_the_sentences_where_energy_sends_the_music(music, cheap):
    assert sent_share(music, cheap, "--gate") > 0.9  # every beat is "speech" to energy
    assert sent_share(music, cheap, "--gate", "--gate-vad", "silero") <= 0.5
