"""How results are written (``cli/output.py``): the channel's label in every output."""

from __future__ import annotations

import io
import json

from nsaudio.cli.output import labelled, make_writer
from nsaudio.neuralspace.protocol import TranscriptResult


def results(channel):
    return [
        TranscriptResult(False, "hello wor", 1.0, 2.0, channel=channel),
        TranscriptResult(True, " hello <world> & co ", 1.0, 2.5, channel=channel),
        TranscriptResult(True, "  ", 3.0, 3.5, channel=channel),  # blank: nothing to say
    ]


def written(kind, channel, live=False):
    out = io.StringIO()
    writer = make_writer(kind, out, live=live)
    for r in results(channel):
        writer.write(r)
    writer.close()
    return out.getvalue()


def test_text_and_srt_lines_begin_with_the_channel():
    assert labelled(results("agent")[1]) == "agent: hello <world> & co"
    assert labelled(results(None)[1]) == "hello <world> & co"
    assert labelled(results("agent")[2]) == ""
    assert written("text", "agent") == "agent: hello <world> & co\n"
    assert written("text", "agent", live=True).startswith("agent: hello wor\r\x1b[K")
    assert written("srt", "agent") == (
        "1\n00:00:01,000 --> 00:00:02,500\nagent: hello <world> & co\n\n"
    )
    assert written("srt", None).endswith("\nhello <world> & co\n\n")


def test_webvtt_cues_carry_a_voice_tag_and_escaped_text():
    assert written("vtt", "customer") == (
        "WEBVTT\n\n00:00:01.000 --> 00:00:02.500\n<v customer>hello &lt;world&gt; &amp; co\n\n"
    )
    assert written("vtt", None).endswith("\nhello &lt;world&gt; &amp; co\n\n")


def test_json_lines_have_a_channel_key_only_when_split():
    lines = [json.loads(line) for line in written("jsonl", "agent").splitlines()]
    assert [line["channel"] for line in lines] == ["agent"] * 3
    assert all("channel" not in json.loads(line) for line in written("jsonl", None).splitlines())
