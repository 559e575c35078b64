from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nsaudio.server.params import (
    DEFAULT_TOKEN_DURATION,
    NotAStreamPath,
    RestParamError,
    SessionParams,
    StreamParamError,
    parse_stream_params,
    parse_token_duration,
    redact_path,
    split_stream_path,
)

SID = "1b4e28ba-2fa1-41d2-883f-0016d3cca427"


def parse(language: str = "en", session_id: str = SID, **query: str) -> SessionParams:
    return parse_stream_params(language, session_id, {k: [v] for k, v in query.items()})


def reason_of(**kwargs: str) -> tuple[str, str]:
    with pytest.raises(StreamParamError) as info:
        parse(**kwargs)
    assert len(info.value.reason.encode()) <= 123  # fits a WebSocket close frame
    return info.value.parameter, info.value.reason


def test_defaults() -> None:
    p = parse()
    assert p == SessionParams("en", SID, 5, 0.5, False, "pcm_16k")
    assert p.sample_rate == 16000


def test_all_given() -> None:
    p = parse(max_chunk_size="12", vad_threshold="0.25", disable_partial="true", format="pcm_8k")
    assert (p.max_chunk_size, p.vad_threshold, p.disable_partial, p.format) == (
        12,
        0.25,
        True,
        "pcm_8k",
    )
    assert p.sample_rate == 8000


def test_unknown_query_keys_are_ignored() -> None:
    p = parse(colour="blue", type="stream", min_chunk_size="2")
    assert p == parse()
    assert p.ignored == ("colour", "min_chunk_size", "type")


def test_en_in_is_an_alias_of_en() -> None:
    assert parse(language="en-in").language == "en"


@pytest.mark.parametrize("language", ["hi", "ar", "EN", "", "english", "tl"])
def test_unsupported_language(language: str) -> None:
    parameter, reason = reason_of(language=language)
    assert parameter == "language"
    assert "en" in reason and "en-in" in reason


@pytest.mark.parametrize("session_id", [SID.upper(), str(uuid.uuid1()), str(uuid.uuid4())])
def test_session_id_any_uuid(session_id: str) -> None:
    assert parse(session_id=session_id).session_id == session_id


@pytest.mark.parametrize(
    "session_id", ["", "abc", SID[:-1], SID.replace("-", ""), "{" + SID + "}", SID + "x"]
)
def test_session_id_not_uuid(session_id: str) -> None:
    parameter, reason = reason_of(session_id=session_id)
    assert parameter == "session_id"
    assert "UUID" in reason


@pytest.mark.parametrize("value,expected", [("1", 1), ("5", 5), ("60", 60), (" 7 ", 7)])
def test_max_chunk_size_valid(value: str, expected: int) -> None:
    assert parse(max_chunk_size=value).max_chunk_size == expected


@pytest.mark.parametrize(
    "value", ["0", "-1", "61", "1000", "2.5", "5.0", "", "five", "1e1", "٥", "+5"]
)
def test_max_chunk_size_invalid(value: str) -> None:
    parameter, reason = reason_of(max_chunk_size=value)
    assert parameter == "max_chunk_size"
    assert "1 to 60" in reason


@pytest.mark.parametrize(
    "value,expected",
    [
        ("0.5", 0.5),
        ("1", 1.0),
        ("0.001", 0.001),
        ("1e-2", 0.01),
        (".7", 0.7),
        ("1.5", 1.5),
        ("250", 250.0),
    ],
)
def test_vad_threshold_valid(value: str, expected: float) -> None:
    assert parse(vad_threshold=value).vad_threshold == expected


@pytest.mark.parametrize("value", ["0", "0.0", "-0.1", "-2", "nan", "inf", "-inf", "", "high"])
def test_vad_threshold_invalid(value: str) -> None:
    parameter, reason = reason_of(vad_threshold=value)
    assert parameter == "vad_threshold"
    assert "positive number" in reason


@pytest.mark.parametrize("value", ["true", "True", "TRUE", "tRuE", "1"])
def test_disable_partial_true(value: str) -> None:
    assert parse(disable_partial=value).disable_partial is True


