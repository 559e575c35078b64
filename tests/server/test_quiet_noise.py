"""Quiet room noise is not speech: the local server's segments end when speech ends.

The recording (tests/recordings.py): three flite sentences 7 s apart in -53 dBFS brown
noise, 26 s. With a sliding-window-minimum floor the server took the noise for speech and
returned three results of exactly 5.0 s (2.46-7.46, 12.46-17.46...), ended only by
``max_chunk_size``, cutting words at the 5 s boundaries. With the detector the energy gate
uses (``nsaudio.detectors.energy``) each result is the sentence with the server's 300 ms
pre-roll and 200 ms hangover, and every word is recognised.
"""

from __future__ import annotations

import numpy as np
import pytest

from nsaudio.server.params import SessionParams
from nsaudio.server.transcriber import Transcriber
from nsaudio.server.vad import SegmentEnd, Segmenter, SegmentStart, VadConfig

from .server_support import StreamClient

PREROLL_S, HANGOVER_S, FRAME_S = 0.3, 0.2, 0.02


def test_three_sentences_in_brown_noise_end_when_speech_ends(sphinx: StreamClient, three_in_noise):
    rec = three_in_noise
    results = sphinx.stream(rec.samples.tobytes(), chunk_bytes=3200, expect_full=3, timeout=60)
    fulls = [r for r in results if r["full"]]
    got = [(round(r["start_time"], 2), round(r["end_time"], 2), r["text"]) for r in fulls]
    print("\nfull results:", got)
    assert [text for *_, text in got] == list(rec.texts)
    for (start, end, _), (true_start, true_end) in zip(got, rec.seconds, strict=True):
        assert end - start < 4.0  # not a 5.0 s max_chunk_size piece of noise
        # The sentence, its pre-roll before and its hangover after: a few frames either way.
        assert true_start - PREROLL_S - 2 * FRAME_S <= start <= true_start - PREROLL_S + 0.1
        assert true_end - 0.1 <= end <= true_end + HANGOVER_S + 2 * FRAME_S


@pytest.mark.parametrize("threshold", [0.5, 0.8, 1.0])
def test_segments_of_the_noisy_recording_at_several_thresholds(three_in_noise, threshold):
    """The segmenter alone (no recogniser): one segment per sentence, nothing in the noise.

    From the default 0.5 (16 dB above the floor) up. Below it the bar drops under the swings
    of this noise's 20 ms levels (up to 14 dB over the floor they hold down): at 0.4 a
    couple of short spurious segments appear, at 0.3 the noise is mostly "speech".
    """
    rec = three_in_noise
    seg = Segmenter(VadConfig(threshold=threshold))
    events = seg.push(rec.samples) + seg.flush()
    starts = [e.position for e in events if isinstance(e, SegmentStart)]
    ends = [e.position for e in events if isinstance(e, SegmentEnd)]
    assert len(starts) == len(ends) == 3
    for start, end, (true_start, true_end) in zip(starts, ends, rec.segments, strict=True):
        assert true_start - 0.4 * rec.rate <= start < true_start + 0.3 * rec.rate
        assert true_end - 0.3 * rec.rate <= end <= true_end + 0.3 * rec.rate


def test_the_transcriber_takes_vad_threshold_from_the_session():
    params = SessionParams(language="en", session_id="s", vad_threshold=0.8)
    transcriber = Transcriber(params, engine=_NoEngine())
    assert transcriber._segmenter.detector.threshold == 0.8
    assert np.isclose(transcriber._segmenter.config.threshold, 0.8)


class _NoEngine:
    def reset(self) -> None: ...
    def start(self, position: int, *, live: bool = True) -> None: ...
    def process(self, samples: np.ndarray) -> None: ...
    def partial(self) -> str:
        return ""

    def finish(self) -> str:
        return ""
