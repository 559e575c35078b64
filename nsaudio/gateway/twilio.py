"""Twilio Media Streams, as pure parsing and validation: no sockets here.

A media stream is a WebSocket of JSON text messages, one event each:

- ``connected``: ``{"event": "connected", "protocol": "Call", "version": "1.0.0"}``;
- ``start``: ``start.streamSid``, ``callSid``, ``accountSid``, ``tracks`` (``inbound``,
  ``outbound`` or both), ``customParameters`` and ``mediaFormat`` (``audio/x-mulaw``,
  8000 Hz, 1 channel: the only format Twilio streams);
- ``media``: ``media.track``, ``chunk`` (counts from 1 per track), ``timestamp``
  (milliseconds from the start of the stream) and ``payload`` (base64 µ-law); Twilio writes
  the numbers as strings;
- ``mark``, ``dtmf`` (``dtmf.track``, ``dtmf.digit``) and ``stop``.

With both tracks, the caller's (inbound) and the agent's (outbound) audio arrive as separate
``media`` messages. :class:`TwilioStream` checks the order (nothing before ``connected`` but
``start``, no ``media`` before ``start``, a track the start announced) and the bounds.
Events Twilio adds later are returned as :class:`Unknown`, not refused: the caller decides
(the gateway logs one line per call and goes on).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import sys
from dataclasses import dataclass, field
from functools import cache, partial
from typing import Any, NamedTuple

import numpy as np

from ..sources.pcm import decode, sample_format
from .errors import CallProtocolError

__all__ = [
    "MAX_MESSAGE_BYTES",
    "MAX_PAYLOAD_BYTES",
    "RATE",
    "TRACK_LABELS",
    "Connected",
    "Dtmf",
    "Event",
    "Mark",
    "Media",
    "Start",
    "Stop",
    "TwilioStream",
    "Unknown",
    "parse_message",
    "parse_text",
    "ulaw_to_float",
    "ulaw_to_int16",
]

#: The one rate Twilio streams (µ-law, mono).
RATE = 8000
#: The largest message accepted: a 20 ms media message is about 300 bytes; a start with
#: custom parameters a few kB.
MAX_MESSAGE_BYTES = 64 * 1024
#: The largest µ-law payload accepted in one media message: one second.
MAX_PAYLOAD_BYTES = RATE
#: Twilio's track names, and the labels their transcripts carry.
TRACK_LABELS = {"inbound": "caller", "outbound": "agent"}
_MAX_ID = 128
_ID_RE = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_ULAW = sample_format("ulaw")


@dataclass(frozen=True)
class Connected:
    protocol: str
    version: str


@dataclass(frozen=True)
class Start:
    """The call's identity and tracks. ``call_sid`` names its transcript file."""

    stream_sid: str
    call_sid: str
    account_sid: str
    tracks: tuple[str, ...]
    custom_parameters: dict[str, str] = field(default_factory=dict)


class Media(NamedTuple):
    """``payload``: µ-law bytes, one per sample; ``timestamp_ms`` from the stream's start.

    A named tuple, where the rarer events are frozen dataclasses: made 50 times a second a
    track, it costs a third of one (0.35 µs against 1.1)."""

    track: str
    chunk: int
    timestamp_ms: int
    payload: bytes


@dataclass(frozen=True)
class Mark:
    name: str


@dataclass(frozen=True)
class Dtmf:
    track: str
    digit: str


@dataclass(frozen=True)
class Stop:
    pass


@dataclass(frozen=True)
class Unknown:
    """An event this version does not know (Twilio adds some): its name, nothing else."""

    event: str


Event = Connected | Start | Media | Mark | Dtmf | Stop | Unknown


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _object(msg: dict[str, Any], key: str) -> dict[str, Any]:
    value = msg.get(key)
    if not isinstance(value, dict):
        raise CallProtocolError(f"a {msg.get('event')} message without its {key!r} object")
    return value


def _text(obj: dict[str, Any], key: str, *, required: bool = True, limit: int = _MAX_ID) -> str:
    value = obj.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value or len(value) > limit:
        raise CallProtocolError(f"{key!r} must be a string of 1 to {limit} characters")
    return value


def _ident(obj: dict[str, Any], key: str) -> str:
    """An id that will name a file: letters, digits and ``_.:-`` only."""
    value = _text(obj, key)
    if not _ID_RE.fullmatch(value) or value in (".", ".."):
        raise CallProtocolError(f"{key!r} is not an id: {_short(value)}")
    return value


