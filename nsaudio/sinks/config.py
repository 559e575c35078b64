"""Every setting of a stream to the speech service, declared once and validated once.

The command line builds a :class:`SessionConfig` from its options; ``NeuralSpaceSink`` takes
it (or its fields as keyword arguments) and hands it, unchanged, to the session machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from ..errors import InputError

__all__ = ["SessionConfig"]


def _positive(name: str, value: object, *, zero: bool = False) -> None:
    ok = (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (value >= 0 if zero else value > 0)
    )
    if not ok:
        what = "0 or more" if zero else "a positive number"
        raise InputError(f"{name} must be {what}, not {value!r}")


@dataclass(frozen=True)
class SessionConfig:
    """How one stream talks to the service. Durations are seconds.

    Sending:

    - ``pace``: a file's frames go out at ``pace`` x real time; 0 sends as fast as the
      service reads them (live sources are never paced: they come at real time).
    - ``live``: a live source (microphone, a call): its queue drops the oldest audio when the
      connection falls behind (counted and reported as lost), and a live stream is never held
      back by the unconfirmed-audio ``window``.
    - ``ring_seconds``: the queue between the pipeline and the connection.
    - ``window``: at most this much audio goes out before a pong proves the service read it
      (a re-send, and files; a ping goes out at half of it).

    Reconnecting:

    - ``replay_seconds``: the unfinalised speech kept to send again after a drop.
    - ``reconnect_timeout``: one run of failures with no progress between them may last this
      long; ``startup_timeout`` the same for the first session; ``connect_timeout`` bounds
      one attempt (the token request and the WebSocket handshake, each as a whole).
    - ``backoff``: ``(base, cap)`` of the jittered exponential wait between attempts.
    - ``token_duration``: seconds a token is asked to last.

    Liveness: a ping every ``ping_interval``; neither a pong nor a message within
    ``ping_timeout`` and the connection is dead.

    The end (see ``nsaudio/sinks/drain.py`` for the rule):

    - ``trailing_silence``: silence sent after the last frame, so the service's VAD closes
      the last segment.
    - ``extra_silence``: at most this much more silence, in steps of ``silence_step``, while
      speech is not yet covered by a full result (None: the ``max_chunk_size`` of the stream,
      after which any service finalises a segment).
    - ``speech_tolerance``: how far before the end of a span the local detector heard as speech
      a full result may end and still cover it (the detector's hangover plus one frame; the
      default suits the energy gate's 300 ms hangover and 100 ms frames).
    - ``idle_timeout``: once every step of silence has been read, a service that says nothing
      for this long has nothing more to say.
    - ``drain_timeout``: the whole end, from the last frame, reconnects included.
    - ``keep_finals``: full results kept in ``sink.transcript`` (every one is delivered).
    """

    pace: float = 0.0
    live: bool = False
    ring_seconds: float = 10.0
    window: float = 2.0
    replay_seconds: float = 300.0
    reconnect_timeout: float = 60.0
    startup_timeout: float = 10.0
    connect_timeout: float = 10.0
    backoff: tuple[float, float] = (0.2, 5.0)
    token_duration: int = 3600
    ping_interval: float = 2.5
    ping_timeout: float = 7.0
    trailing_silence: float = 1.2
    extra_silence: float | None = None
    silence_step: float = 0.5
    speech_tolerance: float = 0.5
    idle_timeout: float = 5.0
    drain_timeout: float = 30.0
    keep_finals: int = 1000

    def __post_init__(self) -> None:
        for name in ("ring_seconds", "window", "replay_seconds", "connect_timeout",
                     "silence_step", "idle_timeout", "drain_timeout"):  # fmt: skip
            _positive(name, getattr(self, name))
        for name in ("pace", "reconnect_timeout", "startup_timeout", "ping_interval",
                     "ping_timeout", "trailing_silence", "speech_tolerance"):  # fmt: skip
            _positive(name, getattr(self, name), zero=True)
        if self.extra_silence is not None:
            _positive("extra_silence", self.extra_silence, zero=True)
        if not isinstance(self.live, bool):
            raise InputError(f"live must be True or False, not {self.live!r}")
        try:
            base, cap = (float(x) for x in self.backoff)
        except (TypeError, ValueError):
            raise InputError(f"backoff must be (base, cap), not {self.backoff!r}") from None
        if not (0 < base <= cap < math.inf):
            raise InputError(
                f"backoff must be (base, cap) with 0 < base <= cap, not {self.backoff!r}"
            )
        object.__setattr__(self, "backoff", (base, cap))
        for name in ("token_duration", "keep_finals"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a whole number of at least 1, not {value!r}")

    @classmethod
    def names(cls) -> frozenset[str]:
        """The settings' names (what ``NeuralSpaceSink`` takes as keyword arguments)."""
        return frozenset(f.name for f in fields(cls))
