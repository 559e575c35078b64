"""What the status line says, read from a stream's counters on a fake clock: the frame being
sent (not the newest one read), and never more sent than the input holds."""

from __future__ import annotations

import numpy as np

from nsaudio.blocks import Frame
from nsaudio.cli.status import terminal_columns
from nsaudio.cli.status_fields import StreamProgress, render
from nsaudio.sinks.session import SessionCounters
from nsaudio.stages import EnergyGate

RATE = 16000
FRAME = 1600  # 100 ms


class Counters:
    """The sink's side of what the status reads: its counters, as the session machine keeps
    them (how much it handed to the service, the silence it made itself apart)."""

    def __init__(self) -> None:
        self.counters = SessionCounters()

    def sent(self, seconds: float, silence: float = 0.0) -> None:
        self.counters.samples_sent = round((seconds + silence) * RATE)
        self.counters.silence_samples = round(silence * RATE)


class NoPartials:
    last_partial = None


def fed_gate(levels, **options):
    """An energy gate that has labelled 100 ms frames of a 440 Hz tone at each amplitude
    (0: digital silence): the pipeline has read all of them, ahead of the sender."""
    gate = EnergyGate(**options)
    gate.keep_trail()  # as the status line asks when it starts
    t = np.arange(FRAME) / RATE
    for i, amp in enumerate(levels):
        pcm = (amp * 32767 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes()
        gate.push(Frame(pcm, i * FRAME, RATE, 0))
    return gate


class Lane:
    """One session of a stream, as the status line reads it: its gate and its sink."""

    def __init__(self, gate, sink, name=None) -> None:
        self.gate, self.sink, self.name = gate, sink, name


def progress(gate, sink, *, gated=False, pace=1.0, duration=None):
    return StreamProgress(
        lanes=[Lane(gate, sink)], rate=RATE, duration=duration, pace=pace, gated=gated,
        partials=False, watch=NoPartials(), now=100.0,
    )  # fmt: skip


def test_the_level_is_the_frame_being_sent_not_the_newest_read():
    # 4 s of silence then a tone, all read; 1.9 s sent: the status shows silence at 1.9 s.
    gate = fed_gate([0.0] * 40 + [0.3] * 20)
    assert gate.speaking and gate.level_db > -20  # what the newest frame says
    sink = Counters()
    fields = progress(gate, sink, duration=6.0)
    sink.sent(1.9)
    f = fields(101.9)
    assert abs(f.position - 1.9) < 1e-9 and f.sent == 1.9
    assert f.level_db < -90 and not f.speech
    sink.sent(4.5)
    f = fields(104.5)
    assert abs(f.position - 4.5) < 1e-9 and f.level_db > -20 and f.speech


def test_sent_never_passes_the_input_the_end_silence_is_counted_apart():
    gate = fed_gate([0.3] * 60)
    sink = Counters()
    fields = progress(gate, sink, duration=6.0)
    sink.sent(6.0, silence=1.2)  # the trailing silence the sink adds for the service's VAD
    f = fields(108.0)
    assert (f.position, f.sent) == (6.0, 6.0)
    assert abs(f.end_silence - 1.2) < 1e-9
    assert f.level_db == -100.0 and not f.speech  # what goes out now is that silence
    line = render(f)
    assert "sent   6.0 s + 1.2 s end silence" in line and "0:06/0:06" in line


def test_a_gated_gap_moves_on_at_the_pace_up_to_the_next_onset_and_never_back():
    levels = [0.0] * 10 + [0.3] * 5 + [0.0] * 20 + [0.3] * 5
    gate = fed_gate(levels, skip_silence=True, pre_roll_ms=300, tail_ms=0, hangover_ms=0)
    sink = Counters()
    fields = progress(gate, sink, gated=True, duration=4.0)
    assert fields(100.5).position == 0.5  # nothing passed yet: the clock, in the first gap
    sink.sent(0.8)  # the pre-roll and the first burst: it ends at 1.5 s
    f = fields(101.5)
    assert f.position == 1.5 and f.sent == 0.8 and abs(f.skipped - 0.7) < 1e-9
    f = fields(102.0)  # nothing sent: the gap, at the pace
    assert f.position == 2.0 and not f.speech and f.level_db < -90
    assert fields(110.0).position == 3.5  # but not past the next onset the gate has seen
    sink.sent(0.9)  # the first pre-roll frame of the second burst (3.2-3.3 s)
    assert fields(110.1).position == 3.5  # behind what was shown: the position stays
    sink.sent(1.6)
    f = fields(110.5)
    assert f.position == 4.0 and f.speech and abs(f.skipped - 2.4) < 1e-9


def test_unpaced_the_gap_is_crossed_at_once():
    gate = fed_gate([0.3] * 5 + [0.0] * 20, skip_silence=True, tail_ms=0, hangover_ms=0)
    sink = Counters()
    fields = progress(gate, sink, gated=True, pace=0.0)
    sink.sent(0.5)
    assert fields(100.1).position == 2.5


def test_a_pty_that_reports_no_width_falls_back_to_columns_then_80():
    assert terminal_columns(100, {"COLUMNS": "50"}) == 100
    assert terminal_columns(0, {"COLUMNS": "120"}) == 120
    assert terminal_columns(0, {}) == 80
    assert terminal_columns(0, {"COLUMNS": "wide"}) == 80
    assert terminal_columns(0, {"COLUMNS": "0"}) == 80


def test_each_channels_level_is_that_of_its_frame_being_sent():
    # Two sessions (--split-channels): the agent speaks from 1 s, the customer from 3 s;
    # both sent up to 2 s: the agent's frame is speech, the customer's silence.
    agent = fed_gate([0.0] * 10 + [0.3] * 30)
    customer = fed_gate([0.0] * 30 + [0.3] * 10)
    sinks = Counters(), Counters()
    fields = StreamProgress(
        lanes=[Lane(agent, sinks[0], "agent"), Lane(customer, sinks[1], "customer")],
        rate=RATE, duration=4.0, pace=1.0, gated=False, partials=False, watch=NoPartials(),
        now=100.0,
    )  # fmt: skip
    sinks[0].sent(2.0)
    sinks[1].sent(1.9)
    f = fields(102.0)
    assert f.position == 1.9 and f.sent == 3.9  # as far as both have sent; the total
    (a, c) = f.channels
    assert (a.name, a.speech, c.name, c.speech) == ("agent", True, "customer", False)
    assert a.level_db > -20 and c.level_db < -90