def _count(obj: dict[str, Any], key: str) -> int:
    """A non-negative whole number, as Twilio writes it (a string of digits) or as a number."""
    value = obj.get(key)
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 15:
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**15:
        return value
    raise CallProtocolError(f"{key!r} must be a whole number, not {_short(value)}")


def _track(name: object) -> str:
    # dtmf messages say "inbound_track"; media messages say "inbound".
    if isinstance(name, str):
        name = name.removesuffix("_track")
        if name in TRACK_LABELS:
            return name
    raise CallProtocolError(f"unknown track {_short(name)} (inbound or outbound)")


def _start(msg: dict[str, Any]) -> Start:
    start = _object(msg, "start")
    tracks = start.get("tracks")
    if not isinstance(tracks, list) or not 1 <= len(tracks) <= 2:
        raise CallProtocolError("'tracks' must list inbound, outbound or both")
    names = tuple(dict.fromkeys(_track(t) for t in tracks))
    fmt = start.get("mediaFormat")
    if not isinstance(fmt, dict):
        raise CallProtocolError("a start message without its 'mediaFormat'")
    if (fmt.get("encoding"), fmt.get("sampleRate"), fmt.get("channels")) != (
        "audio/x-mulaw", RATE, 1,
    ):  # fmt: skip
        raise CallProtocolError(
            f"media format {_short(fmt)} is not audio/x-mulaw, 8000 Hz, 1 channel"
        )
    params = start.get("customParameters", {})
    if not isinstance(params, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in params.items()
    ):
        raise CallProtocolError("'customParameters' must map names to strings")
    return Start(
        stream_sid=_ident(start, "streamSid"),
        call_sid=_ident(start, "callSid"),
        account_sid=_text(start, "accountSid", required=False),
        tracks=names,
        custom_parameters=dict(params),
    )


def _media(msg: dict[str, Any]) -> Media:
    media = _object(msg, "media")
    payload = media.get("payload")
    if not isinstance(payload, str):
        raise CallProtocolError("a media message without a base64 'payload' string")
    if len(payload) > (MAX_PAYLOAD_BYTES + 2) // 3 * 4:
        raise CallProtocolError(f"a media payload over {MAX_PAYLOAD_BYTES} bytes")
    try:
        audio = _b64decode(payload)
    except (binascii.Error, ValueError):
        raise CallProtocolError(
            f"the media payload is not valid base64: {_short(payload)}"
        ) from None
    return Media(
        _track(media.get("track", "inbound")), _count(media, "chunk"),
        _count(media, "timestamp"), audio,
    )  # fmt: skip


# ``base64.b64decode(text, validate=True)``, which is this call from Python 3.11 on,
# without its two Python-level steps.
if sys.version_info >= (3, 11):
    _b64decode = partial(binascii.a2b_base64, strict_mode=True)
else:
    _b64decode = partial(base64.b64decode, validate=True)


_raw_decode = json.JSONDecoder().raw_decode


def _loads(text: str) -> Any:
    """``json.loads(text)``, faster for what Twilio sends: one JSON value, nothing around it
    (``raw_decode`` skips the two whitespace scans; anything else takes the long way, for
    ``json.loads``' own answer)."""
    try:
        value, end = _raw_decode(text)
    except ValueError:
        end = -1
    return value if end == len(text) else json.loads(text)


def parse_message(message: str | bytes) -> Event:
    """One Media Streams message as an event; :class:`CallProtocolError` if malformed."""
    if isinstance(message, bytes):
        raise CallProtocolError("a binary message: Media Streams sends JSON text only")
    if len(message) > MAX_MESSAGE_BYTES:
        raise CallProtocolError(f"a message over {MAX_MESSAGE_BYTES} bytes")
    try:
        msg = _loads(message)
    except RecursionError:
        raise CallProtocolError("a message nested too deeply") from None
    except ValueError:
        raise CallProtocolError(f"a message that is not JSON: {_short(message)}") from None
    if not isinstance(msg, dict):
        raise CallProtocolError(f"a JSON {type(msg).__name__}, not an object")
    event = msg.get("event")
    if not isinstance(event, str):
        raise CallProtocolError("a message without an 'event' name")
    if event == "media":
        return _media(msg)
    if event == "connected":
        return Connected(
            _text(msg, "protocol", required=False), _text(msg, "version", required=False)
        )
    if event == "start":
        return _start(msg)
    if event == "stop":
        return Stop()
    if event == "mark":
        return Mark(_text(_object(msg, "mark"), "name", limit=1024))
    if event == "dtmf":
        dtmf = _object(msg, "dtmf")
        digit = _text(dtmf, "digit", limit=1)
        return Dtmf(_track(dtmf.get("track", "inbound")), digit)
    if len(event) > 64:
        raise CallProtocolError(f"an event name over 64 characters: {_short(event)}")
    return Unknown(event)


