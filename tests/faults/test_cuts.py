"""TCP connections cut at random points of a stream sent faster than real time.

Each run streams the file with ``nsaudio stream --pace 0`` while the fault server aborts the
TCP connection (no close frame) of sessions 0 .. c-1 after a random number of audio bytes;
session c is left alone. A run draws c points uniformly over the uncut session's audio
(L bytes: the stream, its trailing silence and drain included), sorts them, and cuts session
i after the gap between points i-1 and i. A session starts where the last full result ended,
at or before the previous cut, so cut i lands at or a little before point i: every planned
cut fires, spread over the whole stream. A gap of 0 cuts right after the handshake.

The default suite makes 10 cuts (10 runs of one cut, 20 s stream); ``-m slow`` makes 100
(25 runs of 4 cuts, so cuts also land during a replay, 60 s stream).
"""

from __future__ import annotations

import random

import pytest

from .server import Plan
from .support import check_server_audio, check_times, stream


def _cut_runs(speech, reference, fault_server, runs, cuts, seed):
    ref_run, ref_audio = reference.run, reference.audio
    rng = random.Random(seed)
    landed = []
    late = 0
    for _ in range(runs):
        points = sorted(rng.randrange(len(ref_audio)) for _ in range(cuts))
        gaps = [b - a for a, b in zip([0, *points], points, strict=False)]
        plans = {i: Plan(at_bytes=gap, action="cut") for i, gap in enumerate(gaps)}
        server = fault_server(plans)
        run = stream(server, speech.path)
        context = (plans, run.stderr)
        assert run.proc.returncode == 0, context
        assert all(line.startswith("nsaudio: WARNING: ") for line in run.stderr_lines), context
        # Every cut that lands before the end makes a new session. A cut planned so late in
        # the trailing silence that full results already covered all the speech may find
        # the stream closed: a server reads (and answers pings) ahead of its recogniser.
        assert len(server.sessions) in (cuts, cuts + 1), context
        assert all(s.faulted for s in server.sessions[:-1]), context
        if len(server.sessions) == cuts:
            assert server.sessions[-1].faulted, context
        assert run.words == ref_run.words, context  # nothing lost, nothing repeated
        check_times(run.results)
        starts = check_server_audio(server, speech.audio, ref_audio)
        landed += [s + plans[i].at_bytes for i, s in enumerate(starts[:cuts]) if s >= 0]
        late += len(server.sessions) == cuts
        server.stop()
    # Where in the stream the cuts landed, in seconds (see them with -rP).
    print("cuts landed at (s):", sorted(round(b / 32000, 2) for b in landed))
    print("runs whose last cut came after the speech was covered:", late)
    return landed


def test_ten_cuts_lose_and_repeat_nothing(speech20, reference20, fault_server):
    landed = _cut_runs(speech20, reference20, fault_server, 10, 1, 20240501)
    assert len(landed) >= 8


@pytest.mark.slow
def test_a_hundred_cuts_lose_and_repeat_nothing(speech60, reference60, fault_server):
    landed = _cut_runs(speech60, reference60, fault_server, 25, 4, 6061)
    assert len(landed) >= 80
