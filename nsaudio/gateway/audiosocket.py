"""Asterisk AudioSocket framing, as pure objects: no sockets here.

AudioSocket is TCP; every message is a 1-byte kind, a 2-byte big-endian payload length and
the payload. Asterisk sends the call's UUID first (``0x01``, 16 bytes), then audio in 20 ms
messages, DTMF digits (``0x03``, one ASCII byte), an error (``0xff``, an optional code) and
hangs up with ``0x00`` (or by closing the socket).

Audio kinds, as Asterisk defines them (``enum ast_audiosocket_msg_kind`` in
``include/asterisk/res_audiosocket.h``): ``0x10`` signed linear 16-bit little-endian mono; Asterisk
releases before October 2025 send every codec under 0x10, so the channel must be slin at
8 kHz (the ``AudioSocket()`` application sets it; a Dial()ed AudioSocket channel needs
``c(slin)``). Asterisk's pull request 1492 (merged October 2025, in the 20, 21, 22 and 23
branches after it) added ``0x11`` to ``0x18`` for slin12, slin16, slin24, slin32, slin44,
slin48, slin96 and slin192. Its first draft, and a documentation page written from it, gave
0x11 to slin16; the merged code and the current documentation give it to 12 kHz, and this
module follows them. A call's audio must keep one rate.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import NamedTuple

from .errors import CallProtocolError

__all__ = [
    "AUDIO_RATES",
    "HEADER_BYTES",
    "KIND_DTMF",
    "KIND_ERROR",
    "KIND_HANGUP",
    "KIND_SLIN",
    "KIND_UUID",
    "AudioSocketCall",
    "Message",
    "Parser",
    "encode",
]

KIND_HANGUP = 0x00
KIND_UUID = 0x01
KIND_DTMF = 0x03
KIND_SLIN = 0x10
KIND_ERROR = 0xFF
#: Audio kind -> sample rate (signed linear 16-bit LE mono).
AUDIO_RATES = {
    0x10: 8000, 0x11: 12000, 0x12: 16000, 0x13: 24000, 0x14: 32000,
    0x15: 44100, 0x16: 48000, 0x17: 96000, 0x18: 192000,
}  # fmt: skip
HEADER_BYTES = 3
#: The largest audio payload taken in one message: one second at 8 kHz.
MAX_AUDIO_BYTES = 16000


class Message(NamedTuple):
    """One message: its kind and payload. A named tuple, as :class:`Audio`: made 50 times a
    second a call, where a frozen dataclass costs 1.6 times as much to build."""

    kind: int
    payload: bytes


def encode(kind: int, payload: bytes = b"") -> bytes:
    """One message on the wire (``kind``: 0 to 255; payload at most 65,535 bytes)."""
    if not 0 <= kind <= 0xFF or len(payload) > 0xFFFF:
        raise ValueError(f"cannot frame kind {kind} with {len(payload)} bytes")
    return bytes((kind, len(payload) >> 8, len(payload) & 0xFF)) + payload


class Parser:
    """Bytes in as they arrive, whole messages out: ``feed(data) -> list[Message]``.

    Holds at most one message in progress (65,538 bytes). ``end()`` at end of stream raises
    :class:`CallProtocolError` if a message was cut short (a length past the data).
    """

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Message]:
        buf = self._buf
        buf += data
        out = []
        pos = 0
        while len(buf) - pos >= HEADER_BYTES:
            size = (buf[pos + 1] << 8) | buf[pos + 2]
            end = pos + HEADER_BYTES + size
            if end > len(buf):
                break
            out.append(Message(buf[pos], bytes(buf[pos + HEADER_BYTES : end])))
            pos = end
        del buf[:pos]
        return out

    @property
    def pending(self) -> int:
        """Bytes of a message not yet complete."""
        return len(self._buf)

    def end(self) -> None:
        if self._buf:
            raise CallProtocolError(
                f"the connection ended inside a message ({len(self._buf)} bytes of it)"
            )


class Audio(NamedTuple):
    """Signed linear 16-bit LE mono PCM at ``rate``."""

    pcm: bytes
    rate: int


@dataclass(frozen=True)
class Dtmf:
    digit: str


@dataclass(frozen=True)
class Hangup:
    pass


@dataclass(frozen=True)
class Failure:
    """Asterisk reported an error (``code``: its payload, as hex; may be empty)."""

    code: str


@dataclass(frozen=True)
class Unknown:
    kind: int


class AudioSocketCall:
    """One connection's messages in order: the UUID first, then audio of one rate.

    ``take(message)`` returns :class:`Audio`, :class:`Dtmf`, :class:`Hangup`,
    :class:`Failure`, :class:`Unknown` or None (the UUID, which sets ``call_id``), and
    raises :class:`CallProtocolError` for anything out of place.
    """

    def __init__(self) -> None:
        self.call_id: str | None = None
        self.rate: int | None = None

    def take(self, msg: Message) -> Audio | Dtmf | Hangup | Failure | Unknown | None:
        kind, payload = msg.kind, msg.payload
        if self.call_id is None:
            if kind != KIND_UUID:
                raise CallProtocolError(
                    f"the first message is of kind 0x{kind:02x}, not the call's UUID (0x01)"
                )
            if len(payload) != 16:
                raise CallProtocolError(f"a UUID message of {len(payload)} bytes, not 16")
            self.call_id = str(uuid.UUID(bytes=payload))
            return None
        if kind in AUDIO_RATES:
            rate = AUDIO_RATES[kind]
            if len(payload) % 2:
                raise CallProtocolError(f"an audio message of {len(payload)} bytes (odd)")
            if len(payload) > MAX_AUDIO_BYTES:
                raise CallProtocolError(f"an audio message over {MAX_AUDIO_BYTES} bytes")
            if self.rate is None:
                self.rate = rate
            elif rate != self.rate:
                raise CallProtocolError(f"the audio changed rate from {self.rate} to {rate} Hz")
            return Audio(payload, rate)
        if kind == KIND_HANGUP:
            return Hangup()
        if kind == KIND_DTMF:
            if len(payload) != 1 or not 0x20 < payload[0] < 0x7F:
                raise CallProtocolError("a DTMF message that is not one printable character")
            return Dtmf(chr(payload[0]))
        if kind == KIND_ERROR:
            return Failure(payload[:8].hex())
        if kind == KIND_UUID:
            raise CallProtocolError("a second UUID message")
        return Unknown(kind)
