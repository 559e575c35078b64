"""A session per channel (``stream --split-channels``) against the fault server: each
channel's session has its own replay and verdict, and a failure names its channel.

The slot-coded recording has the same words on both channels (at different levels), so each
channel's transcript is checked word for word. Which channel's session meets the fault is
whichever connects first; the test reads which from the output.
"""

from __future__ import annotations

import re

from ..conftest import assert_one_line_error
from .server import Plan
from .support import check_times, stream


def by_channel(run):
    out: dict[str, list[dict]] = {}
    for r in run.results:
        out.setdefault(r["channel"], []).append(r)
    return out


def words(results):
    return " ".join(r["text"] for r in results if r["full"] and r["text"]).split()


def test_a_drop_on_one_channel_is_replayed_on_that_channel_alone(speech20, fault_server):
    server = fault_server({0: Plan(at_bytes=150_000, action="cut")})
    run = stream(server, speech20.path, "--split-channels")
    assert run.proc.returncode == 0, run.stderr
    assert len(server.sessions) == 3  # two channels, one reconnect
    channels = by_channel(run)
    assert sorted(channels) == ["ch1", "ch2"]
    for results in channels.values():
        assert words(results) == speech20.audio.words
        check_times(results)
    assert len(re.findall(r"ch[12]: the connection was re-established 1 times", run.stderr)) == 1


def test_a_channel_whose_speech_is_never_finalised_is_named_with_its_seconds(
    speech20, fault_server
):
    server = fault_server({0: Plan(partials_only=True)})
    run = stream(server, speech20.path, "--split-channels", "--drain-timeout", "2")
    line = assert_one_line_error(run.proc, status=1)
    failed = re.fullmatch(
        r"nsaudio: error: channel (ch[12]): gave up waiting for the last result after 2 s; "
        r"untranscribed: \d+\.\d-\d+\.\d s(, \d+\.\d-\d+\.\d s)* of the stream",
        line,
    )
    assert failed, line
    other = {"ch1": "ch2", "ch2": "ch1"}[failed.group(1)]
    channels = by_channel(run)
    assert words(channels[other]) == speech20.audio.words  # the other channel's is whole
    assert not words(channels.get(failed.group(1), []))
