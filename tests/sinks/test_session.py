"""The session machine on a fake clock: no sockets, no sleeps.

A small fake service stands in for the real one. Every speech sample the test sends carries
its own stream position (value = position + 1; silence is 0), so the service knows exactly
which stream audio each session heard. It answers like NeuralSpace: a partial every 0.5 s
of speech, a full result once 0.3 s of silence follows speech, times in *session* seconds.
The test then checks what the machine delivers against the truth: every utterance once,
with its absolute times, whatever was cut where.
"""

from __future__ import annotations

import json
import logging
import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nsaudio.blocks import Frame
from nsaudio.cli.exits import exit_status
from nsaudio.errors import AuthenticationError, ServiceError
from nsaudio.sinks.config import SessionConfig
from nsaudio.sinks.session import (
    Abandon,
    Close,
    Deliver,
    Finish,
    Open,
    Ping,
    Send,
    SessionMachine,
)

RATE = 1000  # samples per second: small numbers, exact times
FRAME = 100  # samples per frame (100 ms)
TICK = 0.1
#: (start, end) stream samples of each utterance; silence between.
UTTERANCES = [(1000, 3000), (4500, 7200), (9000, 11000)]
TOTAL = 12000  # the speech ends 1 s before the input does


def make_frames(total: int = TOTAL, utterances=UTTERANCES) -> list[Frame]:
    pcm = np.zeros(total, dtype="<i2")
    speech = np.zeros(total, dtype=bool)
    for a, b in utterances:
        pcm[a:b] = np.arange(a, b) + 1
        speech[a:b] = True
    return [
        Frame(pcm[i : i + FRAME].tobytes(), i, RATE, 0, speech=bool(speech[i : i + FRAME].any()))
        for i in range(0, total, FRAME)
    ]


class FakeService:
    """Answers what a session hears; knows nothing of the machine's bookkeeping."""

    def __init__(self) -> None:
        self.sessions: dict[int, dict] = {}

    def open(self, session: int) -> None:
        self.sessions[session] = {"heard": 0, "run": [], "silence": 0, "chunk": 0, "said": 0}

    def hear(self, session: int, pcm: bytes) -> list[str]:
        s = self.sessions[session]
        out = []
        for value in np.frombuffer(pcm, dtype="<i2"):
            index = s["heard"]
            s["heard"] += 1
            if value > 0:
                s["run"].append((index, int(value) - 1))
                s["silence"] = 0
                if len(s["run"]) % 500 == 0:
                    out.append(self._result(s, full=False))
            elif s["run"]:
                s["silence"] += 1
                if s["silence"] >= 300:
                    out.append(self._result(s, full=True))
                    s["run"], s["chunk"] = [], s["chunk"] + 1
        return out

    def _result(self, s: dict, full: bool) -> str:
        first, last = s["run"][0], s["run"][-1]
        text = " ".join(
            f"u{k}" for k, (a, b) in enumerate(UTTERANCES) if a <= last[1] and b > first[1]
        )
        return json.dumps({
            "full": full, "stream_id": "s", "chunk_id": s["chunk"], "send_time": 0,
            "start_time": first[0] / RATE, "end_time": (last[0] + 1) / RATE, "text": text,
        })  # fmt: skip


