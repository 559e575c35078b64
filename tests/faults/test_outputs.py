"""A failed run leaves nothing behind: ``-o`` and ``--record`` appear only when there is
something in them, and the hidden temporaries they are written under never stay.

A run that fails before anything was written leaves no file; one that fails halfway keeps
the results it printed (``-o``) and the audio it sent (``--record``, a complete WAV).
"""

from __future__ import annotations

import json
import socket

import soundfile as sf

from ..conftest import FIXTURES, assert_one_line_error, run_cli
from .server import Plan


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_nothing_is_left_when_the_service_cannot_be_reached(tmp_path):
    out, rec = tmp_path / "out.srt", tmp_path / "sent.wav"
    proc = run_cli(
        "stream", str(FIXTURES / "speech_16000_mono_int16.wav"),
        "--base-url", f"http://127.0.0.1:{_unused_port()}", "--pace", "0",
        "--output", "srt", "-o", str(out), "--record", str(rec),
        env={"NS_API_KEY": "unused-key"},
    )  # fmt: skip
    assert "cannot reach" in assert_one_line_error(proc, status=1)
    assert list(tmp_path.iterdir()) == []


def test_a_run_that_fails_halfway_keeps_what_was_transcribed_and_sent(
    speech20, fault_server, tmp_path
):
    # Cut after about 9 s of audio; every reconnect is then refused (401): exit 3 at once.
    server = fault_server(
        lambda attempt: Plan(at_bytes=300_000, action="cut") if attempt == 0 else Plan(refuse=401)
    )
    out, rec = tmp_path / "out.jsonl", tmp_path / "sent.wav"
    proc = run_cli(
        "stream", str(speech20.path), "--base-url", server.base_url, "--pace", "0",
        "--output", "jsonl", "-o", str(out), "--record", str(rec),
        env={"NS_API_KEY": server.api_key},
    )  # fmt: skip
    err = proc.stderr.decode()
    assert proc.returncode == 3 and "Traceback" not in err, err
    assert err.splitlines()[-1].startswith("nsaudio: error: "), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl", "sent.wav"]
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert any(r["full"] for r in results)
    sent, rate = sf.read(str(rec), dtype="int16")
    assert rate == 16000 and len(sent) * 2 >= 300_000  # a complete WAV of what went out


def test_a_finished_run_leaves_its_outputs_and_no_temporaries(speech20, fault_server, tmp_path):
    server = fault_server()
    out, rec = tmp_path / "out.vtt", tmp_path / "sent.wav"
    proc = run_cli(
        "stream", str(speech20.path), "--base-url", server.base_url, "--pace", "0",
        "--output", "vtt", "-o", str(out), "--record", str(rec),
        env={"NS_API_KEY": server.api_key},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.vtt", "sent.wav"]
    assert out.read_text().startswith("WEBVTT") and " --> " in out.read_text()
    assert sf.info(str(rec)).frames == 20 * 16000
