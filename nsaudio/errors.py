"""nsaudio's exceptions, one tree.

::

    NsAudioError                               exit status of the nsaudio command
    ├── InputError (ValueError)                    2   bad argument, unreadable or unsupported audio
    │   ├── UnsupportedAudioError                  2   a file that is not audio nsaudio can decode
    │   ├── MissingExtraError                      2   an optional part is not installed (pip extra)
    │   ├── DeviceError                            2   no such input device, busy, PortAudio missing
    │   └── DetectorError                          2   a speech detector's extra or model missing
    ├── ServiceError (RuntimeError)                1   the service or the network failed
    │   ├── AuthenticationError                    3   key or token rejected; never retried
    │   ├── ProtocolError                          1   the service broke the protocol
    │   └── UntranscribedError                     1*  speech sent was never transcribed
    ├── ConsumerError                              1   whoever took the results failed
    ├── AudioLostError (RuntimeError)              1   live audio was dropped before it was sent
    ├── RingClosed                                 -   a put into a ring after close()
    └── ServerError                                1   raised by the local server (nsaudio.server)
        ├── ServerStartError (OSError)             1   cannot listen (the port is taken)
        ├── ServerParamError (ValueError)          -   a client's request is invalid
        │   ├── NotAStreamPath                         answered with HTTP 404
        │   ├── RestParamError                         answered with HTTP 400
        │   └── StreamParamError                       answered with close 1008 and a reason
        ├── EngineStateError (RuntimeError)        -   a recogniser used out of order (a bug)
        └── PoolExhausted (RuntimeError)           -   no recogniser free: close 1013

``ServiceError.retryable`` says whether trying again may help (a 5xx or a dropped
connection) or not (a 4xx). ``UntranscribedError`` names the seconds of speech
that no full result covered; when a failure caused it (``__cause__``), its exit status is
the cause's (3 for a rejected token). The exit statuses are the command line's
(``nsaudio.cli.exits`` decides them from the class); the library's errors carry none. The
server's classes are defined beside the code that raises them (``server/app.py``,
``server/params.py``, ``server/engines.py``), on :class:`ServerError`.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AudioLostError",
    "AuthenticationError",
    "ConsumerError",
    "DetectorError",
    "DeviceError",
    "InputError",
    "MissingExtraError",
    "NsAudioError",
    "ProtocolError",
    "RingClosed",
    "ServerError",
    "ServiceError",
    "UnsupportedAudioError",
    "UntranscribedError",
]


class NsAudioError(Exception):
    """Base class of every error nsaudio raises on purpose."""


class InputError(NsAudioError, ValueError):
    """A bad argument or bad input audio: fix the command line or the file."""


class UnsupportedAudioError(InputError):
    """The input is not audio that nsaudio can decode."""


class MissingExtraError(InputError):
    """An optional part of nsaudio is not installed; the message names the
    ``pip install 'nsaudio[...]'`` that brings it."""


class DeviceError(InputError):
    """The audio device cannot be used: unknown, busy, missing, or PortAudio absent."""


class DetectorError(InputError):
    """A speech detector cannot be used: its extra is not installed (the message names the
    ``pip install`` that brings it), or its model file is missing or damaged."""


class ServiceError(NsAudioError, RuntimeError):
    """The speech service or the network failed: ``message`` says how.

    ``retryable`` is true where trying again may help (5xx, a dropped connection);
    ``status`` is the HTTP status or WebSocket close code, where there was one.

    When the failure ended a stream whose speech was not all transcribed, the session
    engine says which: ``missing`` lists the ``(start, end)`` stream seconds of speech (as
    the local detector heard it) that no full result covered, and ``open_end``, when the
    stream ended before all its input was sent, the second from which nothing was; both
    show in the message.
    """

    def __init__(self, message: str, *, retryable: bool = True, status: int | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.missing: list[tuple[float, float]] = []
        self.open_end: float | None = None

    def untranscribed(self, missing: list[tuple[float, float]], open_end: float | None) -> None:
        """Record the speech this failure left untranscribed (see the class docstring)."""
        self.missing = list(missing)
        self.open_end = open_end

    def __str__(self) -> str:
        text = super().__str__()
        said = ", ".join(f"{a:.1f}-{b:.1f} s" for a, b in self.missing)
        if self.open_end is not None:
            rest = f"everything after {self.open_end:.1f} s (not sent)"
            said = f"{said}, {rest}" if said else rest
        return f"{text}; untranscribed: {said} of the stream" if said else text


class AuthenticationError(ServiceError):
    """The API key or token was rejected (HTTP 401/403, or close 1008 for the token):
    ``message`` says how, ``status`` is that code; never retryable.

    ``credential`` says which: ``"key"`` (the REST API refused the API key: final) or
    ``"token"`` (the WebSocket refused a session token: worth one fresh token).
    """

    def __init__(self, message: str, *, status: int | None = None, credential: str = "key") -> None:
        super().__init__(message, retryable=False, status=status)
        self.credential = credential


class UntranscribedError(ServiceError):
    """The stream ended, and speech it sent never got a full result: the service fell
    silent, or the end's deadline passed, or the speech outgrew the replay buffer while the
    connection was away. ``message`` says why; ``missing`` names it (see :class:`ServiceError`)."""

    def __init__(self, message: str, missing: list[tuple[float, float]] | None = None) -> None:
        super().__init__(message, retryable=False)
        self.missing = list(missing or [])


class ProtocolError(ServiceError):
    """The service sent something the protocol does not allow (``message``, ``retryable``
    and ``status`` as for :class:`ServiceError`)."""


class ConsumerError(NsAudioError):
    """Whoever took the results failed (a raising callback, a closed output pipe): the
    stream ended without them. The consumer's own exception is ``__cause__``."""

    @classmethod
    def of(cls, err: BaseException) -> ConsumerError:
        """The error that ends a stream whose consumer raised ``err`` (its ``__cause__``)."""
        if isinstance(err, BrokenPipeError):
            error = cls("the output was closed (broken pipe); stopped the stream")
        else:
            error = cls(
                f"the result callback failed: {type(err).__name__}: {err}; stopped the stream"
            )
        error.__cause__ = err
        return error


class AudioLostError(NsAudioError, RuntimeError):
    """Live audio was lost before it could be sent: a ring dropped it because this machine or
    the connection fell behind, or the device discarded input nobody read in time.

    Raised by ``Pipeline.run()`` (and at the end of ``results()``) once the stream has
    otherwise ended well: every result the service sent has been delivered, so only the
    lost audio is missing from the transcript. ``message`` says it in a line; ``losses``
    (:class:`nsaudio.losses.Losses`) says how much and where; ``stats`` is the run's
    ``RunStats``.
    """

    def __init__(self, message: str, losses: Any = None, stats: Any = None) -> None:
        super().__init__(message)
        self.losses = losses
        self.stats = stats


class RingClosed(NsAudioError):
    """A put into a ring that was closed."""


class ServerError(NsAudioError):
    """Base of the errors the local server raises (its subclasses live in ``nsaudio.server``)."""