class Harness:
    """Plays the shell: carries out actions, advances a fake clock, injects faults."""

    def __init__(self, machine: SessionMachine, service: FakeService | None = None) -> None:
        self.m = machine
        self.service = service or FakeService()
        self.now = 0.0
        self.pending: list[tuple[float, object]] = []  # (when, callable) events to come
        self.delivered = []
        self.outcome = None
        self.open_plans: dict[int, object] = {}  # session -> error to fail its opening with
        self.half_open: set[int] = set()  # sessions that neither read nor answer
        self.opens: list[Open] = []
        self.closes: list[Close] = []
        self.after_send = None  # hook: called with (session, bytes heard so far)

    def at(self, delay: float, fn) -> None:
        self.pending.append((self.now + delay, fn))

    def apply(self, actions) -> None:
        for a in actions:
            if isinstance(a, Open):
                self.opens.append(a)
                plan = self.open_plans.get(a.session)
                if plan is not None:
                    self.at(
                        a.delay + 0.01,
                        lambda a=a, p=plan: self.apply(self.m.open_failed(a.session, p, self.now)),
                    )
                else:
                    self.at(a.delay + 0.01, lambda a=a: self._opened(a.session))
            elif isinstance(a, Send):
                if a.session in self.half_open:
                    continue
                for text in self.service.hear(a.session, a.pcm):
                    self.at(
                        0.05, lambda s=a.session, t=text: self.apply(self.m.message(s, t, self.now))
                    )
                if self.after_send is not None:
                    self.after_send(a.session, self.service.sessions[a.session]["heard"])
            elif isinstance(a, Ping):
                if a.session not in self.half_open:
                    self.at(
                        0.01, lambda s=a.session, k=a.mark: self.apply(self.m.pong(s, k, self.now))
                    )
            elif isinstance(a, Close):
                self.closes.append(a)
                self.at(
                    0.01,
                    lambda s=a.session: self.apply(
                        self.m.closed(s, 1000, "", self.now, local=True)
                    ),
                )
            elif isinstance(a, Abandon):
                self.half_open.add(a.session)  # nothing more from it either way
            elif isinstance(a, Deliver):
                self.delivered.append(a.result)
            elif isinstance(a, Finish):
                assert self.outcome is None, "finished twice"
                self.outcome = a.outcome

    def cut_in_turn(self, points: list[int]) -> None:
        """Cut sessions one after another: each once it has heard the next of ``points``
        (samples, in increasing order), with a connection reset."""
        pending = sorted(points)
        fired: set[int] = set()

        def cut(session: int, heard: int) -> None:
            if pending and session not in fired and heard >= pending[0]:
                fired.add(session)
                pending.pop(0)
                self.at(0.001, lambda: self.apply(self.m.closed(session, None, "reset", self.now)))

        self.after_send = cut

    def _opened(self, session: int) -> None:
        self.service.open(session)
        self.apply(self.m.opened(session, self.now))

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        next_tick = math.floor(self.now / TICK + 1) * TICK
        while True:
            due = sorted(self.pending, key=lambda p: p[0])
            when = min(due[0][0] if due else math.inf, next_tick)
            if when > end:
                break
            self.now = max(self.now, when)
            if due and due[0][0] <= when:
                self.pending.remove(due[0])
                due[0][1]()
            else:
                self.apply(self.m.tick(self.now))
                next_tick += TICK
        self.now = end

    def run(self, frames: list[Frame], *, pace: float = 1.0, limit: float = 300.0) -> None:
        """Frames at ``pace`` x real time (0: as fast as they are taken), then the end, as the
        shell does it: the end of the input is told whether or not a session is open."""
        self.apply(self.m.start(self.now))
        queue = list(frames)
        ended = False
        t0 = self.now
        while self.outcome is None and self.now - t0 < limit:
            if not queue and not ended:
                ended = True
                self.apply(self.m.end_of_input(self.now))
                continue
            if queue and self.m.wants_frames:
                frame = queue[0]
                if pace and t0 + frame.end / RATE / pace > self.now:
                    self.advance(0.01)
                    continue
                queue.pop(0)
                self.apply(self.m.frame(frame, self.now))
                continue
            self.advance(0.01)
        assert self.outcome is not None, f"no finish after {limit} s (phase {self.m.phase})"

    @property
    def fulls(self):
        return [(r.text, r.start_time, r.end_time) for r in self.delivered if r.full]


TRUTH = [(f"u{k}", a / RATE, b / RATE) for k, (a, b) in enumerate(UTTERANCES)]


def machine(rng=lambda: 1.0, max_chunk_size=5.0, **kw) -> SessionMachine:
    return SessionMachine(RATE, SessionConfig(**kw), max_chunk_size=max_chunk_size, rng=rng)


def test_an_uncut_run_delivers_every_utterance_once_with_absolute_times():
    h = Harness(machine())
    h.run(make_frames())
    assert h.outcome.ok
    assert h.fulls == TRUTH
    assert [c.code for c in h.closes] == [1000]
    assert h.m.counters.reconnects == 0
    assert any(not r.full for r in h.delivered)


