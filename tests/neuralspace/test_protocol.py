"""The pure protocol module: URLs, redaction, result parsing, transcript assembly."""

from __future__ import annotations

import contextlib
import json
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nsaudio.errors import InputError, ProtocolError
from nsaudio.neuralspace.protocol import (
    StreamParams,
    Transcript,
    TranscriptResult,
    parse_result,
    redact,
    stream_url,
    ws_base,
)


@pytest.mark.parametrize(
    "base, expected",
    [
        ("https://voice.neuralspace.ai", "wss://voice.neuralspace.ai"),
        ("http://127.0.0.1:8765/", "ws://127.0.0.1:8765"),
        ("HTTPS://Host:443/prefix/", "wss://Host:443/prefix"),
    ],
)
def test_ws_base_maps_schemes(base, expected):
    assert ws_base(base) == expected


@pytest.mark.parametrize("base", ["ftp://x", "voice.neuralspace.ai", "", "https://"])
def test_bad_base_urls(base):
    with pytest.raises(InputError):
        ws_base(base)


def test_stream_url_carries_every_parameter_and_a_fresh_uuid4():
    params = StreamParams(
        language="ar-eg", format="pcm_8k", max_chunk_size=7, vad_threshold=0.3, disable_partial=True
    )
    url = stream_url("https://voice.neuralspace.ai", "TOKEN123", params)
    parts = urlsplit(url)
    assert parts.scheme == "wss" and parts.netloc == "voice.neuralspace.ai"
    prefix, lang, token, sid = parts.path.rsplit("/", 3)
    assert prefix == "/voice/stream/live/transcribe" and lang == "ar-eg" and token == "TOKEN123"
    assert uuid.UUID(sid).version == 4
    assert parse_qs(parts.query) == {
        "max_chunk_size": ["7"],
        "vad_threshold": ["0.3"],
        "disable_partial": ["true"],
        "format": ["pcm_8k"],
    }
    assert stream_url("http://h", "t", params) != stream_url(
        "http://h", "t", params
    )  # new session id each time
    assert "disable_partial=false" in stream_url("http://h", "t", StreamParams())


def test_extra_query_parameters_follow_nsaudios_own_unchanged():
    mine = {"min_chunk_size": "2", "Note_1": "a b&c=d/é"}
    params = StreamParams(vad_threshold=1.5, extra=mine)
    mine["min_chunk_size"] = "9"  # the params keep their own copy
    query = parse_qs(urlsplit(stream_url("http://h", "t", params)).query)
    assert query == {
        "max_chunk_size": ["5"],
        "vad_threshold": ["1.5"],
        "disable_partial": ["false"],
        "format": ["pcm_16k"],
        "min_chunk_size": ["2"],
        "Note_1": ["a b&c=d/é"],
    }


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(language="English"),
        dict(format="pcm_44k"),
        dict(max_chunk_size=0),
        dict(max_chunk_size=2.5),
        dict(max_chunk_size=True),
        dict(vad_threshold=0),
        dict(vad_threshold=-0.5),
        dict(vad_threshold=float("inf")),
        dict(vad_threshold=float("nan")),
        dict(extra={"max_chunk_size": "3"}),
        dict(extra={"format": "pcm_8k"}),
        dict(extra={"min-chunk": "2"}),
        dict(extra={"": "2"}),
        dict(extra={"min_chunk_size": 2}),
        dict(extra=["min_chunk_size"]),
    ],
)
def test_bad_stream_params(kwargs):
    with pytest.raises(InputError):
        StreamParams(**kwargs)


def test_tokens_that_cannot_be_a_path_segment_are_refused():
    with pytest.raises(ProtocolError):
        stream_url("http://h", "a/b", StreamParams())
    with pytest.raises(ProtocolError):
        stream_url("http://h", "", StreamParams())


def test_redact_hides_the_token_segment_and_given_secrets():
    url = stream_url("https://voice.neuralspace.ai", "s3cr3t-token", StreamParams())
    red = redact(f"failed to open {url}: boom")
    assert "s3cr3t-token" not in red and "<token>" in red and "/transcribe/en/<token>/" in red
    assert redact("key=abc123 here", "abc123") == "key=<redacted> here"


GOOD = {
    "full": True,
    "stream_id": "s",
    "chunk_id": 3,
    "start_time": 1.5,
    "end_time": 2.25,
    "send_time": 1e9,
    "text": "hello",
}


def test_parse_result_keeps_unknown_keys_and_round_trips():
    r = parse_result(json.dumps({**GOOD, "confidence": 0.9}))
    assert (r.full, r.text, r.chunk_id, r.start_time, r.end_time) == (True, "hello", 3, 1.5, 2.25)
    assert r.extra == {"confidence": 0.9}
    assert r.to_dict() == {**GOOD, "confidence": 0.9}


def test_text_in_any_script_is_kept_exactly():
    for text in ["مرحبا بالعالم", "नमस्ते दुनिया", "naïve café 😀"]:
        assert parse_result(json.dumps({**GOOD, "text": text})).text == text
        assert (
            parse_result(json.dumps({**GOOD, "text": text}, ensure_ascii=False).encode()).text
            == text
        )


@pytest.mark.parametrize(
    "message",
    [
        "not json",
        "[1, 2]",
        "null",
        json.dumps({**GOOD, "full": "maybe"}),
        json.dumps({k: v for k, v in GOOD.items() if k != "text"}),
        json.dumps({**GOOD, "text": 5}),
        json.dumps({**GOOD, "start_time": "x"}),
        json.dumps({**GOOD, "end_time": None}),
        json.dumps({**GOOD, "start_time": 3, "end_time": 2}),
        json.dumps({**GOOD, "chunk_id": 1.5}),
        b"\xff\xfe",
    ],
)
def test_malformed_results_raise_protocol_errors(message):
    with pytest.raises(ProtocolError):
        parse_result(message)


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.text(),
        st.binary(),
        st.dictionaries(
            st.text(max_size=12),
            st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text()),
        ).map(json.dumps),
    )
)
def test_parser_only_ever_raises_protocol_error(message):
    with contextlib.suppress(ProtocolError):
        parse_result(message)


def result(full: bool, text: str, start: float, end: float, chunk: int = 0) -> TranscriptResult:
    return TranscriptResult(full=full, text=text, start_time=start, end_time=end, chunk_id=chunk)


def test_partials_replace_each_other_and_a_full_supersedes_them():
    t = Transcript()
    t.add(result(False, "hello", 0, 1))
    t.add(result(False, "hello wor", 0, 2))
    assert t.live_text == "hello wor" and t.text == ""
    t.add(result(True, "hello world", 0, 2.2))
    assert t.partial is None and t.text == "hello world"
    t.add(result(False, "again", 2.5, 3.5))
    assert t.live_text == "hello world again"
    t.add(result(True, "again and again", 2.5, 4.0))
    assert t.text == "hello world again and again"


def test_straggling_partial_after_its_full_result_is_ignored_whatever_the_chunk_ids():
    t = Transcript()
    t.add(result(False, "one", 0, 1, chunk=5))
    t.add(result(True, "one two", 0, 2, chunk=1))  # numbering differs from the partials'
    assert not t.add(result(False, "one tw", 0, 1.9, chunk=6))
    assert t.partial is None and t.text == "one two"