#: A media message in the layout Twilio sends every one: compact, its keys in this order.
#: :func:`parse_text` reads it without ``json.loads``. The payload's characters are left to
#: the strict base64 decoder, which refuses anything outside the alphabet (a backslash, a
#: control character), so a match is always valid JSON with these values.
_MEDIA_LAYOUT = re.compile(
    rb'\{"event":"media","sequenceNumber":"[0-9]{1,15}",'
    rb'"media":\{"track":"(inbound|outbound)","chunk":"([0-9]{1,15})",'
    rb'"timestamp":"([0-9]{1,15})","payload":"([^"]*)"\},'
    rb'"streamSid":"[A-Za-z0-9_.:-]{1,128}"\}'
)
_LAYOUT_TRACKS = {b"inbound": "inbound", b"outbound": "outbound"}
_MAX_PAYLOAD_B64 = (MAX_PAYLOAD_BYTES + 2) // 3 * 4


def parse_text(data: bytes) -> Event:
    """A text message as the UTF-8 bytes it came in: the event, or the error, that
    ``parse_message(data.decode())`` gives, and :class:`CallProtocolError` if not UTF-8.

    Twilio's own media messages, 50 a second a track, skip the decoding and ``json.loads``
    (2.5 µs against 4.5). Anything else, or anything found wrong on the way, takes the long
    way, so every error comes from :func:`parse_message` and reads the same."""
    m = _MEDIA_LAYOUT.fullmatch(data)
    if m is not None and len(m[4]) <= _MAX_PAYLOAD_B64:
        try:
            return Media(_LAYOUT_TRACKS[m[1]], int(m[2]), int(m[3]), _b64decode(m[4]))
        except (binascii.Error, ValueError):
            pass  # parse_message says why
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise CallProtocolError("a text message that is not UTF-8") from None
    return parse_message(text)


class TwilioStream:
    """One stream's messages in order: ``feed(text) -> Event`` (or ``feed_text(utf8)``), raising
    :class:`CallProtocolError` for anything out of place.

    ``start`` is the :class:`Start` once it came; after ``stop`` nothing more is taken.
    """

    def __init__(self) -> None:
        self.start: Start | None = None
        self.stopped = False

    def feed(self, message: str | bytes) -> Event:
        return self._in_order(parse_message(message))

    def feed_text(self, data: bytes) -> Event:
        """``feed(data.decode())``, faster: a text message as the UTF-8 bytes it came in."""
        return self._in_order(parse_text(data))

    def _in_order(self, event: Event) -> Event:
        if self.stopped:
            raise CallProtocolError(f"a {type(event).__name__.lower()} message after stop")
        if type(event) is Media:  # 50 a second a track: first
            if self.start is None:
                raise CallProtocolError("a media message before start")
            if event.track not in self.start.tracks:
                raise CallProtocolError(
                    f"media for the {event.track} track, which the start did not announce"
                )
        elif isinstance(event, Start):
            if self.start is not None:
                raise CallProtocolError("a second start message")
            self.start = event
        elif isinstance(event, Stop):
            self.stopped = True
        return event


def ulaw_to_float(payload: bytes) -> np.ndarray:
    """µ-law bytes to float32 mono, full scale 1.0 (G.711, nsaudio's own table)."""
    return decode(payload, _ULAW, 1)[:, 0]


@cache
def _ulaw_int16() -> np.ndarray:
    # Every G.711 µ-law value is a whole int16 (at most +-32124): the table, exactly.
    return np.rint(ulaw_to_float(bytes(range(256))) * 32768).astype(np.int16)


def ulaw_to_int16(payload: bytes | np.ndarray) -> np.ndarray:
    """µ-law bytes (or their codes as a uint8 array) to int16 mono: the same values as
    :func:`ulaw_to_float`, times 32768."""
    return _ulaw_int16().take(np.frombuffer(payload, np.uint8))  # take: faster than [index]