@pytest.mark.parametrize(
    "cut_at_heard",
    [500, 2000, 3100, 7000, 11500, 12300, 13000],
    ids=["before-first-result", "mid-utterance", "just-after-a-final", "late-utterance",
         "in-the-last-silence", "during-trailing-silence", "during-drain"],
)  # fmt: skip
def test_a_cut_at_every_phase_loses_nothing(cut_at_heard):
    h = Harness(machine())
    fired = []

    def cut(session, heard):
        if session == 1 and heard >= cut_at_heard and not fired:
            fired.append(h.now)
            h.at(0.001, lambda: h.apply(h.m.closed(1, None, "connection reset", h.now)))

    h.after_send = cut
    h.run(make_frames())
    assert fired
    assert h.outcome.ok, h.outcome
    assert h.fulls == TRUTH
    assert h.m.counters.reconnects == 1


def test_a_cut_during_a_replay_is_replayed_again():
    h = Harness(machine())
    cuts = []

    def cut(session, heard):
        # Session 1 dies mid-second utterance; session 2 dies while its replay goes out.
        if (session, len(cuts)) in ((1, 0), (2, 1)) and heard >= (5000 if session == 1 else 300):
            cuts.append(session)
            h.at(0.001, lambda s=session: h.apply(h.m.closed(s, 1011, "internal error", h.now)))

    h.after_send = cut
    h.run(make_frames())
    assert cuts == [1, 2]
    assert h.outcome.ok and h.fulls == TRUTH
    assert h.m.counters.reconnects == 2


def test_half_open_during_the_drain_is_noticed_and_the_tail_still_arrives():
    # Finding 2: the session stops reading and answering (TCP stays up) about 1 s before
    # the end of the speech. The machine must notice (no pong), reconnect, re-send, and wait
    # for the re-sent audio's results with a fresh budget, not close on the old ones.
    m = machine(ping_interval=2.5, ping_timeout=7.0, drain_timeout=30.0)
    h = Harness(m)

    def stall(session, heard):
        if session == 1 and heard >= 10_000:
            h.half_open.add(1)

    h.after_send = stall
    h.run(make_frames())
    assert h.outcome.ok, h.outcome
    assert h.fulls == TRUTH
    assert h.fulls[-1][2] == UTTERANCES[-1][1] / RATE  # the last one ends where speech ends
    assert m.counters.reconnects == 1
    second = next(o for o in h.opens if o.session == 2)
    assert second is not None


def test_a_half_open_connection_is_noticed_within_interval_plus_timeout():
    m = machine()  # the defaults: a half-open connection is noticed within 10 s
    h = Harness(m)
    h.apply(m.start(0.0))
    h.advance(0.1)
    assert m.connected
    h.half_open.add(1)
    t0 = h.now
    while not any(o.session == 2 for o in h.opens):
        h.advance(0.1)
        assert h.now - t0 < 20
    assert h.now - t0 <= 2.5 + 7.0 + 2 * TICK <= 10


HOSTILE = [
    '{"full": true, "text": "x", "start_time": 1e305, "end_time": 1e305}',
    '{"full": true, "text": "x", "start_time": 0, "end_time": Infinity}',
    '{"full": true, "text": "x", "start_time": NaN, "end_time": 1}',
    '{"full": true, "text": "x", "start_time": -5, "end_time": 1}',
    '{"full": true, "text": "x", "start_time": 0, "end_time": 5000}',  # far past what was sent
    '{"full": "yes", "text": "x", "start_time": 0, "end_time": 1}',
    '{"full": true, "text": 7, "start_time": 0, "end_time": 1}',
    '{"full": true, "text": "x", "start_time": "0", "end_time": 1}',
    '{"full": true, "text": "x", "start_time": 0, "end_time": 1, "chunk_id": 1.5}',
    '{"full": true, "text": "\\ud800", "start_time": 0, "end_time": 1}',
    '{"full": true, "text": "x", "start_time": 0, "end_time": 1, "k": "\\udfff"}',
    "[" * 100_000 + "]" * 100_000,
    '{"full": true, "text": "x", "start_time": 0, "end_time": 1, "deep": '
    + "[" * 100_000
    + "]" * 100_000
    + "}",
    "not json",
    b"\x00\x01binary",
    "[1, 2]",
]


