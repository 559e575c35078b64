"""The test audio's slot code survives the real conversion path, and the fault server's
recogniser turns it into results whose words and times say exactly which audio it got."""

from __future__ import annotations

import numpy as np
import pytest

from ..conftest import run_cli
from .server import SlotRecogniser
from .slots import CODES, decode_pcm, make_speech
from .support import check_times


@pytest.mark.parametrize("fmt, rate", [("pcm_16k", 16000), ("pcm_8k", 8000)])
def test_every_slot_decodes_after_the_pipeline(speech60, tmp_path, fmt, rate):
    out = tmp_path / "out.raw"
    proc = run_cli("convert", str(speech60.path), str(out), "--format", fmt)
    assert proc.returncode == 0, proc.stderr.decode()
    codes = decode_pcm(out.read_bytes(), rate)
    assert codes == [k % CODES if v else None for k, v in enumerate(speech60.audio.voiced)]


def test_a_session_off_the_slot_grid_does_not_decode_cleanly(speech20, tmp_path):
    out = tmp_path / "out.raw"
    assert run_cli("convert", str(speech20.path), str(out)).returncode == 0
    pcm = out.read_bytes()
    for shift in (2 * 400, 2 * 800):  # a quarter and a half slot late
        try:
            codes = decode_pcm(pcm[shift:], 16000)
        except ValueError:
            continue  # a voiced slot without a clear code: caught
        voiced = [k for k in codes if k is not None]
        assert voiced != [k for k, v in enumerate(speech20.audio.voiced) if v][: len(voiced)]


def test_recogniser_results_name_the_slots_they_cover(speech20, tmp_path):
    out = tmp_path / "out.raw"
    assert run_cli("convert", str(speech20.path), str(out)).returncode == 0
    pcm = out.read_bytes() + bytes(2 * 16000)  # and a second of trailing silence
    rec = SlotRecogniser(16000, "s")
    results = []
    for i in range(0, len(pcm), 1234):  # chunks that do not line up with slots
        results += rec.feed(pcm[i : i + 1234])
    check_times(results)
    fulls = [r for r in results if r["full"]]
    assert " ".join(r["text"] for r in fulls).split() == speech20.audio.words
    # 2.5 s voiced runs: full results after 10 slots, 10 more, then 5 at the silence
    assert [len(r["text"].split()) for r in fulls[:3]] == [10, 10, 5]
    assert [r["chunk_id"] for r in results] == list(range(1, len(results) + 1))
    assert any(not r["full"] for r in results)


def test_silence_makes_no_word():
    audio = make_speech(3, voiced_s=0.0, silent_s=1.0)
    assert not audio.words and not np.any(audio.data)
