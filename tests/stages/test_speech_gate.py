"""The gate behaves the same whichever detector decides: pre-roll, speech, tail, positions.

Each test runs with the energy detector and with Silero, on one flite sentence in -53 dBFS
brown noise (a piece of the suite's noisy recording), which both hear as speech.
"""

from __future__ import annotations

import numpy as np
import pytest

from nsaudio.blocks import Frame
from nsaudio.detectors import SileroBatcher, make_detector
from nsaudio.stages import SpeechGate, push_together

DETECTORS = ["energy", "silero"]


@pytest.fixture(scope="module")
def sentence(three_in_noise) -> np.ndarray:
    """2 s of noise, the first sentence, 3 s of noise: int16 at 16 kHz."""
    start, end = three_in_noise.segments[0]
    return three_in_noise.samples[start - 2 * 16000 : end + 3 * 16000]


def frames_of(signal: np.ndarray, size: int, rate: int = 16000) -> list[Frame]:
    return [Frame(signal[i : i + size].tobytes(), i, rate, 0) for i in range(0, len(signal), size)]


def run(gate: SpeechGate, signal: np.ndarray, size: int, rate: int = 16000) -> list[Frame]:
    out = []
    for f in frames_of(signal, size, rate):
        out += gate.push(f)
    return out + gate.flush()


def labels(name: str, signal: np.ndarray, size: int) -> list[int]:
    """Starts of the frames a label-only gate calls speech."""
    out = run(SpeechGate(make_detector(name)), signal, size)
    return [f.start for f in out if f.speech]


@pytest.mark.parametrize("name", DETECTORS)
@pytest.mark.parametrize("size", [320, 1600, 1000])
@pytest.mark.parametrize(("pre_roll_ms", "tail_ms"), [(300, 700), (0, 0), (500, 1200)])
def test_skip_silence_passes_pre_roll_speech_and_tail_with_their_positions(
    sentence, name, size, pre_roll_ms, tail_ms
):
    speech = labels(name, sentence, size)
    assert speech, "the detector heard no speech in the sentence"
    detector = make_detector(name)
    gate = SpeechGate(detector, skip_silence=True, pre_roll_ms=pre_roll_ms, tail_ms=tail_ms)
    out = run(gate, sentence, size)
    starts = [f.start for f in out]
    # One contiguous run: the pre-roll (whole frames, at least as long as asked, from where
    # the speech began: the detector's onset lag further back), the speech exactly as
    # labelled without skipping, then the tail (whole frames).
    assert starts == list(range(starts[0], starts[-1] + 1, size))
    assert detector.onset_lag_ms == {"energy": 0, "silero": 150}[name]
    pre = -(-round((pre_roll_ms + detector.onset_lag_ms) * 16) // size)  # frames: ceil
    tail = -(-round(tail_ms * 16) // size)
    assert starts[0] == speech[0] - pre * size
    assert starts[-1] == speech[-1] + tail * size
    assert [f.start for f in out if f.speech] == speech
    for f in out:  # the audio is untouched
        assert f.pcm == sentence[f.start : f.start + size].tobytes()
    assert gate.seen_samples == len(sentence)
    assert gate.passed_samples == sum(f.frames for f in out)
    assert gate.skipped_samples == len(sentence) - gate.passed_samples


@pytest.mark.parametrize("name", DETECTORS)
def test_speech_is_the_sentence_and_the_hangover_holds_it(sentence, name):
    speech = labels(name, sentence, 320)
    lead = 2 * 16000
    end = lead + (len(sentence) - lead - 3 * 16000)
    assert lead - 320 * 5 <= speech[0] <= lead + 320 * 10  # within 100 ms before, 200 ms after
    # The last speech frame: the hangover (300 ms) after the last frame that reached the
    # threshold, and never far past the sentence's end.
    assert end <= speech[-1] + 320 <= end + 16000 * 0.3 + 320 * 10


@pytest.mark.parametrize("name", DETECTORS)
def test_label_only_gate_passes_everything_and_reset_starts_over(sentence, name):
    gate = SpeechGate(make_detector(name))
    first = run(gate, sentence, 1600)
    assert [f.start for f in first] == list(range(0, len(sentence), 1600))
    assert gate.passed_samples == gate.seen_samples == len(sentence)
    gate.reset()
    assert (gate.seen_samples, gate.passed_samples, gate.speaking) == (0, 0, False)
    again = run(gate, sentence, 1600)
    assert [f.speech for f in again] == [f.speech for f in first]


@pytest.mark.parametrize("name", DETECTORS)
def test_noise_alone_passes_nothing(sentence, name):
    noise = sentence[: 2 * 16000 - 3200]
    noise = np.concatenate([noise, noise[::-1], noise])  # 5 s of the noise before the sentence
    gate = SpeechGate(make_detector(name), skip_silence=True)
    assert run(gate, noise, 320) == []
    assert gate.skipped_samples == len(noise)


def test_silero_at_8_khz_and_at_rates_the_model_does_not_take(sentence):
    """8 kHz runs the model at 8 kHz, where it hears the sentence within two 100 ms frames of
    16 kHz's; 11025 Hz is resampled to 8 kHz and 48000 Hz to 16 kHz for it (never refused),
    and each hears what the model hears at that rate, within a frame."""
    import soxr

    x = sentence.astype(np.float32) / 32768
    heard = {}
    for rate in (16000, 8000, 11025, 48000):
        y = soxr.resample(x, 16000, rate, quality="HQ")
        pcm = np.clip(np.rint(y * 32768), -32768, 32767).astype(np.int16)
        out = run(SpeechGate(make_detector("silero")), pcm, rate // 10, rate)
        got = [f.start * 16000 // rate for f in out if f.speech]  # as 16 kHz positions
        heard[rate] = (got[0], got[-1])
    for rate, like, frames in ((8000, 16000, 2), (11025, 8000, 1), (48000, 16000, 1)):
        for a, b in zip(heard[rate], heard[like], strict=True):
            assert abs(a - b) <= frames * 1600, (rate, heard)


@pytest.mark.parametrize("name", DETECTORS)
def test_pushed_together_is_pushed_one_by_one(sentence, name):
    """push_together on one thread: the same labels and frames as each gate alone."""
    batcher = SileroBatcher() if name == "silero" else None
    signals = [np.roll(sentence, 4000 * i) for i in range(3)]
    alone = [run(SpeechGate(make_detector(name), skip_silence=True), s, 1600) for s in signals]
    gates = [SpeechGate(make_detector(name, batcher=batcher), skip_silence=True) for _ in signals]
    together: list[list[Frame]] = [[] for _ in signals]
    streams = [frames_of(s, 1600) for s in signals]
    for step in range(len(streams[0])):
        outs = push_together(gates, [frames[step] for frames in streams])
        for i, out in enumerate(outs):
            together[i] += out
    for a, t in zip(alone, together, strict=True):
        assert [(f.start, f.speech) for f in t] == [(f.start, f.speech) for f in a]
    if batcher is not None:
        assert batcher.calls < batcher.windows  # the streams shared calls


def test_push_together_refuses_a_gate_twice(sentence):
    gate = SpeechGate(make_detector("energy"))
    f = frames_of(sentence, 1600)
    with pytest.raises(ValueError, match="twice"):
        push_together([gate, gate], f[:2])
