"""Results the client cannot use: malformed ones are skipped and reported once each, a message
over the 1 MiB cap ends the session (1009) and the stream goes on in a new one."""

from __future__ import annotations

from .server import Plan
from .support import check_server_audio, check_times, stream

#: (message, what the warning must say); sent between good results of session 0.
BAD = [
    ("this is not JSON {", "result is not JSON"),
    ('["full", true]', "result is a JSON list, not an object"),
    ('{"full": true, "stream_id": "s", "chunk_id": 9}', "'text' must be a string"),
    ('{"full": true, "text": "w1", "end_time": 1.0}', "'start_time' must be a number"),
    ('{"full": "yes", "text": "w1", "start_time": 0, "end_time": 1}', "'full' must be true or false"),
    ('{"full": true, "text": 7, "start_time": 0, "end_time": 1}', "'text' must be a string, not int"),
    ('{"full": false, "text": "w1", "start_time": "0.0", "end_time": 0.1}', "'start_time' must be a number"),
    ('{"full": true, "text": "w1", "start_time": 0, "end_time": 1, "chunk_id": 1.5}', "'chunk_id' must be an integer"),
    ('{"full": true, "text": "w1", "start_time": 2, "end_time": 1}', "ends (1.0) before it starts"),
    # Hostile: each once killed the receiver thread, or would crash whoever prints it.
    ('{"full": true, "text": "w1", "start_time": 1e305, "end_time": 1e305}', "'start_time' is out of range"),
    ('{"full": true, "text": "w1", "start_time": 0, "end_time": Infinity}', "'end_time' is out of range"),
    ('{"full": true, "text": "w1", "start_time": NaN, "end_time": 1}', "'start_time' is out of range"),
    ('{"full": true, "text": "w1", "start_time": 0, "end_time": 90000}', "after the"),
    ('{"full": true, "text": "\\ud800", "start_time": 0, "end_time": 1}', "lone surrogate"),
    ("[" * 50_000 + "]" * 50_000, "nested too deeply"),
]  # fmt: skip


def _key(r: dict) -> tuple:
    return (r["full"], r["chunk_id"], round(r["start_time"], 6), round(r["end_time"], 6), r["text"])


def test_malformed_results_are_skipped_and_reported_once_each(speech20, fault_server):
    inject = tuple((2 + 2 * i, message) for i, (message, _) in enumerate(BAD))
    server = fault_server({0: Plan(inject=inject)})
    run = stream(server, speech20.path)
    assert run.proc.returncode == 0, run.stderr
    warnings = [line for line in run.stderr_lines if "malformed" in line]
    assert len(warnings) == len(BAD) == len(run.stderr_lines), run.stderr
    for line, (_, said) in zip(warnings, BAD, strict=True):
        assert line.startswith("nsaudio: WARNING: skipped a malformed result: "), line
        assert said in line, (said, line)
    # Every good result came through, as sent (one session: times need no offset).
    assert len(server.sessions) == 1
    assert [_key(r) for r in run.results] == [_key(r) for r in server.sessions[0].results]
    assert run.words == speech20.audio.words
    check_times(run.results)


def test_a_message_over_the_cap_ends_the_session_and_the_stream_goes_on(
    speech20, reference20, fault_server
):
    server = fault_server({0: Plan(at_bytes=200_000, action="big")})
    run = stream(server, speech20.path)
    assert run.proc.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    lines = [line for line in run.stderr_lines if "1009" in line]
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("nsaudio: WARNING: nsaudio closed the session (1009)")
    assert "over the cap" in lines[0] and "1048577 bytes" in lines[0], lines[0]
    assert "limit of 1048576 bytes" in lines[0] and "reconnecting" in lines[0]
    assert server.settled()
    assert [s.close_code for s in server.sessions] == [1009, 1000]
    assert run.words == speech20.audio.words
    assert not any(len(r["text"]) > 10_000 for r in run.results)  # the big one was not printed
    check_times(run.results)
    check_server_audio(server, speech20.audio, reference20.audio)
