"""The session engine's decisions, as a pure state machine: no sockets, threads or sleeps.

Events go in as method calls, each with ``now`` (monotonic seconds) and, for anything a
connection reports, the number of the session it concerns (reports from a session already
given up are ignored); actions come out as lists of the small dataclasses below, for the I/O
shell (:mod:`.neuralspace`) to carry out. Everything that decides lives here, so every phase
can be tested on a fake clock:

- **Replay and timeline.** Every frame sent is kept until a full result covers it; a new
  session hears that unfinalised audio again, and its times are mapped back to the stream.
- **Retry.** A failure opens a new session at once, then with capped, jittered exponential
  backoff, within ``reconnect_timeout``; a full result that moves the stream forward, or a
  session up ``HEALTHY_S``, earns a fresh budget. The first session gets ``startup_timeout``.
  Authentication failures are final; a 1008 right after connecting gets one fresh token.
- **Liveness and flow.** A ping every ``ping_interval``; neither its pong nor any message
  within ``ping_timeout`` and the connection is dead (a half-open connection is noticed
  within the sum; a service busy with a backlog still sends results, so it is not). A pong also
  proves the service has read everything sent before its ping, so at most ``window``
  seconds of audio go out unconfirmed (a ping goes out at half of it): a fast sender (a file
  at ``--pace 0``, a replay) never queues so much ahead of a ping that a live service's
  pong comes too late (a service reads its audio in order, at about real time or faster:
  2 s ahead of a ping must not look like a dead connection after a 5 s pong timeout), and
  a service that stops reading stops the sender within a window. Live audio (``live``)
  comes at real time and is never held back by the window (a service that lags is its own
  business; capture must not wait for it): only what a new session re-sends is.
- **Drain.** After the last frame (trailing silence included) the machine waits for the full
  result covering the last speech sent, for an idle service that answered a ping since, or
  for ``drain_timeout``. A reconnect during the drain re-sends the unfinalised audio and
  starts the drain again with a fresh budget.
- **The end.** ``Finish`` carries an :class:`Outcome`: ok only when every result the service
  sent was delivered and no audio sent went untranscribed; otherwise an error that says which
  seconds are missing.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from ..blocks import Frame
from ..errors import AuthenticationError, NsAudioError, ProtocolError, ServiceError
from ..neuralspace.connection import Closed, classify_close
from ..neuralspace.protocol import Transcript, TranscriptResult, parse_result
from .replay import ReplayBuffer, Timeline

__all__ = [
    "Abandon",
    "Action",
    "Close",
    "Deliver",
    "Finish",
    "Open",
    "Outcome",
    "Ping",
    "Send",
    "SessionMachine",
]

log = logging.getLogger("nsaudio.neuralspace")

#: A close this soon after connecting, before any result, is the service refusing the session.
EARLY_CLOSE_S = 3.0
#: A session up this long ends a run of failures: the next one starts a fresh budget.
HEALTHY_S = 10.0
#: How long a stopped stream's drain waits on a service that is alive and silent.
HURRY_IDLE_S = 2.0
#: A result may end this far past the audio sent (services round up); further is hostile.
TIME_SLACK_S = 5.0


# -- actions -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Open:
    """Open session ``session`` after ``delay`` seconds (with a fresh token if asked)."""

    session: int
    delay: float = 0.0
    fresh_token: bool = False


@dataclass(frozen=True)
class Send:
    """Send ``pcm`` on ``session``; ``start``/``t_ns`` identify a frame (None: a replay)."""

    session: int
    pcm: bytes
    start: int
    t_ns: int | None = None


@dataclass(frozen=True)
class Ping:
    session: int


@dataclass(frozen=True)
class Close:
    """Close ``session`` politely (the work is done, or the consumer is gone)."""

    session: int
    code: int = 1000
    reason: str = ""


@dataclass(frozen=True)
class Abandon:
    """Cut ``session`` at once: it is dead, or superseded."""

    session: int


@dataclass(frozen=True)
class Deliver:
    result: TranscriptResult


@dataclass(frozen=True)
class Outcome:
    """How the stream ended: ``error`` None is success; ``aborted`` is the user's choice."""

    error: NsAudioError | None = None
    aborted: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None and not self.aborted


@dataclass(frozen=True)
class Finish:
    outcome: Outcome


Action = Open | Send | Ping | Close | Abandon | Deliver | Finish


