"""The session engine's decisions, as a pure state machine: no sockets, threads or sleeps.

Events go in as method calls, each with ``now`` (monotonic seconds) and, for anything a
connection reports, the number of the session it concerns (reports from a session already
given up are ignored); actions come out as lists of the small dataclasses below, for the I/O
shell (:mod:`.neuralspace`) to carry out. Everything that decides lives here or in the pure
pieces it holds, so every phase can be tested on a fake clock:

- **Coverage** (:mod:`.coverage`): the speech the local detector heard, and which of it full
  results covered, each result clamped to the audio its session was actually sent.
- **Replay and timeline** (:mod:`.replay`): the audio from just before the oldest uncovered
  speech (or pending partial) is kept; a new session hears it again, and its times are
  mapped back to the stream. Silence nobody waits for is let go, so it is never re-sent and
  never counted as lost.
- **Retry** (``_Retry``): a failure opens a new session at once, then with capped, jittered
  exponential backoff, within ``reconnect_timeout``; a full result that moves the coverage,
  or a session up ``HEALTHY_S`` while streaming, earns a fresh budget. The first session
  gets ``startup_timeout``. A rejected API key is final; a token refused by the WebSocket
  (HTTP 401/403, or close 1008 right after connecting) gets one fresh token.
- **Liveness and flow** (:mod:`.liveness`): pings, the pong deadline, the window of
  unconfirmed audio.
- **The end** (:mod:`.drain`): trailing silence, more silence while speech is uncovered,
  one deadline for the whole end. ``Finish`` carries an :class:`Outcome`: ok only when every
  span of speech was covered and none was lost; otherwise an error naming exactly the
  seconds of speech that went untranscribed.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass

from ..blocks import Frame
from ..errors import (
    AuthenticationError,
    NsAudioError,
    ProtocolError,
    ServiceError,
    UntranscribedError,
)
from ..neuralspace.connection import Closed, classify_close
from ..neuralspace.protocol import Transcript, TranscriptResult, parse_result
from .config import SessionConfig
from .coverage import Coverage
from .drain import Drain, Step
from .liveness import Liveness
from .replay import ReplayBuffer, Timeline

__all__ = [
    "Abandon",
    "Action",
    "Close",
    "Deliver",
    "Finish",
    "Open",
    "Outcome",
    "Phase",
    "Ping",
    "Send",
    "SessionCounters",
    "SessionMachine",
]

log = logging.getLogger("nsaudio.neuralspace")

#: A close this soon after connecting, before any result, is the service refusing the session.
EARLY_CLOSE_S = 3.0
#: A session up this long while streaming ends a run of failures: the next one starts afresh.
HEALTHY_S = 10.0
#: A result may end this far past the audio its session was sent (services round up);
#: further is hostile and skipped. Coverage is clamped to the audio sent either way.
TIME_SLACK_S = 5.0
#: Audio kept before the oldest uncovered speech, for a new session to hear it begin.
REPLAY_CONTEXT_S = 0.5
#: A re-sent segment's words come back at their first times within this (see ``_echoes``).
ECHO_SLACK_S = 0.5
#: Trailing and extra silence go out in pieces of this many milliseconds.
SILENCE_PIECE_MS = 100


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
    """Ping ``session``; its pong proves the service read the first ``mark`` bytes."""

    session: int
    mark: int = 0


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
    """How the stream ended.

    ``error`` None and neither ``aborted`` nor ``stopped``: every span of speech was covered.
    ``aborted``: the user cut it off (no result after that). ``stopped``: the user stopped it
    and the end's budget ran out first; ``missing`` then names the speech not covered.
    """

    error: NsAudioError | None = None
    aborted: bool = False
    stopped: bool = False
    missing: tuple[tuple[float, float], ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None and not self.aborted and not self.stopped


@dataclass(frozen=True)
class Finish:
    outcome: Outcome


Action = Open | Send | Ping | Close | Abandon | Deliver | Finish


@dataclass
class SessionCounters:
    """What a stream did, counted as it goes (read by status lines and reports; written
    only by the machine). Samples are at the stream's rate."""

    frames_sent: int = 0
    samples_sent: int = 0  # real frames and the silence made here
    silence_samples: int = 0  # trailing and extra silence made here
    replayed_samples: int = 0  # sent again to a new session
    reconnects: int = 0
    malformed: int = 0  # results skipped
    drain_timeouts: int = 0  # ends that gave up with speech uncovered


