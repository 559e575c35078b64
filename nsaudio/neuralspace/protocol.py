"""NeuralSpace VoiceAI real-time protocol, as pure functions and objects: no sockets here.

- URLs: the REST base maps ``http`` to ``ws`` and ``https`` to ``wss``; the WebSocket path is
  ``/voice/stream/live/transcribe/{language}/{token}/{session_id}`` plus the query.
- Results: JSON text messages parsed into :class:`TranscriptResult` (unknown keys kept).
- Assembly: :class:`Transcript` applies the rule that each partial replaces the one before
  and a full result supersedes every partial before it.
- Redaction: tokens travel in the URL path, so anything that shows a URL goes through
  :func:`redact` first.
"""

from __future__ import annotations

import collections
import json
import math
import re
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from ..errors import InputError, ProtocolError
from ..formats import FORMATS

__all__ = [
    "DEFAULT_BASE_URL",
    "LANGUAGES",
    "RESERVED_QUERY_KEYS",
    "RESULT_KEYS",
    "StreamParams",
    "Transcript",
    "TranscriptResult",
    "check_query_key",
    "parse_result",
    "redact",
    "stream_url",
    "ws_base",
]

DEFAULT_BASE_URL = "https://voice.neuralspace.ai"
STREAM_PATH = "/voice/stream/live/transcribe"

#: The languages the service documents for streaming (used when the list cannot be fetched).
LANGUAGES = ("en", "en-in", "ar", "ar-ms", "ar-eg", "ar-sa", "hi", "tl")

#: The keys every result message carries.
RESULT_KEYS = ("full", "stream_id", "chunk_id", "start_time", "end_time", "send_time", "text")

_STREAM_TOKEN_RE = re.compile(r"(/voice/stream/live/transcribe/[^/?#\s]+/)([^/?#\s]+)")


#: Query keys nsaudio sets itself; ``StreamParams.extra`` may not carry them.
RESERVED_QUERY_KEYS = ("max_chunk_size", "vad_threshold", "disable_partial", "format")

_QUERY_KEY_RE = re.compile(r"[A-Za-z0-9_]+")


@dataclass(frozen=True)
class StreamParams:
    """What the WebSocket URL carries besides the token; validated on construction
    (:class:`~nsaudio.errors.InputError`).

    ``language``: a code such as ``en`` or ``ar-eg`` (which ones a service streams, it
    says: ``nsaudio languages``); ``format``: ``pcm_16k`` or ``pcm_8k``, the PCM sent;
    ``max_chunk_size``: seconds of speech (1 to 60) after which the service finalises even
    without a pause; ``disable_partial``: ask for full results only. ``vad_threshold`` is any positive finite number, as the service's guide says; the service
    judges what it means. ``extra`` holds further query parameters the service knows (such as
    ``min_chunk_size``), sent unchanged after nsaudio's own; keys are letters, digits and
    underscores, and none of :data:`RESERVED_QUERY_KEYS`.
    """

    language: str = "en"
    format: str = "pcm_16k"
    max_chunk_size: int = 5
    vad_threshold: float = 0.5
    disable_partial: bool = False
    extra: dict[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.language, str) or not re.fullmatch(
            r"[a-z]{2,3}(-[a-z]{2,3})?", self.language
        ):
            raise InputError(f"language {self.language!r} is not a language code like en or ar-eg")
        if self.format not in FORMATS:
            raise InputError(
                f"unsupported format {self.format!r}: choose one of {', '.join(FORMATS)}"
            )
        if (
            isinstance(self.max_chunk_size, bool)
            or not isinstance(self.max_chunk_size, int)
            or not 1 <= self.max_chunk_size <= 60
        ):
            raise InputError(
                f"max chunk size must be a whole number of seconds from 1 to 60, not {self.max_chunk_size!r}"
            )
        v = self.vad_threshold
        if (
            isinstance(v, bool)
            or not isinstance(v, (int, float))
            or not math.isfinite(v)
            or not v > 0
        ):
            raise InputError(f"vad threshold must be a positive number, not {v!r}")
        try:
            extra = dict(self.extra)  # a copy: the caller's may change
        except (TypeError, ValueError):
            raise InputError(
                f"extra query parameters must be a mapping, not {self.extra!r}"
            ) from None
        for key, value in extra.items():
            check_query_key(key)
            if not isinstance(value, str):
                raise InputError(f"query parameter {key} must be a string, not {value!r}")
        object.__setattr__(self, "extra", extra)

    @property
    def rate(self) -> int:
        """The format's sample rate, Hz."""
        return FORMATS[self.format]

    def query(self) -> dict[str, str]:
        """The WebSocket URL's query: nsaudio's keys, then ``extra``'s."""
        return {
            "max_chunk_size": str(self.max_chunk_size),
            "vad_threshold": repr(float(self.vad_threshold)),
            "disable_partial": "true" if self.disable_partial else "false",
            "format": self.format,
            **self.extra,
        }