def test_hostile_results_are_skipped_with_one_warning_each_and_the_session_goes_on(caplog):
    m = machine()
    h = Harness(m)
    h.apply(m.start(0.0))
    h.advance(0.1)
    for frame in make_frames()[:40]:
        h.apply(m.frame(frame, h.now))
        h.advance(0.02)  # pongs open the window: all 4 s go out
    with caplog.at_level(logging.WARNING, logger="nsaudio.neuralspace"):
        for message in HOSTILE:
            assert m.message(1, message, h.now) == []
    warnings = [r for r in caplog.records if "skipped a malformed result" in r.getMessage()]
    assert len(warnings) == len(HOSTILE)
    assert all(len(r.getMessage()) < 300 for r in warnings)
    assert m.counters.malformed == len(HOSTILE)
    assert m.connected and m.session == 1
    good = '{"full": true, "text": "fine", "start_time": 1.0, "end_time": 3.0}'
    actions = m.message(1, good, h.now)
    assert [a.result.text for a in actions if isinstance(a, Deliver)] == ["fine"]
    assert m.final_pos == 3000


def test_abort_stops_everything_at_once():
    m = machine()
    h = Harness(m)
    h.apply(m.start(0.0))
    h.advance(0.1)
    for frame in make_frames()[:30]:
        h.apply(m.frame(frame, h.now))
    actions = m.abort(h.now)
    assert isinstance(actions[0], Abandon) and isinstance(actions[-1], Finish)
    assert actions[-1].outcome.aborted and not actions[-1].outcome.ok
    # Whatever the dead session or the clock says after that: nothing.
    assert m.closed(1, None, "reset", h.now) == []
    assert m.message(1, '{"full": true, "text": "x", "start_time": 0, "end_time": 1}', h.now) == []
    assert m.tick(h.now + 100) == []
    assert m.end_of_input(h.now) == []
    assert m.abort(h.now) == []


def test_a_cut_after_abort_does_not_reconnect():
    m = machine()
    h = Harness(m)
    h.apply(m.start(0.0))
    h.advance(0.1)
    h.apply(m.abort(h.now))
    h.apply(m.closed(1, None, "reset", h.now))
    assert [o.session for o in h.opens] == [1]


def test_the_reconnect_budget_runs_out_and_says_which_seconds_are_missing():
    m = machine(reconnect_timeout=2.0, backoff=(0.1, 0.4))
    h = Harness(m)
    h.open_plans = {n: ServiceError("cannot open the WebSocket: timed out") for n in range(2, 99)}

    def cut(session, heard):
        if session == 1 and heard >= 5000:
            h.at(0.001, lambda: h.apply(h.m.closed(1, None, "reset", h.now)))

    h.after_send = cut
    h.run(make_frames())
    error = h.outcome.error
    assert error is not None and exit_status(error) == 1
    message = str(error)
    assert message.startswith("gave up reconnecting after 2 s: cannot open the WebSocket")
    # The speech after the first final, up to the cut (not the silence before it), and the
    # stream from there on, which was never sent.
    assert "untranscribed: 4.5-5.0 s, everything after 5.0 s (not sent)" in message
    assert 4 <= len(h.opens) <= 10  # backoff, not a busy loop


class PartialsOnly(FakeService):
    """Hears speech and says partials about it, but never a full result."""

    def hear(self, session: int, pcm: bytes) -> list[str]:
        return [m for m in super().hear(session, pcm) if '"full": false' in m]


def test_a_drain_timeout_with_a_pending_partial_fails_and_names_the_speech():
    m = machine(drain_timeout=3.0)
    h = Harness(m, PartialsOnly())
    h.apply(m.start(0.0))
    h.advance(0.1)
    for frame in make_frames(3000, [(1000, 3000)]):
        h.apply(m.frame(frame, h.now))
        h.advance(0.01)
    h.apply(m.end_of_input(h.now))
    h.advance(5)
    assert h.outcome is not None and h.outcome.error is not None
    assert "gave up waiting for the last result after 3 s" in str(h.outcome.error)
    assert "untranscribed: 1.0-3.0 s of the stream" in str(h.outcome.error)  # speech only
    assert m.counters.drain_timeouts == 1


def test_an_auth_refusal_is_final_and_1008_gets_one_fresh_token():
    m = machine()
    h = Harness(m)
    h.apply(m.start(0.0))
    h.advance(0.1)
    h.apply(m.closed(1, 1008, "invalid token", h.now))  # early: a refusal
    assert h.opens[-1].fresh_token and h.outcome is None
    h.advance(0.1)
    h.apply(m.closed(2, 1008, "invalid token", h.now))
    assert isinstance(h.outcome.error, AuthenticationError)
    assert len(h.opens) == 2