@pytest.mark.parametrize("value", ["false", "False", "FALSE", "fAlSe", "0"])
def test_disable_partial_false(value: str) -> None:
    assert parse(disable_partial=value).disable_partial is False


@pytest.mark.parametrize("value", ["yes", "no", "", "2", "t", "none"])
def test_disable_partial_invalid(value: str) -> None:
    parameter, reason = reason_of(disable_partial=value)
    assert parameter == "disable_partial"
    assert "true or false" in reason


@pytest.mark.parametrize("value", ["pcm_44k", "PCM_16K", "pcm_16", "", "wav"])
def test_format_invalid(value: str) -> None:
    parameter, reason = reason_of(format=value)
    assert parameter == "format"
    assert "pcm_16k" in reason and "pcm_8k" in reason


def test_repeated_key_is_refused() -> None:
    with pytest.raises(StreamParamError) as info:
        parse_stream_params("en", SID, {"format": ["pcm_16k", "pcm_8k"]})
    assert info.value.parameter == "format"


def test_long_values_keep_the_reason_short() -> None:
    parameter, reason = reason_of(vad_threshold="x" * 5000)
    assert parameter == "vad_threshold"
    assert len(reason.encode()) <= 123


@given(st.text(max_size=300))
def test_reason_always_fits_a_close_frame(value: str) -> None:
    for key in ("max_chunk_size", "vad_threshold", "disable_partial", "format"):
        try:
            parse(**{key: value})
        except StreamParamError as exc:
            assert len(exc.reason.encode("utf-8")) <= 123
    try:
        parse(language=value)
    except StreamParamError as exc:
        assert len(exc.reason.encode("utf-8")) <= 123


def test_split_stream_path() -> None:
    path = split_stream_path(
        f"/voice/stream/live/transcribe/en/tok_EN-1/{SID}?format=pcm_8k&x=1&x=2"
    )
    assert (path.language, path.token, path.session_id) == ("en", "tok_EN-1", SID)
    assert path.query == {"format": ["pcm_8k"], "x": ["1", "2"]}
    assert "tok_EN-1" not in repr(path)


@pytest.mark.parametrize(
    "raw",
    [
        "/voice/stream/live/transcribe/en/tok",
        "/voice/stream/live/transcribe/en//" + SID,
        "/voice/stream/live/transcribe/en/tok/" + SID + "/extra",
        "/voice/stream/live/transcribe/",
        "/voice/stream/live/other/en/tok/" + SID,
        "/",
    ],
)
def test_split_stream_path_rejects(raw: str) -> None:
    with pytest.raises(NotAStreamPath):
        split_stream_path(raw)


def test_redact_path() -> None:
    raw = f"GET /voice/stream/live/transcribe/en/s3cr3t-T0ken_x/{SID}?format=pcm_8k HTTP/1.1"
    assert (
        redact_path(raw)
        == f"GET /voice/stream/live/transcribe/en/<redacted>/{SID}?format=pcm_8k HTTP/1.1"
    )
    # Malformed paths put the token elsewhere: it is hidden there too.
    assert "s3cr3t" not in redact_path(f"/voice/stream/live/transcribe/s3cr3t/{SID}")
    assert "s3cr3t" not in redact_path("/voice/stream/live/transcribe/en/s3cr3t")
    assert "s3cr3t" not in redact_path("/voice/stream/live/transcribe/s3cr3t")
    assert redact_path("< Authorization: sk-123 xyz") == "< Authorization: <redacted>"
    assert redact_path("/api/v2/token?duration=5") == "/api/v2/token?duration=5"


@pytest.mark.parametrize(
    "value,expected", [(None, DEFAULT_TOKEN_DURATION), ("1", 1.0), ("0.5", 0.5), ("86400", 86400.0)]
)
def test_token_duration_valid(value: str | None, expected: float) -> None:
    query = {} if value is None else {"duration": [value]}
    assert parse_token_duration(query) == expected


@pytest.mark.parametrize("value", ["0", "-5", "abc", "", "nan", "inf", "1e12"])
def test_token_duration_invalid(value: str) -> None:
    with pytest.raises(RestParamError) as info:
        parse_token_duration({"duration": [value]})
    assert "duration" in info.value.reason