class _Retry:
    """One run of failures with no progress between them: budget, backoff, fresh token."""

    def __init__(self, deadline: float, budget: float, startup: bool = False) -> None:
        self.deadline = deadline
        self.budget = budget
        self.startup = startup
        self.attempt = 0
        self.fresh_token_tried = False


CONNECTING, STREAMING, DRAINING, CLOSING, DONE = (
    "connecting", "streaming", "draining", "closing", "done",
)  # fmt: skip


class SessionMachine:
    """One stream's sessions, replay, liveness and drain; see the module docstring."""

    def __init__(
        self,
        rate: int,
        *,
        replay_seconds: float = 300.0,
        trailing_silence: float = 1.2,
        drain_timeout: float = 30.0,
        idle_timeout: float = 5.0,
        settle: float = 0.5,
        ping_interval: float = 2.5,
        ping_timeout: float = 7.0,
        reconnect_timeout: float = 60.0,
        startup_timeout: float = 10.0,
        backoff: tuple[float, float] = (0.2, 5.0),
        keep_finals: int = 1000,
        window: float = 2.0,
        live: bool = False,
        rng: Callable[[], float] = random.random,
    ) -> None:
        for name, value in (
            ("rate", rate), ("replay_seconds", replay_seconds), ("drain_timeout", drain_timeout),
            ("idle_timeout", idle_timeout), ("window", window),
        ):  # fmt: skip
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, not {value!r}")
        for name, value in (
            ("trailing_silence", trailing_silence), ("settle", settle),
            ("ping_interval", ping_interval), ("ping_timeout", ping_timeout),
            ("reconnect_timeout", reconnect_timeout), ("startup_timeout", startup_timeout),
        ):  # fmt: skip
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be 0 or more, not {value!r}")
        if not (0 < backoff[0] <= backoff[1]):
            raise ValueError(f"backoff must be (base, cap) with 0 < base <= cap, not {backoff!r}")
        self.rate = rate
        self.trailing_silence = trailing_silence
        self.drain_timeout = drain_timeout
        self.idle_timeout = idle_timeout
        self.settle = settle
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.reconnect_timeout = reconnect_timeout
        self.startup_timeout = startup_timeout
        self.backoff = backoff
        self.rng = rng
        self.window = 2 * max(1, round(window * rate))  # bytes of int16 audio
        self.live = live
        self.phase = CONNECTING
        self.session = 0  # the session wanted or open now; reports from others are stale
        self.connected = False
        self.ever_connected = False
        self.outcome: Outcome | None = None
        self.transcript = Transcript(keep=keep_finals)
        self.replay = ReplayBuffer(round(replay_seconds * rate))
        self.timeline = Timeline(0)
        self.final_pos = 0  # stream sample the last full result ends at
        self.next_pos = 0  # stream sample after the last frame sent (or kept to send)
        self.last_speech_end: int | None = None
        self.lost: list[tuple[int, int]] = []  # stream sample ranges that can never be sent
        self._lost_to = 0  # the end of the last of them
        self._retry: _Retry | None = None
        self._session_started = 0.0
        self._got_result = False
        self._last_ping = 0.0
        self._ping_sent: float | None = None
        self._sent_bytes = 0  # on the current session
        self._ping_bytes = 0  # sent before the ping that is out
        self._acked_bytes = 0  # read by the service, as a pong proved
        self._resend: collections.deque[tuple[int, bytes]] = collections.deque()
        self._drain_started = 0.0
        self._drain_deadline = math.inf
        self._pong_since_drain = False
        self._last_msg = 0.0
        self.counters = {
            "frames_sent": 0, "samples_sent": 0, "reconnects": 0, "malformed": 0,
            "replayed_samples": 0, "drain_timeouts": 0,
        }  # fmt: skip

    # -- what the shell asks --------------------------------------------------------------

    @property
    def wants_frames(self) -> bool:
        """True while a frame handed in now would go straight out (the window has room)."""
        return (
            self.connected
            and self.phase == STREAMING
            and not self._resend
            and (self.live or self._window_open)
        )

    @property
    def _unacked(self) -> int:
        return self._sent_bytes - self._acked_bytes

    @property
    def _window_open(self) -> bool:
        """Room to send before a pong confirms more (no pings: no window)."""
        return self.ping_interval <= 0 or self._unacked < self.window

    @property
    def done(self) -> bool:
        return self.phase == DONE

    def trailing_silence_frames(self, t_ns: int, step_ms: float = 100) -> list[Frame]:
        """The silence that lets the service's VAD close the last segment, as frames."""
        out, pos = [], self.next_pos
        remaining = round(self.trailing_silence * self.rate)
        step = max(1, round(self.rate * step_ms / 1000))
        while remaining > 0:
            n = min(step, remaining)
            out.append(Frame(bytes(2 * n), pos, self.rate, t_ns, speech=False))
            pos += n
            remaining -= n
        return out

    # -- events ---------------------------------------------------------------------------

    def start(self, now: float) -> list[Action]:
        self._retry = _Retry(now + self.startup_timeout, self.startup_timeout, startup=True)
        self.session = 1
        return [Open(1)]

    def opened(self, session: int, now: float) -> list[Action]:
        if session != self.session or self.phase in (DONE, CLOSING):
            return [Abandon(session)]
        self.connected = True
        if not self.ever_connected:
            self.ever_connected = True
            self._retry = None  # the start-up budget is spent on the first session only
        self._session_started = now
        self._got_result = False
        self._last_ping, self._ping_sent = now, None
        self._sent_bytes = self._ping_bytes = self._acked_bytes = 0
        self._last_msg = now
        start, pieces = self.replay.unfinalised(self.final_pos, self.next_pos)
        lost_from = max(self.final_pos, self._lost_to)
        if lost_from < self.replay.dropped_to:  # the replay buffer outgrew its limit
            self._note_lost(lost_from, self.replay.dropped_to)
        self.timeline = Timeline(start)
        self.transcript.partial = None  # the new session says it again
        self._resend = collections.deque(pieces)
        actions = self._pump(now)
        if pieces:
            log.info(
                "session %d: re-sent %.2f s of unfinalised audio",
                session, sum(len(pcm) for _, pcm in pieces) / 2 / self.rate,
            )  # fmt: skip
        if self.phase == CONNECTING:
            self.phase = STREAMING
        elif self.phase == DRAINING:
            actions += self._start_drain(now)  # a fresh budget for the re-sent audio
        return actions

    def open_failed(self, session: int, error: ServiceError, now: float) -> list[Action]:
        if session != self.session or self.phase == DONE:
            return []
        return self._failed(error, now)

    def frame(self, frame: Frame, now: float) -> list[Action]:
        """A frame to send (kept for replay even while no session is open)."""
        if self.phase not in (CONNECTING, STREAMING):
            return []
        if frame.start < self.next_pos:
            raise ValueError(f"frame at {frame.start} goes back before {self.next_pos}")
        self.replay.add(frame)
        self.next_pos = frame.end
        if frame.speech:
            self.last_speech_end = frame.end
        self.counters["frames_sent"] += 1
        self.counters["samples_sent"] += frame.frames
        if not self.connected:
            return []  # the next session's replay sends it
        if self._resend:  # it goes after the audio being re-sent
            self._resend.append((frame.start, frame.pcm))
            return self._pump(now)
        self.timeline.sending(frame.start, frame.frames)
        self._sent_bytes += len(frame.pcm)
        return [Send(self.session, frame.pcm, frame.start, frame.t_ns), *self._maybe_ping(now)]

    def message(self, session: int, message: str | bytes, now: float) -> list[Action]:
        if session != self.session or not self.connected or self.phase == DONE:
            return []
        self._last_msg = now
        try:
            result = self._absolute(parse_result(message))
        except ProtocolError as err:
            self.counters["malformed"] += 1
            log.warning("skipped a malformed result: %s", err)
            return []
        self._got_result = True
        if not self.transcript.add(result):
            return []  # a straggling partial of a segment already final
        if result.full:
            end = min(round(result.end_time * self.rate), self.next_pos)
            if end > self.final_pos:
                self.final_pos = end
                self._retry = None  # progress: the service works again
                self.replay.finalised(end)
        actions: list[Action] = [Deliver(result)]
        if self.phase == DRAINING:
            actions += self._check_drain(now)
        return actions

    def pong(self, session: int, now: float) -> list[Action]:
        if session != self.session or not self.connected:
            return []
        self._ping_sent = None
        self._acked_bytes = self._ping_bytes
        actions = self._pump(now)
        if self.phase == DRAINING:
            self._pong_since_drain = True
            actions += self._check_drain(now)
        return actions

    def closed(
        self, session: int, code: int | None, reason: str, now: float, *, local: bool = False
    ) -> list[Action]:
        """Session ``session`` ended (``code`` None: the connection broke)."""
        if session != self.session or self.phase == DONE:
            return []
        self.connected = False
        if self.phase == CLOSING:
            return self._finish(Outcome())
        early = not self._got_result and now - self._session_started < EARLY_CLOSE_S
        error = classify_close(Closed(code, reason, local), early=early) or ServiceError(
            "the service ended the session before the end of the stream"
        )
        return self._failed(error, now, healthy=now - self._session_started >= HEALTHY_S)

    def tick(self, now: float) -> list[Action]:
        if self.phase == DONE or not self.connected:
            return []
        if (
            self._ping_sent is not None
            and now - max(self._ping_sent, self._last_msg) > self.ping_timeout
        ):
            error = ServiceError(
                f"no pong for {now - self._ping_sent:.0f} s: the connection is dead"
            )
            self.connected = False
            return self._failed(error, now, healthy=now - self._session_started >= HEALTHY_S)
        actions = self._maybe_ping(now)
        if self.phase == DRAINING:
            actions += self._check_drain(now)
        return actions

    def end_of_input(self, now: float) -> list[Action]:
        """Every frame, trailing silence included, has been handed in: drain."""
        if self.phase not in (CONNECTING, STREAMING):
            return []
        self.phase = DRAINING
        return self._start_drain(now) if self.connected else []

    def hurry(self, now: float) -> list[Action]:
        """The user stopped the stream: wait less for a silent service at the end.

        A service that answered a ping and said nothing for ``HURRY_IDLE_S`` has nothing
        more to say about the last audio; the full ``idle_timeout`` is for streams that end
        on their own.
        """
        self.idle_timeout = min(self.idle_timeout, HURRY_IDLE_S)
        return self._check_drain(now) if self.phase == DRAINING else []

    def abort(self, now: float) -> list[Action]:
        """Stop everything at once: no reconnect, no result after this."""
        if self.phase == DONE:
            return []
        actions: list[Action] = [Abandon(self.session)] if self.session else []
        self.connected = False
        return actions + self._finish(Outcome(aborted=True))

    def stop(self, error: NsAudioError, now: float) -> list[Action]:
        """End now with ``error`` (the consumer failed): close politely, no reconnect."""
        if self.phase == DONE:
            return []
        actions: list[Action] = [Close(self.session)] if self.connected else []
        self.connected = False
        return actions + self._finish(Outcome(error))

    # -- decisions ------------------------------------------------------------------------

    def _absolute(self, result: TranscriptResult) -> TranscriptResult:
        """Session times as stream times; a time past what was sent is hostile."""
        sent = self.timeline.sent / self.rate
        if result.end_time > sent + TIME_SLACK_S:
            raise ProtocolError(
                f"result ends at {result.end_time:g} s, after the {sent:.1f} s of audio sent"
            )
        return dataclasses.replace(
            result,
            start_time=self.timeline.to_stream(result.start_time, self.rate, end=False),
            end_time=self.timeline.to_stream(result.end_time, self.rate, end=True),
        )

    def _ping(self, now: float) -> Ping:
        self._ping_sent = self._last_ping = now
        self._ping_bytes = self._sent_bytes
        return Ping(self.session)

    def _maybe_ping(self, now: float) -> list[Action]:
        """A ping when one is due, or when half the window awaits confirmation."""
        if self.ping_interval <= 0 or self._ping_sent is not None or not self.connected:
            return []
        due = now - self._last_ping >= self.ping_interval
        if due or self._unacked >= self.window // 2:
            return [self._ping(now)]
        return []

    def _pump(self, now: float) -> list[Action]:
        """Re-send unfinalised audio as far as the window allows."""
        actions: list[Action] = []
        while self._resend and self._window_open:
            pos, pcm = self._resend.popleft()
            self.timeline.sending(pos, len(pcm) // 2)
            self._sent_bytes += len(pcm)
            self.counters["replayed_samples"] += len(pcm) // 2
            actions.append(Send(self.session, pcm, pos))
        return actions + self._maybe_ping(now)

    def _failed(self, error: ServiceError, now: float, *, healthy: bool = False) -> list[Action]:
        """The current session is gone or could not be opened: retry, or give up."""
        actions: list[Action] = [Abandon(self.session)]
        self.connected = False
        if healthy and not (self._retry and self._retry.startup):
            self._retry = None
        retry = self._retry
        if retry is None:
            retry = self._retry = _Retry(now + self.reconnect_timeout, self.reconnect_timeout)
        fresh = False
        if isinstance(error, AuthenticationError) or not error.retryable:
            if error.status == 1008 and not retry.fresh_token_tried:
                retry.fresh_token_tried = True
                fresh = True
                log.info("%s; trying once more with a fresh token", error)
            else:
                return actions + self._finish(Outcome(self._with_missing(error)))
        base, cap = self.backoff
        delay = 0.0 if retry.attempt == 0 else min(cap, base * 2 ** (retry.attempt - 1))
        delay *= 0.5 + 0.5 * self.rng()
        if now + delay > retry.deadline:
            if not retry.startup:
                error = ServiceError(
                    f"gave up reconnecting after {retry.budget:g} s: {error}", retryable=False
                )
            return actions + self._finish(Outcome(self._with_missing(error)))
        retry.attempt += 1
        if fresh:
            pass
        elif self.ever_connected:
            log.warning("%s; reconnecting", error)
        else:
            # Before the first session nothing is at stake yet: the last failure, if the
            # start-up budget runs out, is the one line the user needs.
            log.info("%s; retrying", error)
        if self.ever_connected:
            self.counters["reconnects"] += 1
        self.session += 1
        return [*actions, Open(self.session, delay, fresh)]

    def _start_drain(self, now: float) -> list[Action]:
        self._drain_started = now
        self._drain_deadline = now + self.drain_timeout
        self._pong_since_drain = False
        actions: list[Action] = []
        if self.ping_interval > 0 and self._ping_sent is None:
            actions.append(self._ping(now))  # is it alive and has it read everything?
        return actions + self._check_drain(now)

    def _check_drain(self, now: float) -> list[Action]:
        if not self.connected:
            return []  # a reconnect is under way; it starts the drain again
        slack = self.rate  # a service's segment may end up to a second before our gate's
        covered = self.last_speech_end is None or self.final_pos >= self.last_speech_end - slack
        pending = self.transcript.partial is not None
        idle = now - max(self._last_msg, self._drain_started)
        alive = self.ping_interval <= 0 or self._pong_since_drain
        if not pending and covered and idle >= self.settle:
            return self._close()
        if not pending and alive and idle >= self.idle_timeout:
            if not covered:
                # It read everything (a pong since) and had nothing more to say: what our gate
                # took for speech, the service did not.
                log.info(
                    "no final result for the last %.1f s the local gate heard as speech",
                    ((self.last_speech_end or 0) - self.final_pos) / self.rate,
                )
            return self._close()
        if now >= self._drain_deadline:
            self.counters["drain_timeouts"] += 1
            error = ServiceError(
                f"gave up waiting for the last result after {self.drain_timeout:g} s",
                retryable=False,
            )
            return [Close(self.session), *self._finish(Outcome(self._with_missing(error)))]
        return []

    def _close(self) -> list[Action]:
        if self.lost:
            error = ServiceError("audio went untranscribed", retryable=False)
            return [Close(self.session), *self._finish(Outcome(self._with_missing(error)))]
        self.phase = CLOSING
        return [Close(self.session)]

    def _note_lost(self, start: int, end: int) -> None:
        self.lost.append((start, end))
        self._lost_to = end
        log.warning(
            "%.2f s of unfinalised audio outgrew the replay buffer and cannot be sent again",
            (end - start) / self.rate,
        )

    def missing(self) -> list[tuple[float, float]]:
        """Stream seconds sent (or meant to be) that no full result covers."""
        spans = list(self.lost)
        if self.next_pos > self.final_pos and (
            self.last_speech_end is None or self.last_speech_end > self.final_pos
        ):
            spans.append((self.final_pos, self.next_pos))
        return [(a / self.rate, b / self.rate) for a, b in spans]

    def _with_missing(self, error: NsAudioError) -> NsAudioError:
        spans = self.missing()
        if not spans:
            return error
        said = ", ".join(f"{a:.1f}-{b:.1f} s" for a, b in spans)
        out = type(error)(f"{error}; untranscribed: {said} of the stream")
        for key in ("retryable", "status"):
            if hasattr(error, key):
                setattr(out, key, getattr(error, key))
        return out

    def _finish(self, outcome: Outcome) -> list[Action]:
        self.phase = DONE
        self.connected = False
        self.outcome = outcome
        return [Finish(outcome)]
