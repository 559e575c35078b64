"""``nsaudio stream`` end to end: the CLI in a subprocess against a real local server."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from nsaudio.server.app import LocalServer

from ..conftest import (
    FIXTURES,
    MANIFEST,
    SPEECH,
    assert_one_line_error,
    decode_one_shot,
    fixture_ids,
    run_cli,
    wer,
)
from .support import stream

pytestmark = pytest.mark.server

TWO = next(f for f in MANIFEST if f["kind"] == "two_utterances")


@pytest.fixture(scope="module")
def server():
    with LocalServer() as srv:
        yield srv


def final_text(results):
    return " ".join(r["text"] for r in results if r["full"] and r["text"])


@pytest.mark.parametrize("entry", SPEECH, ids=fixture_ids(SPEECH))
def test_every_fixture_transcribes_as_well_as_one_shot(server, entry):
    path = FIXTURES / entry["file"]
    results = stream(server, path)
    got = wer(entry["text"], final_text(results))
    bar = wer(entry["text"], decode_one_shot(path))
    assert got <= bar + 0.05, (final_text(results), entry["text"])
    if entry["rate"] >= 16000:
        assert got <= 0.2
    assert final_text(results).split()[-1:] == entry["text"].split()[-1:]  # the last word arrives


@pytest.mark.parametrize("entry", SPEECH, ids=fixture_ids(SPEECH))
def test_pcm_8k_path(server, entry):
    path = FIXTURES / entry["file"]
    results = stream(server, path, "--format", "pcm_8k")
    got = wer(entry["text"], final_text(results))
    bar = wer(entry["text"], decode_one_shot(path, rate=8000))
    assert got <= bar + 0.05, (final_text(results), entry["text"])


def test_two_utterances_come_back_as_two_full_results_with_partials_superseded(server):
    results = stream(server, FIXTURES / TWO["file"])
    fulls = [r for r in results if r["full"]]
    assert [r["text"] for r in fulls] == TWO["texts"]
    first_full = results.index(fulls[0])
    assert any(not r["full"] for r in results[:first_full])  # partials came first
    assert any(not r["full"] for r in results[first_full + 1 :])  # and again for the second
    rate = TWO["rate"]
    (s1, e1), (_s2, e2) = TWO["segments"]
    assert fulls[0]["start_time"] <= s1 / rate + 0.3 and fulls[0]["end_time"] >= e1 / rate - 0.3
    assert fulls[1]["start_time"] >= e1 / rate and fulls[1]["end_time"] >= e2 / rate - 0.3
    for r in results:
        assert set(r) >= {
            "full",
            "stream_id",
            "chunk_id",
            "start_time",
            "end_time",
            "send_time",
            "text",
        }


def test_disable_partial_sends_full_results_only(server):
    results = stream(server, FIXTURES / TWO["file"], "--disable-partial")
    assert results and all(r["full"] for r in results)
    assert [r["text"] for r in results] == TWO["texts"]


def test_max_chunk_size_splits_long_speech(server):
    results = stream(server, FIXTURES / TWO["file"], "--max-chunk-size", "1", "--disable-partial")
    assert len(results) > 2
    starts = [r["start_time"] for r in results]
    assert starts == sorted(starts)


def test_text_output_prints_one_line_per_full_result(server):
    proc = run_cli(
        "stream", str(FIXTURES / TWO["file"]), "--base-url", server.base_url, "--pace", "0"
    )
    assert proc.returncode == 0
    assert proc.stdout.decode().splitlines() == TWO["texts"]


@pytest.mark.parametrize("kind, head", [("srt", "1\n00:00:00,"), ("vtt", "WEBVTT\n\n00:00:00.")])
def test_subtitles(server, kind, head, tmp_path):
    out = tmp_path / f"t.{kind}"
    proc = run_cli(
        "stream",
        str(FIXTURES / TWO["file"]),
        "--base-url",
        server.base_url,
        "--pace",
        "0",
        "--output",
        kind,
        "-o",
        str(out),
    )
    assert proc.returncode == 0 and proc.stdout == b""
    text = out.read_text()
    assert text.startswith(head)
    assert TWO["texts"][0] in text and TWO["texts"][1] in text
    assert text.count(" --> ") == 2


def test_stdin_pipe_and_record(server, tmp_path):
    path = FIXTURES / "speech_44100_stereo_int16.wav"
    rec = tmp_path / "sent.wav"
    results = stream(server, "-", "--record", str(rec), input=path.read_bytes())
    assert final_text(results) == next(f["text"] for f in SPEECH if f["file"] == path.name)
    converted = tmp_path / "c.raw"
    assert run_cli("convert", str(path), str(converted)).returncode == 0
    sent, rate = sf.read(str(rec), dtype="int16")
    assert rate == 16000
    np.testing.assert_array_equal(
        sent, np.fromfile(converted, "<i2")
    )  # the audio sent is the conversion


def test_duration_stops_early(server):
    results = stream(server, FIXTURES / TWO["file"], "--duration", "2.5")
    assert final_text(results) == TWO["texts"][0]


def test_paced_streaming_takes_real_time(server):
    import time

    t = time.monotonic()
    stream(server, FIXTURES / "speech_16000_mono_int16.wav", "--pace", "2")
    assert time.monotonic() - t >= 2.2 / 2  # cannot finish before the audio could be sent


def test_without_a_key_the_embedded_server_is_used_and_said_once():
    proc = run_cli("stream", str(FIXTURES / "speech_16000_mono_int16.wav"), "--pace", "0")
    assert proc.returncode == 0, proc.stderr.decode()
    assert wer("the children are playing in the garden", proc.stdout.decode().strip()) <= 0.2
    assert proc.stderr.decode().count("built-in offline server") == 1


def test_languages_command(server):
    proc = run_cli("languages", "--base-url", server.base_url, "--json")
    assert proc.returncode == 0 and "en" in json.loads(proc.stdout)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--language", "xx"], "not streamed"),
        (["--frame-ms", "5"], "--frame-ms"),
        (["--pace", "-1"], "--pace"),
        (["--max-chunk-size", "0"], "--max-chunk-size"),
        (["--vad-threshold", "-2"], "--vad-threshold"),
        (["--record", "x.mp3"], "--record"),
    ],
)
def test_bad_options(server, args, needle):
    proc = run_cli(
        "stream",
        str(FIXTURES / "speech_16000_mono_int16.wav"),
        "--base-url",
        server.base_url,
        *args,
    )
    assert needle in assert_one_line_error(proc)


def test_bad_audio_is_exit_2(server, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    assert_one_line_error(run_cli("stream", str(bad), "--base-url", server.base_url))
    assert_one_line_error(
        run_cli("stream", str(tmp_path / "missing.wav"), "--base-url", server.base_url)
    )


def test_unreachable_service_is_exit_1():
    proc = run_cli(
        "stream",
        str(FIXTURES / "speech_16000_mono_int16.wav"),
        "--base-url",
        "http://127.0.0.1:9",
        "--pace",
        "0",
    )
    assert "cannot reach" in assert_one_line_error(proc, status=1) or proc.returncode == 1


class ScriptEngine:
    """Says a fixed sequence of sentences in other scripts, one per utterance."""

    SENTENCES = ("مرحبا بالعالم", "नमस्ते दुनिया", "naïve café — “quoted” 😀")

    def __init__(self) -> None:
        self.count = 0

    def reset(self) -> None:
        self.count = 0

    def start(self, position: int, *, live: bool = True) -> None:
        pass

    def process(self, samples) -> None:
        pass

    def partial(self) -> str:
        return self.SENTENCES[self.count % 3][:3]

    def finish(self) -> str:
        self.count += 1
        return self.SENTENCES[(self.count - 1) % 3]


def test_every_full_result_is_printed_in_order_with_its_text_exact(tmp_path):
    path = tmp_path / "three.wav"
    speech, rate = sf.read(str(FIXTURES / "speech_16000_mono_int16.wav"), dtype="int16")
    gap = np.zeros(rate * 3 // 2, np.int16)
    sf.write(str(path), np.concatenate([speech, gap, speech, gap, speech]), rate)
    with LocalServer(engine_factory=ScriptEngine) as srv:
        for env in ({}, {"LANG": "C", "LC_ALL": "C", "PYTHONIOENCODING": "ascii"}):
            results = stream(srv, path, env=env)
            assert [r["text"] for r in results if r["full"]] == list(ScriptEngine.SENTENCES)
            text = run_cli("stream", str(path), "--base-url", srv.base_url, "--pace", "0", env=env)
            assert text.stdout.decode("utf-8").splitlines() == list(ScriptEngine.SENTENCES)


def test_ctrl_c_at_the_terminal_stops_soon_and_keeps_what_was_heard():
    """SIGINT to the whole process group, as a terminal sends it: the embedded server (a
    child) must survive it, so the last results still arrive."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from ..conftest import ROOT

    proc = subprocess.Popen(
        [sys.executable, "-m", "nsaudio", "stream", str(FIXTURES / TWO["file"]), "--output", "jsonl"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, start_new_session=True,
        env={k: v for k, v in os.environ.items() if k not in ("NS_API_KEY", "NS_BASE_URL")},
    )  # fmt: skip
    time.sleep(3.5)  # into the pause after the first sentence, at real time
    os.killpg(proc.pid, signal.SIGINT)
    t = time.monotonic()
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err.decode()
    assert time.monotonic() - t < 5  # not the rest of the file at real time
    assert "Traceback" not in err.decode()
    results = [json.loads(line) for line in out.decode().splitlines()]
    assert [r["text"] for r in results if r["full"]][:1] == TWO["texts"][:1]


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--channel", "3"], "channel 3 does not exist"),
        (["--language", "xx"], "not streamed by the local server"),
        (["-o", "/nonexistent/x"], "/nonexistent/x: cannot write"),
        (["--record", "/nonexistent/x.wav"], "/nonexistent/x.wav: cannot write"),
    ],
)
def test_usage_errors_come_before_the_local_server_starts(args, needle, tmp_path):
    # No key, no base URL: the built-in server would start (and say so) first, 0.6 s later.
    proc = run_cli("stream", str(FIXTURES / "speech_16000_mono_int16.wav"), *args)
    assert needle in assert_one_line_error(proc)
    assert "built-in offline server" not in proc.stderr.decode()


