"""The service's own parameters: ``--vad-threshold`` as the service takes it, and ``--param``."""

from __future__ import annotations

import pytest

from nsaudio.server.app import LocalServer

from ..conftest import FIXTURES, assert_one_line_error, run_cli
from ..faults.server import FaultServer
from ..faults.slots import make_speech
from .support import stream

pytestmark = pytest.mark.server

SPEECH = FIXTURES / "speech_16000_mono_int16.wav"


def _stream_to(server: FaultServer, path, *args: str):
    proc = run_cli(
        "stream", str(path), "--base-url", server.base_url, "--pace", "0",
        "--output", "jsonl", "--drain-timeout", "5", *args,
        env={"NS_API_KEY": server.api_key},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    return proc


def test_the_url_carries_a_vad_threshold_above_1_and_every_param_unchanged(tmp_path):
    slots = make_speech(3).write(tmp_path / "slots.wav")  # what the fault server recognises
    with FaultServer() as server:
        _stream_to(
            server,
            slots,
            "--vad-threshold", "1.5",
            "--param", "min_chunk_size=2",
            "--param", "Custom_9=a b&c=d",
            "--param", "empty=",
        )  # fmt: skip
        [session] = server.sessions
    assert session.query["vad_threshold"] == "1.5"
    assert session.query["min_chunk_size"] == "2"
    assert session.query["Custom_9"] == "a b&c=d"  # percent-encoded on the way, intact on arrival
    assert session.query["max_chunk_size"] == "5" and session.query["format"] == "pcm_16k"


def test_the_local_server_takes_a_threshold_above_1_and_ignores_params_it_does_not_use():
    with LocalServer() as server:
        loud = stream(server, SPEECH, "--param", "min_chunk_size=2")
        strict = run_cli("stream", str(SPEECH), "--base-url", server.base_url, "--pace", "0",
                         "--output", "jsonl", "--vad-threshold", "3",
                         "--param", "min_chunk_size=2")  # fmt: skip
    assert any(r["full"] and r["text"] for r in loud)
    # 3 asks for speech 90 dB above the noise floor (at least -70 dBFS): louder than full scale.
    # The service hears none; nsaudio's gate did, so the stream is not complete: exit 1,
    # naming the speech that went untranscribed.
    assert not [line for line in strict.stdout.decode().splitlines() if '"text": ""' not in line]
    line = assert_one_line_error(strict, 1)
    assert "untranscribed:" in line


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--param", "max_chunk_size=3"], "--max-chunk-size"),
        (["--param", "vad_threshold=0.2"], "--vad-threshold"),
        (["--param", "disable_partial=true"], "--disable-partial"),
        (["--param", "format=pcm_8k"], "--format"),
        (["--param", "min_chunk_size"], "KEY=VALUE"),
        (["--param", "=2"], "KEY=VALUE"),
        (["--param", "min chunk=2"], "letters, digits"),
        (["--param", "min-chunk=2"], "letters, digits"),
        (["--param", "a=1", "--param", "a=2"], "twice"),
        (["--vad-threshold", "0"], "--vad-threshold"),
        (["--vad-threshold", "inf"], "--vad-threshold"),
        (["--vad-threshold", "nan"], "--vad-threshold"),
    ],
)
def test_refused_before_anything_is_opened(args, needle):
    # No server listens at this URL: a refusal must come before any connection is tried.
    proc = run_cli("stream", str(SPEECH), "--base-url", "http://127.0.0.1:9", *args)
    assert needle in assert_one_line_error(proc, 2)
