"""The pipeline itself (``nsaudio/runner.py``): what it says about its stages."""

from __future__ import annotations

import numpy as np

from nsaudio.runner import Pipeline, standard_stages
from nsaudio.sinks import NullSink
from nsaudio.sources.synthetic import ArraySource
from nsaudio.stages import EnergyGate, Framer, Resampler


def test_the_gate_is_named_whatever_its_place_among_the_stages():
    source = ArraySource(np.zeros(16000, dtype=np.float32), 16000)
    stages = standard_stages(source, "pcm_16k")
    pipeline = Pipeline(source, stages, NullSink())
    assert isinstance(pipeline.gate, EnergyGate) and pipeline.gate is stages[-1]
    ungated = standard_stages(source, "pcm_16k", gate_threshold=None)
    assert Pipeline(source, ungated, NullSink()).gate is None
    # A stage of the caller's own after the gate does not hide it.
    gate = EnergyGate()
    mine = [Resampler(16000, 16000, 1), Framer(16000, 100), gate, _PassThrough()]
    assert Pipeline(source, mine, NullSink()).gate is gate


class _PassThrough:
    def push(self, item):
        return [item]

    def flush(self):
        return []

    def reset(self):
        pass


def test_the_gate_meters_the_run():
    t = np.arange(32000) / 16000
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    data = np.concatenate([np.zeros(16000, dtype=np.float32), tone])
    source = ArraySource(data, 16000)
    pipeline = Pipeline(source, standard_stages(source, "pcm_16k"), NullSink())
    pipeline.run()
    gate = pipeline.gate
    assert gate is not None
    assert gate.seen_samples == len(data)
    assert gate.speaking and gate.level_db > -20
