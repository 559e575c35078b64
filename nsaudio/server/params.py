"""Parsing and validation of the local server's request paths and query strings.

Pure functions, no I/O: the server turns a :class:`StreamParamError` into a WebSocket close
with code 1008 and the error's ``reason``, a :class:`RestParamError` into an HTTP 400, and a
:class:`NotAStreamPath` into an HTTP 404.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from ..errors import ServerError

__all__ = [
    "DEFAULT_TOKEN_DURATION",
    "FORMATS",
    "LANGUAGES",
    "MAX_CHUNK_SIZE_LIMIT",
    "MAX_TOKEN_DURATION",
    "STREAM_PREFIX",
    "NotAStreamPath",
    "RestParamError",
    "ServerParamError",
    "SessionParams",
    "StreamParamError",
    "StreamPath",
    "parse_stream_params",
    "parse_token_duration",
    "redact_path",
    "split_stream_path",
]

STREAM_PREFIX = "/voice/stream/live/transcribe/"

# Listed by GET /api/v2/languages. "en-in" is also accepted on the WebSocket, as an alias
# decoded by the same en-us model, because clients copied from the service's guide ask for it.
LANGUAGES: tuple[str, ...] = ("en",)
_LANGUAGE_ALIASES: Mapping[str, str] = {"en": "en", "en-in": "en"}

FORMATS: Mapping[str, int] = {"pcm_16k": 16000, "pcm_8k": 8000}

DEFAULT_MAX_CHUNK_SIZE = 5
MAX_CHUNK_SIZE_LIMIT = 60
# The speech detector's threshold (nsaudio.detectors.energy): a frame is speech 6 + 20 x dB
# above the noise floor.
DEFAULT_VAD_THRESHOLD = 0.5
DEFAULT_TOKEN_DURATION = 3600.0
MAX_TOKEN_DURATION = 7 * 24 * 3600.0

# A WebSocket close reason is at most 123 bytes of UTF-8.
_MAX_REASON_BYTES = 123
_UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
_INT_RE = re.compile(r"[0-9]{1,6}")
_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})
_KNOWN_QUERY_KEYS = frozenset({"max_chunk_size", "vad_threshold", "disable_partial", "format"})
_STREAM_TAIL_RE = re.compile(r"(/voice/stream/live/transcribe/)([^?#\s\"']*)")
_LANGUAGE_LIKE_RE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z]{2,4})?")
_AUTHORIZATION_RE = re.compile(r"(?i)(authorization\s*:\s*)\S[^\r\n]*")


class ServerParamError(ServerError, ValueError):
    """Base of the request-validation errors; ``reason`` is safe to send to the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotAStreamPath(ServerParamError):
    """The path is not ``/voice/stream/live/transcribe/{language}/{token}/{session_id}``."""


class RestParamError(ServerParamError):
    """A REST query parameter is invalid (HTTP 400)."""


class StreamParamError(ServerParamError):
    """A stream parameter is invalid: close the WebSocket with 1008 and ``reason``.

    ``parameter`` names the offending path segment or query key.
    """

    def __init__(self, parameter: str, reason: str) -> None:
        super().__init__(_fit_reason(reason))
        self.parameter = parameter


@dataclass(frozen=True)
class StreamPath:
    """The pieces of a stream URL, before validation. ``repr`` hides the token."""

    language: str
    token: str
    session_id: str
    query: Mapping[str, list[str]]

    def __repr__(self) -> str:
        return (
            f"StreamPath(language={self.language!r}, token=<redacted>, "
            f"session_id={self.session_id!r}, query={dict(self.query)!r})"
        )


@dataclass(frozen=True)
class SessionParams:
    """A validated stream request."""

    language: str
    session_id: str
    max_chunk_size: int = DEFAULT_MAX_CHUNK_SIZE
    vad_threshold: float = DEFAULT_VAD_THRESHOLD
    disable_partial: bool = False
    format: str = "pcm_16k"
    #: Query keys the request carried that this server does not use (``min_chunk_size``...).
    ignored: tuple[str, ...] = field(default=(), compare=False)

    @property
    def sample_rate(self) -> int:
        return FORMATS[self.format]


def _fit_reason(reason: str) -> str:
    data = reason.encode("utf-8")
    if len(data) <= _MAX_REASON_BYTES:
        return reason
    return data[: _MAX_REASON_BYTES - 3].decode("utf-8", "ignore") + "..."


def _show(value: str) -> str:
    """Quote a client-supplied value for an error message, kept short."""
    return repr(value if len(value) <= 24 else value[:21] + "...")


def _redact_stream_tail(match: re.Match[str]) -> str:
    segments = match.group(2).split("/")
    kept = []
    for i, segment in enumerate(segments):
        language = i == 0 and len(segments) > 1 and _LANGUAGE_LIKE_RE.fullmatch(segment)
        session = i == len(segments) - 1 and i > 0 and _UUID_RE.match(segment)
        kept.append(segment if not segment or language or session else "<redacted>")
    return match.group(1) + "/".join(kept)


