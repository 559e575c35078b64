"""A stream run built, then executed, in process against a real local server
(``nsaudio/cli/stream_run.py``); the command line's own tests run it in a subprocess."""

from __future__ import annotations

import pytest

from nsaudio.cli.main import build_parser
from nsaudio.cli.service import Endpoint
from nsaudio.cli.stream_run import (
    Ended,
    build,
    conclude,
    execute,
    status_line,
    transcript_writer,
)
from nsaudio.neuralspace.protocol import StreamParams, TranscriptResult
from nsaudio.server.app import LocalServer
from nsaudio.sources import open_source

from ..conftest import MANIFEST, fixture_path

TWO = next(f for f in MANIFEST if f["kind"] == "two_utterances")


def parse(*argv: str):
    full = ["stream", *argv]
    return build_parser(full).parse_args(full)


@pytest.mark.server
def test_a_run_is_built_without_sending_anything_then_executed(tmp_path):
    out = tmp_path / "transcript.txt"
    args = parse(str(fixture_path(TWO["file"])), "--pace", "0", "-o", str(out), "--no-status")
    source = open_source(args.source)
    with LocalServer() as server:
        endpoint = Endpoint(server.base_url, "any-key", ca_file=None, local=True)
        with status_line(args) as status, transcript_writer(args, status) as writer:
            run = build(args, source, endpoint, StreamParams(), writer)
            (lane,) = run.lanes
            assert lane.name is None and lane.gate is run.pipeline.gate
            assert lane.sink.stats()["frames_sent"] == 0 and lane.gate.seen_samples == 0
            ended = execute(args, run, status)
        assert ended == Ended()
        assert conclude(args, run, ended) == 0
    assert out.read_text().splitlines() == TWO["texts"]
    assert lane.gate.seen_samples == source.frames


def test_the_transcript_file_appears_only_with_something_in_it_or_a_whole_run(tmp_path):
    def result(text):
        return TranscriptResult(True, text, 0.0, 1.0)

    failed = tmp_path / "failed.txt"
    args = parse("x.wav", "-o", str(failed), "--no-status")
    with pytest.raises(KeyError), status_line(args) as status, transcript_writer(args, status):
        raise KeyError("failed before any result")
    assert not failed.exists() and not list(tmp_path.iterdir())

    halfway = tmp_path / "halfway.txt"
    args = parse("x.wav", "-o", str(halfway), "--no-status")
    with pytest.raises(KeyError), status_line(args) as status:
        with transcript_writer(args, status) as writer:
            writer.write(result("kept"))
        raise KeyError("failed halfway")
    assert halfway.read_text() == "kept\n"

    empty = tmp_path / "empty.txt"
    args = parse("x.wav", "-o", str(empty), "--no-status")
    with status_line(args) as status, transcript_writer(args, status):
        pass  # a whole run with nothing said: the file is there, empty
    assert empty.read_text() == ""


def test_no_status_line_without_a_terminal_or_when_asked(capsys):
    for argv in (("x.wav",), ("x.wav", "--no-status"), ("-q", "x.wav")):
        with status_line(parse(*argv)) as line:  # stderr is captured here: not a terminal
            assert type(line).__name__ == "_NoStatus"
            line.start(lanes=[], source=None, rate=16000, pace=0)