def test_the_first_session_is_retried_within_the_startup_budget():
    m = machine(startup_timeout=10.0)
    h = Harness(m)
    h.open_plans = {1: ServiceError("the service refused the WebSocket (HTTP 503)"),
                    2: ServiceError("cannot open the WebSocket: reset")}  # fmt: skip
    h.run(make_frames())
    assert h.outcome.ok and h.fulls == TRUTH
    assert [o.session for o in h.opens] == [1, 2, 3]
    assert m.counters.reconnects == 0


def test_the_startup_budget_ends_with_the_error_itself():
    m = machine(startup_timeout=1.0, backoff=(0.2, 0.4))
    h = Harness(m)
    h.open_plans = {n: ServiceError("cannot open the WebSocket: refused") for n in range(1, 99)}
    h.apply(m.start(0.0))
    h.advance(5)
    assert str(h.outcome.error) == "cannot open the WebSocket: refused"
    assert 2 <= len(h.opens) <= 6


@settings(max_examples=60, deadline=None)
@given(
    cuts=st.lists(st.integers(min_value=1, max_value=TOTAL + 1500), max_size=4, unique=True),
    seed=st.integers(0, 2**16),
)
def test_random_cut_points_give_the_same_transcript_as_an_uncut_run(cuts, seed):
    h = Harness(machine(rng=random.Random(seed).random))
    h.cut_in_turn(cuts)
    h.run(make_frames(), pace=0)
    assert h.outcome.ok, (cuts, h.outcome)
    assert h.fulls == TRUTH


def test_audio_the_replay_buffer_let_go_is_named_once_and_fails_the_stream():
    # 0.9 s of replay: a cut 2 s into the second utterance leaves 3.5 s unfinalised (from the
    # end of the first, at 3.0 s), of which the oldest 2.6 s can never be sent again. Two
    # reconnects name it once.
    h = Harness(machine(replay_seconds=0.9))
    cuts = []

    def cut(session, heard):
        if session <= 2 and len(cuts) < session and heard >= (6500 if session == 1 else 100):
            cuts.append(session)
            h.at(0.001, lambda s=session: h.apply(h.m.closed(s, None, "reset", h.now)))

    h.after_send = cut
    h.run(make_frames())
    assert cuts == [1, 2]
    assert not h.outcome.ok
    # Only the speech in what was let go is lost: the second utterance from 4.5 s on (the
    # silence kept before it as context, from 4.0 s, is not speech).
    assert h.m.coverage.lost == [(4500, 5600)]
    assert "untranscribed: 4.5-5.6 s" in str(h.outcome.error)


