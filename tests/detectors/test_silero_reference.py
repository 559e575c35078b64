"""Silero's streaming probabilities are the reference implementation's, at 8 and 16 kHz.

The reference is silero-vad's own ``OnnxWrapper`` (``silero_vad/utils_vad.py`` in the
``silero-vad`` package 6.2.3, which runs the ONNX model with torch tensors for its state and
context), installed for the tests (``scripts/test.sh``: torch 2.13.0 CPU and silero-vad
6.2.3), fed the recording window by window as its ``VADIterator`` does. nsaudio's detector
runs the same bundled model file without torch; whatever the frames (20 ms, 100 ms, cuts of
odd sizes), alone or batched with other streams, every window must get the reference's
probability.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import soxr
import torch
from silero_vad.utils_vad import OnnxWrapper

from nsaudio.detectors import SileroBatcher, SileroDetector
from nsaudio.detectors.silero import MODEL_PATH, WINDOWS
from nsaudio.stages import to_int16

RATES = [16000, 8000]


@pytest.fixture(scope="module")
def audio(three_in_noise) -> dict[int, np.ndarray]:
    """The 26 s recording (three sentences in brown noise) as int16 at each model rate."""
    x = three_in_noise.samples
    down = to_int16(soxr.resample(x.astype(np.float32) / 32768, 16000, 8000, quality="HQ"))
    return {16000: x, 8000: down}


def reference_probs(x: np.ndarray, rate: int) -> np.ndarray:
    model = OnnxWrapper(str(MODEL_PATH), force_onnx_cpu=True)
    window = WINDOWS[rate][0]
    f = torch.from_numpy(x.astype(np.float32) / 32768)
    out = [model(f[i : i + window], rate).item() for i in range(0, len(x) - window + 1, window)]
    return np.array(out, dtype=np.float32)


@pytest.fixture(scope="module")
def reference(audio) -> dict[int, np.ndarray]:
    return {rate: reference_probs(audio[rate], rate) for rate in RATES}


def cuts(n: int, sizes: list[int]) -> list[tuple[int, int]]:
    """[start, end) pieces of a length-n stream, sizes taken in turn."""
    out, pos, i = [], 0, 0
    while pos < n:
        out.append((pos, min(n, pos + sizes[i % len(sizes)])))
        pos, i = out[-1][1], i + 1
    return out


def streamed(detector: SileroDetector, x: np.ndarray, rate: int, sizes: list[int]) -> np.ndarray:
    """Every window's probability, the stream fed one frame at a time in pieces of ``sizes``."""
    probs = []
    for a, b in cuts(len(x), sizes):
        job = detector.prepare(x[a:b].reshape(1, -1), rate)
        detector.step(job)
        detector.finish(job)
        probs.append(job.probs)
    return np.concatenate(probs)


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("sizes", [[320], [1600], [17, 509, 4410, 1], [8000]], ids=str)
def test_streaming_probabilities_equal_the_reference(audio, reference, rate, sizes):
    sizes = [max(1, s * rate // 16000) for s in sizes]  # the same durations at 8 kHz
    got = streamed(SileroDetector(), audio[rate], rate, sizes)
    want = reference[rate]
    assert len(got) == len(want) == len(audio[rate]) // WINDOWS[rate][0]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    # The recording is not all noise: the reference hears the sentences, and only them.
    assert 0.1 < np.mean(want > 0.5) < 0.5


@pytest.mark.parametrize("rate", RATES)
def test_reset_starts_over_as_the_reference_does(audio, reference, rate):
    d = SileroDetector()
    streamed(d, audio[rate][: 3 * rate], rate, [320])
    d.reset()
    np.testing.assert_allclose(streamed(d, audio[rate], rate, [1600]), reference[rate], atol=1e-6)


def shifted(audio: dict[int, np.ndarray], rate: int, streams: int) -> list[np.ndarray]:
    """``streams`` different streams of 7 s: from the first sentence on, each a bit later."""
    return [audio[rate][rate * 2 + 1787 * i :][: rate * 7] for i in range(streams)]


@pytest.mark.parametrize("rate", RATES)
def test_batched_together_each_stream_gets_its_reference(audio, rate):
    """One thread, many streams: ``SileroBatcher.run`` scores their windows together; the
    frames of different streams have different sizes, so batches mix streams with 0 to 4
    windows per step."""
    streams = shifted(audio, rate, 5)
    want = [reference_probs(x, rate) for x in streams]
    batcher = SileroBatcher()
    detectors = [SileroDetector(batcher=batcher) for _ in streams]
    sizes = [[1600], [320], [2000, 17], [4410], [800, 1200]]
    pieces = [
        cuts(len(x), [max(1, s * rate // 16000) for s in z])
        for x, z in zip(streams, sizes, strict=True)
    ]
    got: list[list[np.ndarray]] = [[] for _ in streams]
    calls = 0
    for step in range(max(len(p) for p in pieces)):
        jobs = []
        for i, d in enumerate(detectors):
            if step < len(pieces[i]):
                a, b = pieces[i][step]
                jobs.append(d.prepare(streams[i][a:b].reshape(1, -1), rate))
        batcher.run(jobs)
        calls += max(job.count for job in jobs)
        for job in jobs:
            job.detector.finish(job)
            got[detectors.index(job.detector)].append(job.probs)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(np.concatenate(g), w, rtol=0, atol=1e-5)
    assert batcher.windows == sum(len(w) for w in want)
    assert batcher.calls == calls  # one call per step: the streams really went together
    assert calls < batcher.windows * 0.7  # so most calls held several streams


@pytest.mark.parametrize("rate", RATES)
def test_batched_from_threads_each_stream_gets_its_reference(audio, rate):
    """A thread per stream: ``scores`` submits to the shared batcher and waits for its batch."""
    streams = shifted(audio, rate, 4)
    want = [reference_probs(x, rate) for x in streams]
    batcher = SileroBatcher(max_wait_ms=5)
    got: list[list[float]] = [[] for _ in streams]
    errors: list[BaseException] = []

    def run(i: int) -> None:
        d = SileroDetector(batcher=batcher)
        window = WINDOWS[rate][0]
        try:
            for a, b in cuts(len(streams[i]), [window * (1 + i % 3)]):
                d.scores(streams[i][a:b].reshape(1, -1), rate)
                got[i].append(d.probability)  # one window a step: its probability
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and not any(t.is_alive() for t in threads)
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        step = 1 + i % 3  # windows a frame: the frame's score is the highest of them
        highest = [w[j : j + step].max() for j in range(0, len(w) - step + 1, step)]
        np.testing.assert_allclose(g[: len(highest)], highest, rtol=0, atol=1e-5)
    assert batcher.batches < sum(len(g) for g in got)  # some frames shared a batch
