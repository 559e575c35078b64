"""End to end with pocketsphinx: flite speech in, transcripts out, through a real socket."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from .server_support import StreamClient, silence_pcm, word_error_rate

SENTENCE = "my name is john and i live in a small house near the river"
SECOND = "we will meet at the station at nine in the morning"
FRAMES = 4096  # the guide's buffer size

Speech = Callable[[str, int], np.ndarray]


def check_times(results: list[dict[str, Any]], duration: float) -> None:
    last_full_end = 0.0
    chunk_ids = [r["chunk_id"] for r in results]
    assert chunk_ids == sorted(chunk_ids)
    for r in results:
        assert 0.0 <= r["start_time"] < r["end_time"] <= duration + 1e-9
        assert r["start_time"] >= last_full_end - 1e-9
        if r["full"]:
            last_full_end = r["end_time"]


def text_of(results: list[dict[str, Any]]) -> str:
    return " ".join(r["text"] for r in results if r["full"])


def test_sentence_16k(sphinx: StreamClient, speech: Speech) -> None:
    audio = np.concatenate([speech(SENTENCE, 16000), silence_pcm(1.0)])
    results = sphinx.stream(audio.tobytes(), chunk_bytes=FRAMES * 2)
    partials = [r for r in results if not r["full"]]
    fulls = [r for r in results if r["full"]]
    assert partials, "partial results expected within a 3.6 s sentence"
    assert len(fulls) == 1 and results[-1] is fulls[0]
    wer = word_error_rate(SENTENCE, fulls[0]["text"])
    print(f"\nWER pcm_16k: {wer:.3f} ({fulls[0]['text']!r})")
    assert wer <= 0.2
    check_times(results, len(audio) / 16000)


def test_sentence_8k(sphinx: StreamClient, speech: Speech) -> None:
    audio = np.concatenate([speech(SENTENCE, 8000), silence_pcm(1.0, 8000)])
    results = sphinx.stream(audio.tobytes(), chunk_bytes=FRAMES * 2, format="pcm_8k")
    fulls = [r for r in results if r["full"]]
    assert len(fulls) == 1
    wer = word_error_rate(SENTENCE, fulls[0]["text"])
    print(f"\nWER pcm_8k: {wer:.3f} ({fulls[0]['text']!r})")
    # The bundled model is wideband: telephone-band audio is recognised much worse.
    assert wer <= 0.5
    check_times(results, len(audio) / 8000)


def test_two_sentences_two_full_results(sphinx: StreamClient, speech: Speech) -> None:
    audio = np.concatenate(
        [speech(SENTENCE, 16000), silence_pcm(1.5), speech(SECOND, 16000), silence_pcm(1.0)]
    )
    results = sphinx.stream(audio.tobytes(), chunk_bytes=FRAMES * 2, expect_full=2)
    fulls = [r for r in results if r["full"]]
    assert len(fulls) == 2
    assert fulls[0]["end_time"] <= len(speech(SENTENCE, 16000)) / 16000 + 0.3
    assert [r["chunk_id"] for r in fulls] == [0, 1]
    wer = word_error_rate(SENTENCE + " " + SECOND, text_of(results))
    print(f"\nWER two sentences: {wer:.3f} ({text_of(results)!r})")
    assert wer <= 0.2
    check_times(results, len(audio) / 16000)


def test_disable_partial(sphinx: StreamClient, speech: Speech) -> None:
    audio = np.concatenate([speech(SENTENCE, 16000), silence_pcm(1.0)])
    results = sphinx.stream(audio.tobytes(), chunk_bytes=FRAMES * 2, disable_partial="true")
    assert [r["full"] for r in results] == [True]


def test_max_chunk_size_1(sphinx: StreamClient, speech: Speech) -> None:
    sentence = speech(SENTENCE, 16000)
    assert len(sentence) / 16000 > 3.0
    audio = np.concatenate([sentence, silence_pcm(1.0)])
    results = sphinx.stream(
        audio.tobytes(), chunk_bytes=FRAMES * 2, max_chunk_size=1, expect_full=3
    )
    fulls = [r for r in results if r["full"]]
    assert len(fulls) > 1
    for r in fulls:
        assert r["end_time"] - r["start_time"] <= 1.0 + 1e-9
    check_times(results, len(audio) / 16000)


@pytest.mark.parametrize(
    "rate,chunk_frames", [(16000, 1023), (16000, 16000), (8000, 511), (8000, 4096)]
)
def test_chunk_size_does_not_change_the_transcript(
    sphinx: StreamClient, speech: Speech, rate: int, chunk_frames: int
) -> None:
    audio = np.concatenate([speech(SECOND, rate), silence_pcm(1.0, rate)]).tobytes()
    fmt = "pcm_16k" if rate == 16000 else "pcm_8k"
    options = {"disable_partial": "true", "format": fmt}
    results = sphinx.stream(audio, chunk_bytes=chunk_frames * 2 + 1, **options)  # odd sizes too
    reference = sphinx.stream(audio, chunk_bytes=len(audio), **options)
    assert [(r["start_time"], r["end_time"], r["text"]) for r in results] == [
        (r["start_time"], r["end_time"], r["text"]) for r in reference
    ]