def gated(frames: list[Frame], keep) -> list[Frame]:
    """``frames`` with some silence left out, as ``--gate`` sends them: every speech frame and
    the 0.4 s after each utterance (the fake service finalises after 0.3 s of silence) are
    kept; each other silent frame is kept when ``keep(i)``."""
    tails = [(b, b + 400) for _, b in UTTERANCES]
    return [
        f for i, f in enumerate(frames)
        if f.speech or any(a <= f.start < b for a, b in tails) or keep(i)
    ]  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(
    kept=st.lists(st.booleans(), min_size=TOTAL // FRAME, max_size=TOTAL // FRAME),
    cuts=st.lists(st.integers(min_value=1, max_value=TOTAL), max_size=3, unique=True),
    seed=st.integers(0, 2**16),
)
def test_random_gaps_and_cuts_give_the_absolute_times_of_an_ungated_run(kept, cuts, seed):
    """Silence left out anywhere (the service's timeline is compressed), sessions cut
    anywhere: every utterance is delivered once, at its absolute stream times."""
    h = Harness(machine(rng=random.Random(seed).random))
    h.cut_in_turn(cuts)
    frames = gated(make_frames(), lambda i: kept[i])
    h.run(frames, pace=0)
    assert h.outcome.ok, (kept, cuts, h.outcome)
    assert h.fulls == TRUTH
    assert h.m.counters.samples_sent == sum(f.frames for f in frames) + h.m.counters.silence_samples
    assert h.m.counters.silence_samples >= round(h.m.config.trailing_silence * RATE)


def with_a_long_gap(seconds: int) -> tuple[list[Frame], list[tuple[str, float, float]]]:
    """The gated frames with the last utterance ``seconds`` later in the stream (a gap the
    gate skipped), and the truth for them."""
    shift = seconds * RATE
    frames = []
    for f in gated(make_frames(), lambda i: False):
        if f.start >= UTTERANCES[2][0] - 400:
            f = Frame(f.pcm, f.start + shift, f.rate, f.t_ns, f.speech)
        frames.append(f)
    truth = [*TRUTH[:2], (TRUTH[2][0], TRUTH[2][1] + seconds, TRUTH[2][2] + seconds)]
    return frames, truth


@pytest.mark.parametrize("dies", [False, True], ids=["alive", "half-open-in-the-gap"])
def test_a_long_gap_is_kept_alive_by_pings_and_a_connection_dying_in_it_is_replaced(dies):
    frames, truth = with_a_long_gap(20)
    h = Harness(machine())
    pings: list[float] = []
    opens: list[float] = []
    apply = h.apply

    def watching(actions):
        pings.extend(h.now for a in actions if isinstance(a, Ping))
        opens.extend(h.now for a in actions if isinstance(a, Open))
        apply(actions)

    h.apply = watching
    gap_start, gap_end = UTTERANCES[1][1] / RATE + 0.4, UTTERANCES[2][0] / RATE + 19.6
    if dies:  # 8 s into the gap, the connection goes half-open: no audio, no pong
        h.at(gap_start + 8, lambda: h.half_open.add(1))
    h.run(frames)
    assert h.outcome.ok, h.outcome
    assert h.fulls == truth
    if dies:  # noticed within interval + timeout, and replaced before the speech resumes
        assert len(opens) == 2 and gap_start + 8 < opens[1] <= gap_start + 8 + 9.5 < gap_end
    else:  # one ping every 2.5 s while nothing is sent
        assert len([t for t in pings if gap_start < t < gap_end]) >= 7
    assert h.m.counters.reconnects == int(dies)


def test_at_most_a_window_goes_out_unconfirmed_and_a_pong_opens_it_again():
    m = machine(window=1.0, ping_interval=4.0)
    h = Harness(m)
    h.apply(m.start(0.0))
    h.advance(0.1)
    h.half_open.add(1)  # it reads nothing and answers nothing from now on
    frames = make_frames()
    sent = []
    for frame in frames:
        if not m.wants_frames:
            break
        actions = m.frame(frame, h.now)
        sent += [a for a in actions if isinstance(a, Send)]
        # Every frame is followed by its ping, whose mark is every byte written before it.
        assert [type(a) for a in actions] == [Send, Ping]
        assert actions[1].mark == sum(len(a.pcm) for a in sent)
    assert sum(len(a.pcm) for a in sent) == 2 * RATE  # one window of audio, then it waits
    h.half_open.discard(1)
    h.apply(m.pong(1, RATE, h.now))  # half of it read: half a window opens
    assert m.wants_frames and m.liveness.unacked == RATE
    assert m.pong(1, RATE // 2, h.now) == [] and m.liveness.acked == RATE  # an older pong


def test_a_replay_goes_out_a_window_at_a_time():
    m = machine(window=1.0)
    h = Harness(m)
    h.apply(m.start(0.0))
    h.advance(0.1)
    for frame in make_frames()[:50]:  # 5 s, no full result yet
        h.apply(m.frame(frame, h.now))
        h.advance(0.02)
    h.apply(m.closed(1, None, "reset", h.now))
    h.half_open.add(2)  # the new session does not answer yet: only a window goes out
    h.advance(0.05)
    assert m.connected and m.session == 2
    replayed = m.counters.replayed_samples
    assert replayed == RATE and not m.wants_frames


def test_live_audio_is_never_held_back_by_the_window_but_a_replay_is():
    m = machine(window=1.0, live=True)
    h = Harness(m)
    h.apply(m.start(0.0))
    h.advance(0.1)
    h.half_open.add(1)  # a service that lags (or died): capture must not wait for it
    for frame in make_frames()[:50]:  # 5 s, five windows
        assert m.wants_frames
        h.apply(m.frame(frame, h.now))
    h.apply(m.closed(1, None, "reset", h.now))
    h.half_open.add(2)
    h.advance(0.05)
    assert m.counters.replayed_samples == RATE and not m.wants_frames


class SilentService(FakeService):
    """Reads everything and answers pings, but never says a word."""

    def hear(self, session: int, pcm: bytes) -> list[str]:
        self.sessions[session]["heard"] += len(pcm) // 2
        return []


def test_a_service_that_never_answers_fails_naming_the_speech_within_a_bounded_time():
    # Finding 2 of issue 15: a service that reads everything and answers pings but never
    # says a word must not pass for success. It hears more silence in steps (5 s, the
    # stream's max_chunk_size), then has idle_timeout to say something, then the stream fails.
    m = machine(idle_timeout=5.0)
    h = Harness(m, SilentService())
    h.apply(m.start(0.0))
    h.advance(0.1)
    for frame in make_frames(2000, [(1000, 2000)]):
        h.apply(m.frame(frame, h.now))
        h.advance(0.01)
    h.apply(m.end_of_input(h.now))
    t0 = h.now
    while h.outcome is None:
        h.advance(0.1)
    error = h.outcome.error
    assert error is not None and exit_status(error) == 1
    assert str(error) == (
        "the service sent no final result for the last speech in 5 s after 5.0 s more "
        "silence; untranscribed: 1.0-2.0 s of the stream"
    )
    assert h.outcome.missing == ((1.0, 2.0),)
    assert m.counters.silence_samples == round((1.2 + 5.0) * RATE)
    assert 10.5 <= h.now - t0 < 11.5  # steps at 1.0, 1.5, ... 5.5 s, then 5 s idle


def test_a_stopped_stream_ends_within_its_budget_and_names_what_is_missing():
    m = machine(idle_timeout=5.0)
    h = Harness(m, SilentService())
    h.apply(m.start(0.0))
    h.advance(0.1)
    for frame in make_frames(2000, [(1000, 2000)]):
        h.apply(m.frame(frame, h.now))
    t0 = h.now
    h.apply(m.hurry(h.now, 0.8))
    h.advance(0.3)
    h.apply(m.end_of_input(h.now))
    while h.outcome is None:
        h.advance(0.1)
    assert h.outcome.stopped and h.outcome.error is None and not h.outcome.ok
    assert h.outcome.missing == ((1.0, 2.0),)
    assert h.now - t0 < 0.8 + 2 * TICK


def test_a_stopped_stream_whose_input_never_ends_still_ends_by_its_budget():
    m = machine()
    h = Harness(m, SilentService())
    h.apply(m.start(0.0))
    h.advance(0.1)
    h.apply(m.hurry(h.now, 0.8))
    h.advance(1.0)
    assert h.outcome is not None and h.outcome.stopped


def _full(start: float, end: float, text: str) -> str:
    return json.dumps({"full": True, "text": text, "start_time": start, "end_time": end})


@pytest.mark.parametrize("again", ["u0 u1", "u1", "u1 u2"])
def test_a_claim_no_pong_proved_is_sent_again_and_its_repeat_delivered_once(again):
    """A full result claims 3.0 s, but the last pong proved only 2.5 s read when the session
    breaks: coverage stops at 2.5 s (the claim may be an overclaim), the audio goes again, and
    the next session's result for it is coverage. If its words are the end of the result
    already delivered, within its times, it is not delivered twice; other words are."""
    m = machine(speech_tolerance=0.2)  # 2.5 s does not cover speech ending at 3.0 s
    m.start(0.0)
    m.opened(1, 0.1)
    for frame in make_frames()[:36]:  # to 3.6 s: the first utterance (1.0-3.0 s) whole
        m.frame(frame, 0.2)
    m.pong(1, 2 * 2500, 0.3)
    first = [a for a in m.message(1, _full(1.0, 3.0, "u0 u1"), 0.4) if isinstance(a, Deliver)]
    assert [a.result.text for a in first] == ["u0 u1"]
    assert m.coverage.missing() and m.final_pos < 3000  # not proved beyond 2.5 s
    assert any(isinstance(a, Open) for a in m.closed(1, None, "reset", 0.5))
    resent = [a for a in m.opened(2, 0.6) if isinstance(a, Send)]
    at = resent[0].start  # the re-sent audio begins where the proof stopped
    assert at == 2500
    m.pong(2, 2 * sum(len(a.pcm) // 2 for a in resent), 0.7)
    again_actions = m.message(2, _full(0.0, (3000 - at) / RATE, again), 0.8)
    delivered = [a.result.text for a in again_actions if isinstance(a, Deliver)]
    assert delivered == ([] if again in ("u0 u1", "u1") else [again])
    assert not m.coverage.missing() or m.coverage.missing()[0][0] >= 3000  # covered now
