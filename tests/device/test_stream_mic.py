"""``nsaudio stream mic:`` on the real capture path: speech played into the null sink."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time

import pytest

from ..conftest import FIXTURES, MANIFEST, ROOT, wer

pytestmark = [pytest.mark.device, pytest.mark.server]

TWO = next(f for f in MANIFEST if f["kind"] == "two_utterances")


def start_stream(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "nsaudio", "stream", "mic:", "--output", "jsonl", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip


def finals(stdout: bytes) -> str:
    results = [json.loads(line) for line in stdout.decode().splitlines()]
    return " ".join(r["text"] for r in results if r["full"] and r["text"])


def test_speech_played_into_the_sink_comes_back(pulse):
    proc = start_stream("--duration", "9")
    time.sleep(1.5)  # the capture is open; speech starts after it
    player = pulse.play(FIXTURES / TWO["file"])
    out, err = proc.communicate(timeout=60)
    player.communicate(timeout=10)
    assert proc.returncode == 0, err.decode()
    assert wer(TWO["text"], finals(out)) <= 0.3, finals(out)
    assert err.decode().count("built-in offline server") == 1


def test_the_gate_sends_only_the_speech_heard_on_the_microphone(pulse):
    proc = start_stream("--duration", "9", "--gate")
    time.sleep(1.5)
    player = pulse.play(FIXTURES / TWO["file"])
    out, err = proc.communicate(timeout=60)
    player.communicate(timeout=10)
    assert proc.returncode == 0, err.decode()
    assert wer(TWO["text"], finals(out)) <= 0.3, finals(out)
    m = re.search(r"^nsaudio: sent ([\d.]+) s of ([\d.]+) s; the gate skipped", err.decode(), re.M)
    assert m, err.decode()
    sent, seen = float(m.group(1)), float(m.group(2))
    assert seen == 9.0 and 1.0 < sent < seen - 1.5  # the silence before the speech, at least


def test_live_sources_resample_at_low_latency_unless_told(pulse):
    for args, quality in (([], "soxr LQ"), (["--quality", "hq"], "soxr HQ")):
        proc = subprocess.run(
            [sys.executable, "-m", "nsaudio", "-v", "stream", "mic:", "--duration", "0.5", *args],
            capture_output=True, cwd=ROOT, timeout=60,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr.decode()
        assert quality in proc.stderr.decode()


def test_ctrl_c_stops_cleanly_and_keeps_the_last_words(pulse):
    proc = start_stream("-v")
    time.sleep(1.5)
    player = pulse.play(FIXTURES / "speech_16000_mono_int16.wav")
    player.communicate(timeout=20)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()
    assert "Traceback" not in err.decode()
    assert wer("the children are playing in the garden", finals(out)) <= 0.3, finals(out)


def test_sixty_seconds_of_capture_drop_nothing(pulse):
    proc = start_stream("--duration", "60", "-v", "--disable-partial")
    with pulse.playing(FIXTURES / TWO["file"]):
        out, err = proc.communicate(timeout=120)
    text = err.decode()
    assert proc.returncode == 0, text
    assert (
        "dropped: 0 frames before sending, 0.00 s of captured audio, 0 device overflows" in text
    ), text
    assert "audio was lost" not in text
    assert len(finals(out).split()) > 50  # about eight plays of two sentences were heard


def test_each_channel_of_the_microphone_gets_a_session_of_its_own(pulse):
    """The stereo call played into the (stereo) null sink, captured as two channels."""
    call = next(f for f in MANIFEST if f["kind"] == "conversation")
    proc = start_stream("--duration", "16", "--split-channels", "--channel-names", "agent,customer")
    time.sleep(1.5)
    player = pulse.play(FIXTURES / call["file"])
    out, err = proc.communicate(timeout=90)
    player.communicate(timeout=10)
    assert proc.returncode == 0, err.decode()
    results = [json.loads(line) for line in out.decode().splitlines()]
    for name, texts in zip(call["names"], call["channel_texts"], strict=True):
        said = " ".join(r["text"] for r in results if r["full"] and r["channel"] == name)
        assert wer(" ".join(texts), said) <= 0.3, (name, said)
