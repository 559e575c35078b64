"""``--gate`` against the fault server: only speech goes out, times come back exact.

The slot-coded audio (``slots.py``) names every 100 ms of "speech" by its position, and the
server keeps every byte it received, so the tests see exactly what was sent and whether each
result's times are the absolute stream times of the slots it names. Here the speech comes in
2 s bursts with 6 s of digital silence between them: the gate sends each burst with its
pre-roll (0.3 s) and tail (1.0 s after the last loud frame, hangover included), and skips
the rest.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import soundfile as sf

from .conftest import SpeechFile, _speech
from .server import FaultServer, Plan
from .support import RATE, check_times, stream

#: The trailing silence the sink sends after the last frame, in bytes (1.2 s).
TRAILING = 2 * round(1.2 * RATE)
#: What the gate sends (stream seconds): each burst with its pre-roll (0.3 s; none before
#: the first, at 0 s), 2.0 s of speech, the hangover (0.3 s) and the tail (0.7 s).
RUNS = [(0.0, 3.0), (7.7, 11.0), (15.7, 19.0)]
FIRST_RUN_BYTES = 2 * round(3.0 * RATE)


@pytest.fixture(scope="module")
def bursts(tmp_path_factory: pytest.TempPathFactory) -> SpeechFile:
    """24 s, 48 kHz stereo: 2 s of slot-coded speech, then 6 s of silence, three times."""
    return _speech(tmp_path_factory, 24, voiced_s=2, silent_s=6)


def summary(stderr: str) -> tuple[float, float, float]:
    m = re.search(r"^nsaudio: sent ([\d.]+) s of ([\d.]+) s; the gate skipped ([\d.]+) s$",
                  stderr, re.M)  # fmt: skip
    assert m, stderr
    sent, seen, skipped = map(float, m.groups())
    return sent, seen, skipped


def test_the_gate_sends_each_burst_with_its_pre_roll_and_tail_and_times_stay_absolute(
    bursts, tmp_path
):
    with FaultServer() as plain:
        ungated = stream(plain, bursts.path)
        ungated_bytes = len(plain.sessions[0].audio)
    record = tmp_path / "sent.wav"
    with FaultServer() as server:
        run = stream(server, bursts.path, "--gate", "--record", str(record))
        assert run.proc.returncode == 0, run.stderr
        assert run.words == bursts.audio.words == ungated.words
        check_times(run.results)  # every time the absolute time of the slots it names
        assert fulls(run) == fulls(ungated)
        assert len(server.sessions) == 1
        got = bytes(server.sessions[0].audio)
    # Each burst: 3.3 s of the 8 s cycle (the first 3.0 s), then 1.2 s of trailing silence.
    assert len(got) == 2 * round(9.6 * RATE) + TRAILING
    assert len(got) <= 0.5 * ungated_bytes
    # --record holds exactly what was sent, and the server heard it, in order.
    sent, rate = sf.read(record, dtype="int16")
    assert rate == RATE
    assert got == sent.tobytes() + bytes(TRAILING)
    assert summary(run.stderr) == (9.6, 24.0, 14.4)
    # What was sent is the stream's own audio at the positions the gate passed.
    with FaultServer() as whole:
        stream(whole, bursts.path, "--record", str(tmp_path / "all.wav"))
    everything, _ = sf.read(tmp_path / "all.wav", dtype="int16")
    runs = [everything[round(a * RATE) : round(b * RATE)] for a, b in RUNS]
    assert np.array_equal(sent, np.concatenate(runs))


def fulls(run) -> list[tuple[float, float, str]]:
    return [(r["start_time"], r["end_time"], r["text"]) for r in run.results if r["full"]]


def test_subtitles_from_a_gated_stream_carry_stream_times(bursts, tmp_path):
    with FaultServer() as server:
        run = stream(server, bursts.path, "--gate")
    with FaultServer() as server:
        srt = tmp_path / "out.srt"
        sub = stream(server, bursts.path, "--gate", "--output", "srt", "-o", str(srt))
        assert sub.proc.returncode == 0, sub.stderr
    fulls = [r for r in run.results if r["full"]]
    cues = srt.read_text().split("\n\n")
    assert len([c for c in cues if c.strip()]) == len(fulls)
    for cue, r in zip(cues, fulls, strict=False):
        assert _srt_time(r["start_time"]) in cue and _srt_time(r["end_time"]) in cue


def _srt_time(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"00:00:{ms // 1000:02d},{ms % 1000:03d}"


def test_a_session_the_service_ends_during_a_gap_is_reopened_and_nothing_is_lost(bursts, tmp_path):
    """The service ends the session (1001, going away) in the silence after the first burst,
    as one whose session or token ran out would: a new one carries the next bursts. The
    first burst's speech was all covered by its full result (ending at 2.0 s), so of its tail
    only the last 0.5 s is sent again, as context for whatever follows: silence nobody waits
    for is not re-sent."""
    record = tmp_path / "sent.wav"
    plans = {0: Plan(at_bytes=FIRST_RUN_BYTES, action="close", code=1001, reason="going away")}
    with FaultServer(plans) as server:
        run = stream(server, bursts.path, "--gate", "--pace", "4", "--record", str(record))
        assert run.proc.returncode == 0, run.stderr
        assert run.words == bursts.audio.words
        check_times(run.results)
        assert len(server.sessions) == 2 and server.sessions[0].faulted
        heard = [bytes(s.audio) for s in server.sessions]
    sent = sf.read(record, dtype="int16")[0].tobytes()
    assert heard[0] == sent[:FIRST_RUN_BYTES]
    assert heard[1] == sent[2 * round(2.5 * RATE) :] + bytes(TRAILING)
    assert "reconnecting" in run.stderr
