"""The Silero detector: frame scores, its errors, and the one interface it shares with energy."""

from __future__ import annotations

import numpy as np
import pytest

from nsaudio.detectors import (
    DETECTORS,
    EnergyDetector,
    SileroDetector,
    SileroModel,
    SpeechDetector,
    make_detector,
)
from nsaudio.detectors.silero import MODEL_PATH
from nsaudio.errors import DetectorError, InputError
from tests.conftest import ROOT, run_cli


def noise(n: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(n) * 300).astype(np.int16)


def test_both_detectors_speak_the_one_interface():
    assert DETECTORS == ("energy", "silero")
    for name in DETECTORS:
        d = make_detector(name, 0.7)
        assert isinstance(d, SpeechDetector) and d.name == name and d.threshold == 0.7
    assert type(make_detector("energy")) is EnergyDetector
    assert type(make_detector("silero")) is SileroDetector


def test_a_frame_scores_the_highest_window_that_ended_in_it_or_the_newest():
    x = noise(16000 * 2)
    windows = SileroDetector()
    job = windows.prepare(x.reshape(1, -1), 16000)
    windows.step(job)
    probs = job.probs  # one per 512 samples
    d = SileroDetector()
    # 20 ms frames: a window ends in some, not in others (they keep the newest probability).
    scores = d.scores(x[: 320 * 10].reshape(10, 320), 16000)
    ends = [(i + 1) * 320 // 512 for i in range(10)]
    want, last = [], 0.0
    for i, end in enumerate(ends):
        before = ends[i - 1] if i else 0
        last = float(probs[before:end].max()) if end > before else last
        want.append(last)
    assert scores == pytest.approx(want, abs=1e-6)
    # A 100 ms frame holds three or four windows: its score is the highest of them.
    d.reset()
    (score,) = d.scores(x[:1600].reshape(1, -1), 16000)
    assert score == pytest.approx(float(probs[:3].max()), abs=1e-6)
    assert d.windows == 3 and d.probability == score


def test_an_empty_frame_changes_nothing():
    d = SileroDetector()
    d.scores(noise(1600).reshape(1, -1), 16000)
    before = d.probability
    assert d.scores(np.zeros((1, 0), np.int16), 16000) == [before]


@pytest.mark.parametrize("threshold", [0, -1, float("nan"), float("inf")])
def test_bad_threshold_is_refused(threshold):
    with pytest.raises(InputError):
        SileroDetector(threshold)


def test_a_threshold_above_one_hears_nothing_as_the_server_allows():
    d = SileroDetector(1.5)
    assert all(s < d.threshold for s in d.scores(noise(16000).reshape(10, 1600), 16000))


def test_unknown_detector_is_refused():
    with pytest.raises(InputError, match="energy or silero"):
        make_detector("webrtc")
    with pytest.raises(InputError):
        make_detector("energy", model_path=MODEL_PATH)


def test_the_model_ships_with_its_licence():
    assert MODEL_PATH.stat().st_size == 2_327_524
    licence = (MODEL_PATH.parent / "LICENSE-silero-vad").read_text()
    assert "MIT License" in licence and "Silero Team" in licence
    assert SileroModel.shared() is SileroModel.shared()  # one session per process


def test_missing_damaged_or_foreign_model_is_one_clear_error(tmp_path):
    with pytest.raises(DetectorError, match="is missing"):
        SileroModel(tmp_path / "none.onnx")
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(MODEL_PATH.read_bytes()[:100_000])
    with pytest.raises(DetectorError, match="cannot be loaded"):
        SileroModel(cut)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(np.random.default_rng(1).bytes(5000))
    with pytest.raises(DetectorError, match="cannot be loaded"):
        SileroModel(junk)
    text = tmp_path / "text.onnx"
    text.write_text("not a model\n")
    with pytest.raises(DetectorError):
        SileroModel(text)


# -- the command line: exit 2 with one line, before any connection -----------------------

SPEECH = str(ROOT / "fixtures" / "speech_16000_mono_int16.wav")


@pytest.fixture
def no_onnxruntime(tmp_path) -> dict[str, str]:
    """An environment where ``import onnxruntime`` fails as it does when it is not installed."""
    shadow = tmp_path / "shadow" / "onnxruntime"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError(\"No module named 'onnxruntime'\")\n")
    return {"PYTHONPATH": str(tmp_path / "shadow")}


def test_stream_without_the_extra_names_it_before_connecting(no_onnxruntime):
    from tests.conftest import assert_one_line_error

    proc = run_cli("stream", SPEECH, "--gate", "--gate-vad", "silero", env=no_onnxruntime)
    line = assert_one_line_error(proc)  # one line: not even the local server's notice
    assert "pip install 'nsaudio[vad]'" in line
    proc = run_cli("serve", "--port", "0", "--vad", "silero", env=no_onnxruntime)
    assert "pip install 'nsaudio[vad]'" in assert_one_line_error(proc)


def test_stream_with_a_damaged_or_missing_model_says_so(tmp_path):
    from tests.conftest import assert_one_line_error

    cut = tmp_path / "cut.onnx"
    cut.write_bytes(MODEL_PATH.read_bytes()[:100_000])
    for model in (cut, tmp_path / "none.onnx"):
        proc = run_cli("stream", SPEECH, "--gate-vad", "silero", "--gate-vad-model", str(model))
        line = assert_one_line_error(proc)
        assert str(model) in line
    proc = run_cli("stream", SPEECH, "--gate-vad-model", str(cut))
    assert "--gate-vad silero" in assert_one_line_error(proc)