def redact_path(text: str) -> str:
    """Return ``text`` with secrets hidden: in any stream URL path it contains, every segment
    that is not the language or the session UUID (so the token, wherever a malformed path
    puts it), and the value of any ``Authorization:`` header line.

    Meant for log lines and exception messages.
    """
    text = _STREAM_TAIL_RE.sub(_redact_stream_tail, text)
    return _AUTHORIZATION_RE.sub(r"\1<redacted>", text)


def split_stream_path(path: str) -> StreamPath:
    """Split a request path (with its query string) into a :class:`StreamPath`.

    Raises :class:`NotAStreamPath` unless the path has exactly the three segments after
    :data:`STREAM_PREFIX`.
    """
    parts = urlsplit(path)
    if not parts.path.startswith(STREAM_PREFIX):
        raise NotAStreamPath("unknown path")
    segments = parts.path[len(STREAM_PREFIX) :].split("/")
    if len(segments) != 3 or not segments[1]:
        raise NotAStreamPath(
            "expected /voice/stream/live/transcribe/{language}/{token}/{session_id}"
        )
    query = parse_qs(parts.query, keep_blank_values=True)
    return StreamPath(segments[0], segments[1], segments[2], query)


def _single(query: Mapping[str, list[str]], key: str) -> str | None:
    values = query.get(key)
    if values is None:
        return None
    if len(values) != 1:
        raise StreamParamError(key, f"{key} given {len(values)} times; give it once")
    return values[0]


def _parse_max_chunk_size(text: str) -> int:
    reason = f"max_chunk_size must be an integer from 1 to {MAX_CHUNK_SIZE_LIMIT} (seconds), got {_show(text)}"
    if not _INT_RE.fullmatch(text.strip()):
        raise StreamParamError("max_chunk_size", reason)
    value = int(text)
    if not 1 <= value <= MAX_CHUNK_SIZE_LIMIT:
        raise StreamParamError("max_chunk_size", reason)
    return value


def _parse_vad_threshold(text: str) -> float:
    # The service takes "any positive floating point value"; see vad.py for what above 1 means.
    reason = f"vad_threshold must be a positive number, got {_show(text)}"
    try:
        value = float(text)
    except ValueError:
        raise StreamParamError("vad_threshold", reason) from None
    if not (math.isfinite(value) and value > 0.0):
        raise StreamParamError("vad_threshold", reason)
    return value


def _parse_bool(key: str, text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise StreamParamError(
        key, f"{key} must be true or false (any case) or 1 or 0, got {_show(text)}"
    )


def parse_stream_params(
    language: str, session_id: str, query: Mapping[str, list[str]]
) -> SessionParams:
    """Validate a stream request; unknown query keys are ignored (and listed in ``ignored``).

    Raises :class:`StreamParamError` naming the first invalid parameter and its allowed values.
    """
    canonical = _LANGUAGE_ALIASES.get(language)
    if canonical is None:
        allowed = ", ".join(sorted(_LANGUAGE_ALIASES))
        raise StreamParamError(
            "language", f"language {_show(language)} is not supported here; use one of: {allowed}"
        )
    if not _UUID_RE.match(session_id):
        raise StreamParamError(
            "session_id",
            f"session_id must be a UUID like 1b4e28ba-2fa1-11d2-883f-0016d3cca427, got {_show(session_id)}",
        )
    fmt = _single(query, "format")
    if fmt is not None and fmt not in FORMATS:
        raise StreamParamError(
            "format", f"format must be one of {', '.join(FORMATS)}, got {_show(fmt)}"
        )
    chunk = _single(query, "max_chunk_size")
    threshold = _single(query, "vad_threshold")
    partial = _single(query, "disable_partial")
    return SessionParams(
        language=canonical,
        session_id=session_id,
        max_chunk_size=DEFAULT_MAX_CHUNK_SIZE if chunk is None else _parse_max_chunk_size(chunk),
        vad_threshold=DEFAULT_VAD_THRESHOLD
        if threshold is None
        else _parse_vad_threshold(threshold),
        disable_partial=False if partial is None else _parse_bool("disable_partial", partial),
        format="pcm_16k" if fmt is None else fmt,
        ignored=tuple(sorted(set(query) - _KNOWN_QUERY_KEYS)),
    )


def parse_token_duration(query: Mapping[str, list[str]]) -> float:
    """The ``duration`` of ``GET /api/v2/token`` in seconds (default one hour).

    Raises :class:`RestParamError` unless it is a finite number in (0, one week].
    """
    values = query.get("duration")
    if not values:
        return DEFAULT_TOKEN_DURATION
    text = values[-1]
    reason = (
        f"duration must be a number of seconds greater than 0 and at most "
        f"{MAX_TOKEN_DURATION:.0f}, got {_show(text)}"
    )
    try:
        value = float(text)
    except ValueError:
        raise RestParamError(reason) from None
    if not (math.isfinite(value) and 0.0 < value <= MAX_TOKEN_DURATION):
        raise RestParamError(reason)
    return value
