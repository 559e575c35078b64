"""The end of a stream: when to close, when to send more silence, when to give up.

The protocol has no end-of-stream message, so the client judges completeness itself, from
facts in stream samples (:mod:`.coverage`): every span the local detector heard as speech
must be covered by a full result. After the last frame and the trailing silence:

- **Close** (code 1000, success) once every span is covered, no non-blank partial is
  pending (the service is still saying something), and the service has read everything
  sent (a pong answered a ping sent after the last byte).
- **More silence** while speech is uncovered or a non-blank partial is pending: a
  VAD-driven service finalises a segment once it hears silence, and any service once a
  segment reaches ``max_chunk_size`` seconds. So ``extra`` samples of silence (by default
  ``max_chunk_size`` seconds) go out in steps, the first a second after the trailing
  silence, then one per ``step_s`` of wall time (a service's final comes some time after its
  VAD closes the segment, and its pongs can run ahead of its recogniser), each once the
  service has read everything before it.
- **Give up** with the speech still uncovered (exit 1, naming exactly those seconds) when the
  service, having read every step of silence, has said nothing meaningful for ``idle_s``
  (blank partials are not meaningful), or at the deadline: ``drain_timeout`` after the last
  frame, whatever happens meanwhile (reconnects included, which re-send the unfinalised
  audio but do not restart the clock). A user's stop (``hurry``) brings the deadline to
  within its budget; a deadline reached after a stop ends the stream as stopped, not failed.

Pure: the session machine asks :meth:`Drain.decide` on every event and tick.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Decision", "Drain", "Step"]


class Step(enum.Enum):
    WAIT = "wait"
    SILENCE = "silence"
    CLOSE = "close"
    GIVE_UP = "give up"


@dataclass(frozen=True)
class Decision:
    step: Step
    samples: int = 0  # of silence to send (SILENCE)
    reason: str = ""  # why (GIVE_UP)


#: The first step of extra silence waits this long after the trailing silence was read.
FIRST_STEP_S = 1.0

WAIT = Decision(Step.WAIT)
CLOSE = Decision(Step.CLOSE)


class Drain:
    """One stream's end; see the module docstring. Times are monotonic seconds."""

    def __init__(
        self,
        now: float,
        *,
        timeout: float,
        extra: int,
        step: int,
        step_s: float,
        idle_s: float,
        rate: int,
    ) -> None:
        self.started = now
        self.timeout = timeout
        self.deadline = now + timeout
        self.extra_left = extra
        self.extra_sent = 0
        self.step = max(1, step)
        self.step_s = step_s
        self.idle_s = idle_s
        self.rate = rate
        self.stopped = False  # the user asked to stop: the deadline ends it as stopped
        # The first step waits a second: the trailing silence closes a segment for most
        # services, whose final result then takes a moment (0.25-1.1 s at the median in the
        # cloud); a service answers pings as it reads, and may still be working through the
        # audio it has read. Silence sent meanwhile would be billed for nothing.
        self._last_step = now + FIRST_STEP_S - step_s
        self._progress = now  # the last sign of work: a meaningful result, a step sent

    def hurry(self, now: float, seconds: float) -> None:
        """The user stopped the stream: end within ``seconds`` whatever happens."""
        self.stopped = True
        self.deadline = min(self.deadline, now + seconds)

    def progressed(self, now: float) -> None:
        """A full result, or a partial with words, arrived."""
        self._progress = now

    def decide(
        self, now: float, *, covered: bool, pending: bool, connected: bool, read_all: bool
    ) -> Decision:
        if covered and not pending and connected and read_all:
            return CLOSE
        if now >= self.deadline:
            if self.stopped:
                return Decision(Step.GIVE_UP, reason="stopped")
            return Decision(
                Step.GIVE_UP,
                reason=f"gave up waiting for the last result after {self.timeout:g} s",
            )
        if not connected or not read_all or (covered and not pending):
            return WAIT  # a reconnect, or a pong, is on its way
        if self.extra_left > 0:
            if now - self._last_step < self.step_s:
                return WAIT
            n = min(self.step, self.extra_left)
            self.extra_left -= n
            self.extra_sent += n
            self._last_step = self._progress = now
            return Decision(Step.SILENCE, samples=n)
        if now - self._progress >= self.idle_s:
            silence = (
                f" after {self.extra_sent / self.rate:.1f} s more silence"
                if self.extra_sent
                else ""
            )
            what = "its partial result" if covered else "the last speech"
            return Decision(
                Step.GIVE_UP,
                reason=f"the service sent no final result for {what} in {self.idle_s:g} s{silence}",
            )
        return WAIT