class Phase(enum.Enum):
    CONNECTING = "connecting"  # no session has opened yet
    STREAMING = "streaming"
    DRAINING = "draining"  # every frame is in; waiting for the last results
    CLOSING = "closing"  # closed politely; waiting for the close to complete
    DONE = "done"


class _Retry:
    """One run of failures with no progress between them: budget, backoff, fresh token."""

    def __init__(self, deadline: float, budget: float, startup: bool = False) -> None:
        self.deadline = deadline
        self.budget = budget
        self.startup = startup
        self.attempt = 0
        self.fresh_token_tried = False


class SessionMachine:
    """One stream's sessions, replay, liveness and end; see the module docstring.

    ``max_chunk_size`` is the stream's (the default amount of extra silence at the end).
    """

    def __init__(
        self,
        rate: int,
        config: SessionConfig | None = None,
        *,
        max_chunk_size: float = 5.0,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if not (isinstance(rate, int) and rate > 0):
            raise ValueError(f"rate must be a positive whole number of Hz, not {rate!r}")
        c = self.config = config or SessionConfig()
        self.rate = rate
        self.rng = rng
        self.extra_silence = c.extra_silence if c.extra_silence is not None else max_chunk_size
        self.phase = Phase.CONNECTING
        self.session = 0  # the session wanted or open now; reports from others are stale
        self.connected = False
        self.ever_connected = False
        self.outcome: Outcome | None = None
        self.transcript = Transcript(keep=c.keep_finals)
        self.coverage = Coverage(round(c.speech_tolerance * rate))
        self.replay = ReplayBuffer(round(c.replay_seconds * rate))
        self.timeline = Timeline(0)
        self.liveness = Liveness(
            c.ping_interval, c.ping_timeout, 2 * max(1, round(c.window * rate))
        )
        self.drain: Drain | None = None
        self.next_pos = 0  # stream sample after the last frame handed in (or made here)
        self._lost_to = 0  # the replay's losses are counted up to here
        self._retry: _Retry | None = None
        self._session_started = 0.0
        self._got_result = False
        self._queue: collections.deque[tuple[int, bytes]] = collections.deque()  # to send
        self._replay_end = 0  # what the open session re-sends ends here
        self._claim = 0  # session sample the open session's full results claim to cover to
        self._confirmed = 0  # how much of that claim was confirmed read (and covered)
        self._last_full: TranscriptResult | None = None  # the last full result delivered
        self._unproven: TranscriptResult | None = None  # see _echoes
        self._stop_by: float | None = None  # the user stopped: the end comes by then
        self.counters = SessionCounters()

    # -- what the shell asks --------------------------------------------------------------

    @property
    def final_pos(self) -> int:
        """The stream sample full results cover up to."""
        return self.coverage.final

    @property
    def wants_frames(self) -> bool:
        """True while a frame handed in now would go straight out (the window has room)."""
        return (
            self.connected
            and self.phase is Phase.STREAMING
            and not self._queue
            and (self.config.live or self.liveness.window_open)
        )

    @property
    def done(self) -> bool:
        return self.phase is Phase.DONE

    def missing(self) -> list[tuple[float, float]]:
        """Stream seconds of speech no full result covered (lost or still uncovered)."""
        return [(a / self.rate, b / self.rate) for a, b in self.coverage.missing()]

    # -- events ---------------------------------------------------------------------------

    def start(self, now: float) -> list[Action]:
        c = self.config
        self._retry = _Retry(now + c.startup_timeout, c.startup_timeout, startup=True)
        self.session = 1
        return [Open(1)]

    def opened(self, session: int, now: float) -> list[Action]:
        if session != self.session or self.phase in (Phase.DONE, Phase.CLOSING):
            return [Abandon(session)]
        self.connected = True
        if not self.ever_connected:
            self.ever_connected = True
            self._retry = None  # the start-up budget is spent on the first session only
        self._session_started = now
        self._got_result = False
        self._claim = self._confirmed = 0
        self.liveness.reset(now)
        self._release()
        lost_from = max(self.final_pos, self._lost_to)
        if lost_from < self.replay.dropped_to:  # unfinalised audio outgrew the replay buffer
            self._note_lost(lost_from, self.replay.dropped_to)
        start, pieces = self.replay.unfinalised(self.final_pos, self.next_pos)
        self.timeline = Timeline(start)
        self.transcript.partial = None  # the new session says it again
        self._queue = collections.deque(pieces)
        self._replay_end = self.next_pos
        if pieces:
            log.info(
                "session %d: re-sending %.2f s of unfinalised audio",
                session, sum(len(pcm) for _, pcm in pieces) / 2 / self.rate,
            )  # fmt: skip
        if self.phase is Phase.CONNECTING:
            self.phase = Phase.STREAMING
        return self._pump(now) + self._check_end(now)

    def open_failed(self, session: int, error: ServiceError, now: float) -> list[Action]:
        if session != self.session or self.phase is Phase.DONE:
            return []
        return self._failed(error, now)

    def frame(self, frame: Frame, now: float) -> list[Action]:
        """A frame to send (kept for replay even while no session is open)."""
        if self.phase not in (Phase.CONNECTING, Phase.STREAMING):
            return []
        return self._add(frame, now, bypass_window=self.config.live)

    def message(self, session: int, message: str | bytes, now: float) -> list[Action]:
        if session != self.session or not self.connected or self.phase is Phase.DONE:
            return []
        self.liveness.message(now)
        try:
            said = parse_result(message)
            result = self._absolute(said)
        except ProtocolError as err:
            self.counters.malformed += 1
            log.warning("skipped a malformed result: %s", err)
            return []
        self._got_result = True
        if result.full:
            self._claim = max(self._claim, self._claimed(said))
            self._confirm()
            self.timeline.forget_before(said.end_time, self.rate)
            if self._echoes(result):
                log.debug("a re-sent segment's result repeats one delivered: %r", result.text)
                if self.drain is not None:
                    self.drain.progressed(now)  # the service works: it covered that again
                return self._check_end(now)
        before = self.transcript.partial
        if not self.transcript.add(result):
            return []  # a straggling partial of a segment already final
        if result.full:
            self._last_full = result
        meaningful = result.full or (
            result.text.strip() and (before is None or before.text != result.text)
        )
        if meaningful and self.drain is not None:
            self.drain.progressed(now)
        return [Deliver(result), *self._check_end(now)]

    def pong(self, session: int, mark: int, now: float) -> list[Action]:
        """The ping sent after byte ``mark`` of ``session`` was answered (one per frame sent:
        the common case, nothing waiting on it, costs a comparison or two)."""
        if session != self.session or not self.connected:
            return []
        if self.liveness.pong(mark) and self._claim > self._confirmed:
            self._confirm()
        if not self._queue and self.drain is None:
            return []
        return self._pump(now) + self._check_end(now)

    def closed(
        self, session: int, code: int | None, reason: str, now: float, *, local: bool = False
    ) -> list[Action]:
        """Session ``session`` ended (``code`` None: the connection broke)."""
        if session != self.session or self.phase is Phase.DONE:
            return []
        self.connected = False
        if self.phase is Phase.CLOSING:
            return self._finish(Outcome())
        early = not self._got_result and now - self._session_started < EARLY_CLOSE_S
        error = classify_close(Closed(code, reason, local), early=early) or ServiceError(
            "the service ended the session before the end of the stream"
        )
        return self._failed(error, now, healthy=now - self._session_started >= HEALTHY_S)

    def tick(self, now: float) -> list[Action]:
        if self.phase is Phase.DONE:
            return []
        if self._stop_by is not None and now >= self._stop_by and self.drain is None:
            return self._give_up("stopped", now)  # stopped, and the end never came
        if not self.connected:
            return self._check_end(now)  # the deadline runs during a reconnect too
        dead = self.liveness.silent_for(now)
        if dead is not None:
            error = ServiceError(f"no pong for {dead:.0f} s: the connection is dead")
            self.connected = False
            return self._failed(error, now, healthy=now - self._session_started >= HEALTHY_S)
        return self._maybe_ping(now) + self._check_end(now)

    def end_of_input(self, now: float) -> list[Action]:
        """Every frame has been handed in: trailing silence, then the end (see :mod:`.drain`)."""
        if self.phase not in (Phase.CONNECTING, Phase.STREAMING):
            return []
        c = self.config
        actions = self._silence(round(c.trailing_silence * self.rate), now)
        self.phase = Phase.DRAINING
        self.drain = Drain(
            now, timeout=c.drain_timeout, extra=round(self.extra_silence * self.rate),
            step=round(c.silence_step * self.rate), step_s=c.silence_step,
            idle_s=c.idle_timeout, rate=self.rate,
        )  # fmt: skip
        if self._stop_by is not None:
            self.drain.hurry(now, max(0.0, self._stop_by - now))
        return actions + self._check_end(now)

    def hurry(self, now: float, within: float) -> list[Action]:
        """The user stopped the stream: end within ``within`` seconds whatever the service
        does (results until then are delivered; speech still uncovered is named, not failed)."""
        if self.phase is Phase.DONE:
            return []
        by = now + within
        self._stop_by = by if self._stop_by is None else min(self._stop_by, by)
        if self.drain is not None:
            self.drain.hurry(now, within)
        return self._check_end(now)

    def abort(self, now: float) -> list[Action]:
        """Stop everything at once: no reconnect, no result after this."""
        if self.phase is Phase.DONE:
            return []
        actions: list[Action] = [Abandon(self.session)] if self.session else []
        self.connected = False
        return actions + self._finish(Outcome(aborted=True))

    def stop(self, error: NsAudioError, now: float) -> list[Action]:
        """End now with ``error`` (the consumer failed): close politely, no reconnect."""
        if self.phase is Phase.DONE:
            return []
        actions: list[Action] = [Close(self.session)] if self.connected else []
        self.connected = False
        return actions + self._finish(Outcome(error))

    # -- decisions ------------------------------------------------------------------------

    def _add(self, frame: Frame, now: float, *, bypass_window: bool = False) -> list[Action]:
        """Keep ``frame`` (replay, coverage) and send it, or queue it behind what waits."""
        if frame.start < self.next_pos:
            raise ValueError(f"frame at {frame.start} goes back before {self.next_pos}")
        self.replay.add(frame)
        self.coverage.heard(frame)
        self.next_pos = frame.end
        self.counters.frames_sent += 1
        self.counters.samples_sent += frame.frames
        self._release()
        if not self.connected:
            return []  # the next session's replay sends it
        if self._queue or not (bypass_window or self.liveness.window_open):
            self._queue.append((frame.start, frame.pcm))
            return self._pump(now)
        # Silence made here has no capture time (t_ns 0): not a frame whose latency counts.
        return [self._send(frame.start, frame.pcm, frame.t_ns or None), *self._maybe_ping(now)]

    def _silence(self, samples: int, now: float) -> list[Action]:
        """``samples`` of silence after the last frame, in short pieces."""
        actions: list[Action] = []
        piece = max(1, round(self.rate * SILENCE_PIECE_MS / 1000))
        while samples > 0:
            n = min(piece, samples)
            frame = Frame(bytes(2 * n), self.next_pos, self.rate, 0, speech=False)
            actions += self._add(frame, now)
            self.counters.silence_samples += n
            samples -= n
        return actions

    def _send(self, start: int, pcm: bytes, t_ns: int | None = None) -> Send:
        self.timeline.sending(start, len(pcm) // 2)
        self.liveness.wrote(len(pcm))
        return Send(self.session, pcm, start, t_ns)

    def _pump(self, now: float) -> list[Action]:
        """Send what waits (a re-send, silence) as far as the window allows, each piece
        followed by its ping."""
        actions: list[Action] = []
        while self._queue and self.liveness.window_open:
            pos, pcm = self._queue.popleft()
            if pos < self._replay_end:
                self.counters.replayed_samples += len(pcm) // 2
            actions.append(self._send(pos, pcm))
            actions += self._maybe_ping(now)
        return actions + self._maybe_ping(now)

    def _maybe_ping(self, now: float) -> list[Action]:
        if not self.connected:
            return []
        if self.liveness.ping_due(now):
            return [Ping(self.session, self.liveness.pinged(now))]
        return []

    def _needed_from(self) -> int:
        """The stream sample from which a new session must hear the audio again."""
        needed = self.next_pos
        first = self.coverage.first_uncovered()
        if first is not None:
            needed = min(needed, first)
        partial = self.transcript.partial
        if partial is not None and partial.text.strip():
            needed = min(needed, round(partial.start_time * self.rate))
        return max(self.final_pos, needed - round(REPLAY_CONTEXT_S * self.rate))

    def _release(self) -> None:
        """Let go of audio no new session will need: finalised, or silence nobody awaits."""
        self.replay.finalised(self._needed_from())

    def _claimed(self, result: TranscriptResult) -> int:
        """The session sample a full result (in session times) claims to cover to, never past
        the audio its session was sent."""
        return min(round(result.end_time * self.rate), self.timeline.sent)

    def _confirm(self) -> None:
        """Cover the stream as far as the full results claim and the service has provably
        read (see :mod:`.liveness`): a result that claims audio its session had not read
        (sent, or never sent at all) cannot have heard it."""
        read = self.liveness.acked // 2 if self.liveness.pinging else self.timeline.sent
        upto = min(self._claim, read)
        if upto <= self._confirmed:
            return
        self._confirmed = upto
        if self.coverage.cover(self.timeline.stream_at(upto)):
            self._retry = None  # progress: the service works again
            self._release()

    def _absolute(self, result: TranscriptResult) -> TranscriptResult:
        """Session times as stream times; a time far past what was sent is hostile."""
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

    def _echoes(self, result: TranscriptResult) -> bool:
        """True for a full result that only repeats the words of one already delivered.

        A session that breaks after sending a full result but before its pong proved it had
        read that far leaves the claim unconfirmed (it may be an overclaim: finding 6), so the
        audio is sent again and the next session says the same words. A result of it whose
        words are the end of that delivered result, at its times, adds nothing: it counts as
        coverage (above) but is not delivered twice. Any other result is delivered, so an
        overclaim's audio still reaches the user as the service hears it the second time.
        """
        unproven = self._unproven
        if unproven is None:
            return False
        if result.start_time >= unproven.end_time:
            self._unproven = None  # past it: nothing more can repeat it
            return False
        words, said = result.text.split(), unproven.text.split()
        return (
            bool(words)
            and said[len(said) - len(words) :] == words
            and result.start_time >= unproven.start_time - ECHO_SLACK_S
            and result.end_time <= unproven.end_time + ECHO_SLACK_S
        )

    def _failed(self, error: ServiceError, now: float, *, healthy: bool = False) -> list[Action]:
        """The current session is gone or could not be opened: retry, or give up."""
        actions: list[Action] = [Abandon(self.session)]
        if self._claim > self._confirmed:
            self._unproven = self._last_full  # its audio goes again: see _echoes
        self.connected = False
        self._queue.clear()
        if self._stop_by is not None:
            return actions + self._give_up("stopped", now)  # the user stopped: no reconnect
        if healthy and self.phase is Phase.STREAMING:
            self._retry = None
        retry = self._retry
        if retry is None:
            c = self.config
            retry = self._retry = _Retry(now + c.reconnect_timeout, c.reconnect_timeout)
        fresh = False
        if not error.retryable:
            if (
                isinstance(error, AuthenticationError)
                and error.credential == "token"
                and not retry.fresh_token_tried
            ):
                retry.fresh_token_tried = True
                fresh = True
                log.info("%s; trying once more with a fresh token", error)
            else:
                return actions + self._finish_with(error)
        base, cap = self.config.backoff
        delay = 0.0 if retry.attempt == 0 else min(cap, base * 2 ** (retry.attempt - 1))
        delay *= 0.5 + 0.5 * self.rng()
        deadline = retry.deadline
        if self.drain is not None:
            deadline = min(deadline, self.drain.deadline)
        if now + delay > deadline:
            if not retry.startup:
                cause = error
                error = ServiceError(
                    f"gave up reconnecting after {retry.budget:g} s: {error}",
                    retryable=False, status=error.status,
                )  # fmt: skip
                error.__cause__ = cause
            return actions + self._finish_with(error)
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
            self.counters.reconnects += 1
        self.session += 1
        return [*actions, Open(self.session, delay, fresh)]

    def _check_end(self, now: float) -> list[Action]:
        """In the drain: close, send more silence, wait, or give up (see :mod:`.drain`)."""
        drain = self.drain
        if drain is None or self.phase is not Phase.DRAINING:
            return []
        partial = self.transcript.partial
        decision = drain.decide(
            now,
            covered=self.coverage.complete,
            pending=partial is not None and bool(partial.text.strip()),
            connected=self.connected,
            read_all=self.liveness.read_all and not self._queue,
        )
        if decision.step is Step.CLOSE:
            return self._close(now)
        if decision.step is Step.SILENCE:
            log.debug(
                "the end: %.1f s more silence (uncovered speech: %s; a partial pending: %s)",
                decision.samples / self.rate, _said(self.missing()) or "none",
                partial.text.strip()[:40] if partial is not None else "no",
            )  # fmt: skip
            return self._silence(decision.samples, now)
        if decision.step is Step.GIVE_UP:
            return self._give_up(decision.reason, now)
        return self._maybe_ping(now) if self.connected else []

    def _close(self, now: float) -> list[Action]:
        if self.coverage.lost:
            missing = tuple(self.missing())
            error = UntranscribedError(
                "speech went untranscribed: it outgrew the replay buffer while the connection "
                "was away", list(missing),
            )  # fmt: skip
            return [Close(self.session), *self._finish(Outcome(error, missing=missing))]
        self.phase = Phase.CLOSING
        return [Close(self.session)]

    def _give_up(self, reason: str, now: float) -> list[Action]:
        actions: list[Action] = [Close(self.session)] if self.connected else []
        self.connected = False
        missing = tuple(self.missing())
        if reason == "stopped":
            if missing:
                log.warning("stopped before the last results: %s untranscribed", _said(missing))
            return actions + self._finish(Outcome(stopped=True, missing=missing))
        if not missing:  # the speech is covered: only a partial was never made final
            partial = self.transcript.partial
            if partial is not None and partial.text.strip():
                log.warning(
                    "%s; its last partial result (%r) was not made final, over audio the "
                    "local detector heard as silence", reason, partial.text.strip()[:60],
                )  # fmt: skip
            return actions + self._finish(Outcome())
        self.counters.drain_timeouts += 1
        error = UntranscribedError(reason, list(missing))
        return actions + self._finish(Outcome(error, missing=missing))

    def _finish_with(self, error: ServiceError) -> list[Action]:
        """End with a failure that is not the drain's. Where speech heard went untranscribed,
        or a transcript stops short of a stream that went on, the failure says which
        seconds (``error.missing``, ``error.open_end``); where nothing was transcribed at all,
        the failure is all there is to say."""
        missing = tuple(self.missing())
        open_end = None if self.drain is not None else self.next_pos / self.rate
        if open_end is not None and self.final_pos == 0:
            pass  # the stream stopped before anything was transcribed: nothing to place
        elif missing or open_end is not None:
            error.untranscribed(list(missing), open_end)
        return self._finish(Outcome(error, missing=missing))

    def _note_lost(self, start: int, end: int) -> None:
        self._lost_to = end
        lost = self.coverage.lose(start, end)
        if lost:
            log.warning(
                "%.2f s of unfinalised speech outgrew the replay buffer and cannot be sent again",
                lost / self.rate,
            )

    def _finish(self, outcome: Outcome) -> list[Action]:
        self.phase = Phase.DONE
        self.connected = False
        self.outcome = outcome
        return [Finish(outcome)]


def _said(spans: tuple[tuple[float, float], ...] | list[tuple[float, float]]) -> str:
    return ", ".join(f"{a:.1f}-{b:.1f} s" for a, b in spans)
