"""Live audio lost on the real capture path is an error, never a warning and exit 0.

Two real losses: the pipeline stalls while the device keeps capturing (the capture ring
drops its oldest blocks), and ``nsaudio stream mic:`` loses its connection for longer than
its send queue holds (the sink's ring drops). PulseAudio itself never overflowed here (see
the README): a device overflow is covered by the pipeline's unit tests.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from nsaudio import AudioLostError, MicSource, NullSink, Pipeline, standard_stages
from nsaudio.blocks import Block

from ..conftest import run_cli
from ..faults.server import FaultServer, Plan
from ..faults.slots import make_speech

pytestmark = pytest.mark.device


class StalledOnce:
    """``mic``'s blocks, with the reader stalled for ``stall`` seconds after ``after`` of them."""

    live = True

    def __init__(self, mic: MicSource, after: float, stall: float) -> None:
        self.mic, self.after, self.stall = mic, after, stall
        self.rate, self.channels, self.name = mic.rate, mic.channels, mic.name

    def blocks(self) -> Iterator[Block]:
        stalled = False
        for block in self.mic.blocks():
            yield block
            if not stalled and block.start >= self.after * self.rate:
                stalled = True
                time.sleep(self.stall)  # the device goes on capturing into its ring

    def stop(self) -> None:
        self.mic.stop()

    def device_overflows(self) -> tuple[int, list[int]]:
        return self.mic.device_overflows()


def test_a_stalled_pipeline_drops_captured_audio_and_says_where(pulse):
    mic = MicSource("", duration=3.0, ring_seconds=0.5)
    source = StalledOnce(mic, after=1.0, stall=1.5)
    pipeline = Pipeline(source, standard_stages(source, "pcm_16k"), NullSink())
    with pytest.raises(AudioLostError) as lost:
        pipeline.run()
    losses = lost.value.losses
    # The ring kept its newest 0.5 s of the 1.5 s stall: about 1 s went, from about 1 s in.
    assert losses.captured_seconds == pytest.approx(mic.dropped_samples / mic.rate)
    assert 0.7 < losses.captured_seconds < 1.3, losses
    ((start, end),) = losses.captured
    assert 0.95 < start < 1.2 and end == pytest.approx(start + losses.captured_seconds)
    assert "of captured audio was dropped before it could be sent (at 1." in str(lost.value)
    assert str(lost.value).endswith(": this machine fell behind the live audio")


@pytest.mark.server
def test_stream_mic_that_lost_its_connection_too_long_exits_1_and_keeps_the_transcript(
    pulse, tmp_path
):
    # Session 0 is cut after 2 s of audio; the next handshake gets no answer for 13 s. Live
    # audio waits in the sink's 10 s ring meanwhile, so about 3 s of it is dropped.
    speech = make_speech(30, rate=16000, channels=1).write(tmp_path / "speech.wav")
    out = tmp_path / "out.jsonl"
    plans = {0: Plan(at_bytes=64000, action="cut"), 1: Plan(hang=13)}
    # The device captures from any point of a slot: a slot may straddle two codes.
    with FaultServer(plans, lenient=True) as server, pulse.playing(speech):
        proc = run_cli(
            "stream", "mic:", "--base-url", server.base_url, "--output", "jsonl",
            "-o", str(out), "--duration", "18", "--connect-timeout", "15",
            env={"NS_API_KEY": server.api_key}, timeout=120,
        )  # fmt: skip
    err = proc.stderr.decode()
    assert proc.returncode == 1, err
    assert "Traceback" not in err, err
    # One error line, the last word (the reconnect was said as it happened, as a warning).
    errors = [x for x in err.splitlines() if x.startswith("nsaudio: error: ")]
    assert len(errors) == 1 and err.splitlines()[-1] == errors[0], err
    line = errors[0]
    assert "s of captured audio was dropped before it could be sent (at " in line, line
    assert line.endswith(": the connection fell behind the live audio"), line
    seconds = float(line.split("error: ")[1].split(" s of")[0])
    assert 1.5 < seconds < 5.0, line
    results = [json.loads(x) for x in out.read_text().splitlines()]  # kept, complete lines
    assert any(r["full"] for r in results), results