def test_an_early_failure_leaves_no_output_behind(tmp_path):
    # The transcript and --record files exist (hidden) from the start: a service that cannot
    # be reached must not leave them, nor their temporaries.
    proc = run_cli(
        "stream", str(FIXTURES / "speech_16000_mono_int16.wav"),
        "--base-url", "http://127.0.0.1:9", "--connect-timeout", "1",
        "-o", str(tmp_path / "t.txt"), "--record", str(tmp_path / "sent.wav"),
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr.decode()
    assert list(tmp_path.iterdir()) == []


def test_a_file_with_no_speech_says_so(server, tmp_path):
    silence = str(FIXTURES / "silence_16000_mono_int16.wav")
    args = ("--base-url", server.base_url, "--pace", "0")
    proc = run_cli("stream", silence, *args)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout == b""
    (note,) = proc.stderr.decode().splitlines()
    assert note.startswith("nsaudio: no text: the 3.0 s of audio held nothing the energy gate")
    assert run_cli("-q", "stream", silence, *args).stderr == b""
    # A steady tone is loud, and no words. Where the service ends it with a blank final
    # result, the run is whole and the note says the service found no words in it; where it
    # sends none, the tone is speech left untranscribed, which fails the run (one line).
    tone = tmp_path / "tone.wav"
    t = np.arange(3 * 16000) / 16000
    sf.write(tone, 0.5 * np.sin(2 * np.pi * 440 * t), 16000, subtype="PCM_16")
    proc = run_cli("stream", str(tone), *args, "--output", "jsonl")
    err = proc.stderr.decode()
    if proc.returncode == 0:
        assert "no text: the service transcribed nothing in 3.0 s" in err
    else:
        assert proc.returncode == 1 and "untranscribed" in assert_one_line_error(proc, 1)
    # Speech that came back as text: no note.
    proc = run_cli("stream", str(FIXTURES / "speech_16000_mono_int16.wav"), *args)
    assert proc.returncode == 0 and "no text" not in proc.stderr.decode()


def test_verbose_names_the_service_url_and_never_the_key(server):
    proc = run_cli(
        "-v", "stream", str(FIXTURES / "speech_16000_mono_int16.wav"),
        "--base-url", server.base_url, "--pace", "0",
        env={"NS_API_KEY": "sk-very-secret-key-123"},
    )  # fmt: skip
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    assert f"nsaudio: INFO: service: {server.base_url}\n" in err
    assert "sk-very-secret" not in err


def test_shown_url_leaves_out_user_and_query():
    from nsaudio.cli.service import shown_url

    assert (
        shown_url("https://me:pw@example.com:8443/base?key=k#f") == "https://example.com:8443/base"
    )
    assert shown_url("http://[::1]:8765") == "http://[::1]:8765"
    assert shown_url("https://voice.neuralspace.ai") == "https://voice.neuralspace.ai"
