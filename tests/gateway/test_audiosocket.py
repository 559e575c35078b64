"""AudioSocket framing: the parser across any cut of the bytes, and the call's rules."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nsaudio.gateway.audiosocket import (
    AUDIO_RATES,
    KIND_DTMF,
    KIND_ERROR,
    KIND_HANGUP,
    KIND_SLIN,
    KIND_UUID,
    Audio,
    AudioSocketCall,
    Dtmf,
    Failure,
    Hangup,
    Message,
    Parser,
    Unknown,
    encode,
)
from nsaudio.gateway.errors import CallProtocolError

CALL = uuid.UUID("0549ec21-a181-4339-8ae7-f935be7bb040")


def test_encode_is_the_three_byte_header_then_the_payload():
    assert encode(KIND_HANGUP) == b"\x00\x00\x00"
    assert encode(KIND_SLIN, b"\x01\x02" * 160)[:3] == b"\x10\x01\x40"
    assert encode(KIND_UUID, CALL.bytes) == b"\x01\x00\x10" + CALL.bytes
    with pytest.raises(ValueError):
        encode(KIND_SLIN, bytes(70_000))


@given(st.lists(st.integers(1, 700), min_size=1, max_size=40))
def test_the_parser_gives_the_same_messages_however_the_bytes_are_cut(cuts):
    msgs = [Message(KIND_UUID, CALL.bytes), Message(KIND_SLIN, bytes(range(256)) + b"\x00" * 64),
            Message(KIND_DTMF, b"7"), Message(KIND_SLIN, b""), Message(KIND_HANGUP, b"")]  # fmt: skip
    wire = b"".join(encode(m.kind, m.payload) for m in msgs)
    parser = Parser()
    got, pos = [], 0
    for n in cuts:
        got += parser.feed(wire[pos : pos + n])
        pos += n
    got += parser.feed(wire[pos:])
    assert got == msgs
    parser.end()  # nothing left over


def test_a_length_past_the_data_is_refused_at_the_end():
    parser = Parser()
    assert parser.feed(encode(KIND_UUID, CALL.bytes) + b"\x10\x01\x40" + bytes(100)) == [
        Message(KIND_UUID, CALL.bytes)]  # fmt: skip
    assert parser.pending == 103
    with pytest.raises(CallProtocolError, match="ended inside a message"):
        parser.end()


def test_a_call_takes_its_uuid_first_then_audio_dtmf_errors_and_hangup():
    call = AudioSocketCall()
    assert call.take(Message(KIND_UUID, CALL.bytes)) is None
    assert call.call_id == str(CALL)
    assert call.take(Message(KIND_SLIN, bytes(320))) == Audio(bytes(320), 8000)
    assert call.take(Message(KIND_DTMF, b"#")) == Dtmf("#")
    assert call.take(Message(KIND_ERROR, b"\x01")) == Failure("01")
    assert call.take(Message(0x42, b"")) == Unknown(0x42)
    assert call.take(Message(KIND_HANGUP, b"")) == Hangup()


@pytest.mark.parametrize(
    ("messages", "says"),
    [
        ([Message(KIND_SLIN, bytes(320))], "not the call's UUID"),
        ([Message(0x47, b"ET / HTTP/1.1")], "not the call's UUID"),  # HTTP on the wrong port
        ([Message(KIND_UUID, bytes(15))], "of 15 bytes"),
        ([Message(KIND_UUID, CALL.bytes), Message(KIND_SLIN, bytes(321))], "odd"),
        ([Message(KIND_UUID, CALL.bytes), Message(KIND_SLIN, bytes(20_000))], "over"),
        (
            [
                Message(KIND_UUID, CALL.bytes),
                Message(KIND_SLIN, bytes(320)),
                Message(0x12, bytes(640)),
            ],
            "changed rate",
        ),
        ([Message(KIND_UUID, CALL.bytes), Message(KIND_DTMF, b"12")], "DTMF"),
        ([Message(KIND_UUID, CALL.bytes), Message(KIND_UUID, CALL.bytes)], "second UUID"),
    ],
)
def test_out_of_place_messages_are_refused(messages, says):
    call = AudioSocketCall()
    with pytest.raises(CallProtocolError, match=says):
        for m in messages:
            call.take(m)


def test_higher_rate_kinds_follow_asterisk():
    assert AUDIO_RATES[0x10] == 8000 and AUDIO_RATES[0x12] == 16000 and AUDIO_RATES[0x16] == 48000
    call = AudioSocketCall()
    call.take(Message(KIND_UUID, CALL.bytes))
    assert call.take(Message(0x12, bytes(640))) == Audio(bytes(640), 16000)
