"""``stream --gate`` through the local server: half the audio, the same results.

The recording (tests/recordings.py): three flite sentences separated by 6-8 s of -53 dBFS
brown noise, 26 s. The local server's VAD hears that noise as silence, so gated and ungated
runs must give the same full results (count, and times within 0.1 s), recognised as well
(word error rate at most 0.05 worse), while the gated run sends at most half the audio.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pytest
import soundfile as sf

from ..conftest import run_cli, wer


@dataclass
class Streamed:
    returncode: int
    fulls: list[tuple[float, float, str]]
    sent_s: float  # the audio the sink sent (from -v)
    silence_s: float  # and the silence it sent after it to end the stream
    stderr: str


def streamed(*args: str, input: bytes | None = None) -> Streamed:
    proc = run_cli("stream", *args, "--pace", "0", "--output", "jsonl", "-v", input=input)
    stderr = proc.stderr.decode()
    results = [json.loads(line) for line in proc.stdout.decode().splitlines() if line.strip()]
    fulls = [(r["start_time"], r["end_time"], r["text"]) for r in results if r["full"]]
    m = re.search(r"INFO: sent ([\d.]+) s of audio \(and ([\d.]+) s of silence", stderr)
    assert m, stderr
    return Streamed(proc.returncode, fulls, float(m.group(1)), float(m.group(2)), stderr)


@pytest.fixture(scope="module")
def runs(three_in_noise) -> dict[str, Streamed]:
    path = str(three_in_noise.path)
    return {"ungated": streamed(path), "gated": streamed(path, "--gate")}


def test_the_gate_sends_at_most_half_and_the_results_match_the_ungated_run(runs, three_in_noise):
    ungated, gated = runs["ungated"], runs["gated"]
    assert ungated.returncode == gated.returncode == 0, gated.stderr
    print(f"\nsent {gated.sent_s} s gated, {ungated.sent_s} s ungated")
    print("ungated:", ungated.fulls, "\ngated:  ", gated.fulls)
    assert gated.sent_s <= 0.5 * ungated.sent_s
    assert len(gated.fulls) == len(ungated.fulls) == 3
    for (a0, b0, _), (a1, b1, _) in zip(ungated.fulls, gated.fulls, strict=True):
        assert abs(a1 - a0) <= 0.1 and abs(b1 - b0) <= 0.1
    truth = " ".join(three_in_noise.texts)
    said = {name: " ".join(t for *_, t in run.fulls) for name, run in runs.items()}
    assert wer(truth, said["gated"]) <= wer(truth, said["ungated"]) + 0.05


def test_the_summary_says_what_was_sent_of_what(runs):
    stderr = runs["gated"].stderr
    m = re.search(r"^nsaudio: sent ([\d.]+) s of ([\d.]+) s; the gate skipped ([\d.]+) s$",
                  stderr, re.M)  # fmt: skip
    assert m, stderr
    sent, seen, skipped = map(float, m.groups())
    assert seen == 26.0 and abs(sent + skipped - seen) <= 0.11
    # What the sink sent is what the gate passed, then at least the 1.2 s of trailing silence.
    assert abs(runs["gated"].sent_s - sent) <= 0.06 and runs["gated"].silence_s >= 1.2
    assert "the gate skipped" not in runs["ungated"].stderr


def test_stdin_is_gated_the_same_and_record_keeps_what_was_sent(runs, three_in_noise, tmp_path):
    record = tmp_path / "sent.wav"
    piped = streamed("-", "--gate", "--record", str(record),
                     input=three_in_noise.path.read_bytes())  # fmt: skip
    assert piped.returncode == 0, piped.stderr
    assert piped.fulls == runs["gated"].fulls
    audio, rate = sf.read(record, dtype="int16")
    assert abs(len(audio) / rate - piped.sent_s) <= 0.01


def test_a_recording_without_speech_sends_nothing_and_says_so(three_in_noise, tmp_path):
    noise = tmp_path / "noise.wav"
    rate = three_in_noise.rate  # 6-10 s: noise between the first two sentences
    sf.write(noise, three_in_noise.samples[6 * rate : 10 * rate], rate)
    proc = run_cli("stream", str(noise), "--pace", "0", "--gate")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b""
    assert proc.stderr.decode().splitlines()[-1] == (
        "nsaudio: sent nothing of 4.0 s: the gate heard no speech "
        "(a lower --gate-threshold hears quieter speech)"
    )


def test_quiet_runs_print_no_summary(three_in_noise):
    proc = run_cli("stream", str(three_in_noise.path), "--pace", "0", "--gate", "-q")
    assert proc.returncode == 0
    assert proc.stderr == b""
    assert proc.stdout.decode().count("\n") == 3


@pytest.mark.parametrize(
    ("option", "value"),
    [("--gate-threshold", "0"), ("--gate-threshold", "1.5"), ("--gate-pre-roll", "-1"),
     ("--gate-tail", "1e9"), ("--gate-tail", "nan")],
)  # fmt: skip
def test_bad_gate_options_are_usage_errors(option, value):
    proc = run_cli("stream", "x.wav", "--gate", option, value)
    assert proc.returncode == 2
    assert proc.stderr.decode().count("\n") == 1 and option in proc.stderr.decode()