def check_query_key(key: object) -> str:
    """``key`` if it may go into ``StreamParams.extra``; ``InputError`` saying why not."""
    if not isinstance(key, str) or not _QUERY_KEY_RE.fullmatch(key):
        raise InputError(
            f"query parameter name {key!r} must be letters, digits and underscores only"
        )
    if key in RESERVED_QUERY_KEYS:
        raise InputError(f"query parameter {key} is set by nsaudio itself")
    return key


def ws_base(base_url: str) -> str:
    """``http(s)://host[:port][/prefix]`` to ``ws(s)://...``; anything else is an input error."""
    parts = urlsplit(base_url.strip())
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme.lower())
    if scheme is None or not parts.netloc:
        raise InputError(
            f"base URL {redact(base_url)!r} must look like https://host or http://host:port"
        )
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def rest_base(base_url: str) -> str:
    parts = urlsplit(base_url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise InputError(
            f"base URL {redact(base_url)!r} must look like https://host or http://host:port"
        )
    return urlunsplit((parts.scheme.lower(), parts.netloc, parts.path.rstrip("/"), "", ""))


def stream_url(
    base_url: str, token: str, params: StreamParams, session_id: str | None = None
) -> str:
    """The WebSocket URL of one streaming session (a fresh UUID4 session id by default)."""
    if not token or any(c in token for c in "/?#% \t\r\n"):
        raise ProtocolError(
            "the service issued a token that cannot go into a URL path", retryable=False
        )
    sid = session_id or str(uuid.uuid4())
    return f"{ws_base(base_url)}{STREAM_PATH}/{params.language}/{token}/{sid}?{urlencode(params.query())}"


def redact(text: str, *secrets: str) -> str:
    """``text`` with the token segment of any stream path, and every given secret, hidden."""
    out = _STREAM_TOKEN_RE.sub(r"\1<token>", str(text))
    for secret in secrets:
        if secret:
            out = out.replace(secret, "<redacted>")
    return out


@dataclass(frozen=True)
class TranscriptResult:
    """One result message, with the service's keys. ``full``: final (it supersedes the
    partials before it) or partial; ``text``; ``start_time`` and ``end_time``: seconds in
    the stream (absolute once nsaudio has mapped them, reconnects and gate gaps included);
    ``chunk_id`` and ``stream_id``: the service's numbering; ``send_time``: the service's
    clock when it sent the result; ``extra``: keys the service sent that nsaudio does not
    know, kept as they came.

    ``channel`` is not the service's: it names the input channel whose session sent the
    result when each channel has a session of its own (``--split-channels``), else None.
    """

    full: bool
    text: str
    start_time: float
    end_time: float
    chunk_id: int = 0
    stream_id: str = ""
    send_time: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    channel: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The service's keys (times as they are here), ``channel`` when there is one, then
        the unknown keys the service sent."""
        out: dict[str, Any] = {
            "full": self.full,
            "stream_id": self.stream_id,
            "chunk_id": self.chunk_id,
            "start_time": round(self.start_time, 6),
            "end_time": round(self.end_time, 6),
            "send_time": self.send_time,
            "text": self.text,
        }
        if self.channel is not None:
            out["channel"] = self.channel
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return out


#: Result times beyond this (about 11 days) are hostile, not a long stream.
MAX_TIME_S = 1e6


def _number(
    msg: dict[str, Any], key: str, default: float | None = None, limit: float = math.inf
) -> float:
    value = msg.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProtocolError(f"result key {key!r} must be a number, not {_short(value)}")
    if not (math.isfinite(value) and abs(value) <= limit):
        raise ProtocolError(f"result key {key!r} is out of range: {_short(value)}")
    return float(value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _utf8(text: str, what: str) -> str:
    """``text`` if it can be written as UTF-8 (JSON allows lone surrogates; stdout does not)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ProtocolError(f"{what} holds a lone surrogate (not valid Unicode text)") from None
    return text


def parse_result(message: str | bytes) -> TranscriptResult:
    """Parse one result message; ``ProtocolError`` (to report and skip) if it is malformed."""
    try:
        msg = json.loads(message)
    except (ValueError, UnicodeDecodeError) as err:
        raise ProtocolError(f"result is not JSON ({_short(str(err))})") from None
    except RecursionError:
        raise ProtocolError("result is JSON nested too deeply") from None
    if not isinstance(msg, dict):
        raise ProtocolError(f"result is a JSON {type(msg).__name__}, not an object")
    full = msg.get("full")
    if not isinstance(full, bool):
        if full in ("true", "false", 0, 1):  # lenient with servers that stringify
            full = full in ("true", 1)
        else:
            raise ProtocolError(f"result key 'full' must be true or false, not {full!r}")
    text = msg.get("text")
    if not isinstance(text, str):
        raise ProtocolError(f"result key 'text' must be a string, not {type(text).__name__}")
    _utf8(text, "result key 'text'")
    start = _number(msg, "start_time", limit=MAX_TIME_S)
    end = _number(msg, "end_time", limit=MAX_TIME_S)
    if start < 0:
        raise ProtocolError(f"result starts before the stream ({start})")
    if end < start:
        raise ProtocolError(f"result ends ({end}) before it starts ({start})")
    chunk_id = msg.get("chunk_id", 0)
    if isinstance(chunk_id, bool) or not isinstance(chunk_id, int):
        raise ProtocolError(f"result key 'chunk_id' must be an integer, not {chunk_id!r}")
    stream_id = _utf8(str(msg.get("stream_id", "")), "result key 'stream_id'")
    extra = {k: v for k, v in msg.items() if k not in RESULT_KEYS}
    try:
        json.dumps(extra, ensure_ascii=False).encode("utf-8")  # what --output jsonl will write
    except (UnicodeEncodeError, RecursionError, ValueError):
        raise ProtocolError("result carries extra keys that cannot be written as JSON") from None
    return TranscriptResult(
        full=full,
        text=text,
        start_time=start,
        end_time=end,
        chunk_id=chunk_id,
        stream_id=stream_id,
        send_time=_number(msg, "send_time", 0.0),
        extra=extra,
    )


class Transcript:
    """The running transcript: the latest full results and the current partial.

    Ordering follows arrival and times, not ``chunk_id`` alone: services number partials and
    full results differently. A partial that ends no later than the last full result is a
    straggler from the segment that result closed, and is ignored.

    Bounded for live runs of any length: ``finals`` keeps the last ``keep`` full results
    (None: all of them); ``final_end`` and ``count`` cover the whole stream. Whoever needs
    every result takes them as they arrive (``on_result`` or ``results()``).
    """

    def __init__(self, keep: int | None = 1000) -> None:
        if keep is not None and keep < 1:
            raise ValueError(f"keep must be at least 1 or None, not {keep!r}")
        self.finals: collections.deque[TranscriptResult] = collections.deque(maxlen=keep)
        self.partial: TranscriptResult | None = None
        self.final_end = 0.0
        self.count = 0

    def add(self, result: TranscriptResult) -> bool:
        """Apply one result; False if it was a stale partial and changed nothing."""
        if result.full:
            self.finals.append(result)
            self.final_end = max(self.final_end, result.end_time)
            self.count += 1
            self.partial = None
            return True
        if self.count and result.end_time <= self.final_end:
            return False
        self.partial = result
        return True

    @property
    def text(self) -> str:
        """The full results' text, joined with spaces (what a final transcript is)."""
        return " ".join(r.text.strip() for r in self.finals if r.text.strip())

    @property
    def live_text(self) -> str:
        """The full results and the current partial: what a live view shows."""
        tail = self.partial.text.strip() if self.partial else ""
        return " ".join(t for t in (self.text, tail) if t)
