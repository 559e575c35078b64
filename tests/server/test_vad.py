from __future__ import annotations

import numpy as np
import pytest

from nsaudio.detectors.energy import EnergyDetector, levels_dbfs
from nsaudio.server.vad import (
    SegmentAudio,
    SegmentEnd,
    Segmenter,
    SegmentEvent,
    SegmentStart,
    VadConfig,
)

from .. import gating
from .server_support import silence_pcm, tone_pcm, voice_pcm

RATE = 16000


def run(
    signal: np.ndarray,
    chunk: int | None = None,
    config: VadConfig | None = None,
    flush: bool = False,
) -> list[SegmentEvent]:
    seg = Segmenter(config)
    chunk = chunk or len(signal) or 1
    events: list[SegmentEvent] = []
    for i in range(0, len(signal), chunk):
        events += seg.push(signal[i : i + chunk])
    if flush:
        events += seg.flush()
    return events


def segments(events: list[SegmentEvent]) -> list[tuple[int, int, np.ndarray]]:
    """(start, end, audio) per closed segment, checking the audio is contiguous."""
    out = []
    start: int | None = None
    audio: list[np.ndarray] = []
    position = 0
    for event in events:
        if isinstance(event, SegmentStart):
            assert start is None
            start = position = event.position
            audio = []
        elif isinstance(event, SegmentAudio):
            assert start is not None and event.position == position
            audio.append(event.samples)
            position = event.end
        else:
            assert isinstance(event, SegmentEnd) and start is not None
            assert event.position == position
            out.append((start, event.position, np.concatenate(audio)))
            start = None
    return out


def test_levels() -> None:
    frames = np.stack(
        [np.zeros(320, np.int16), np.full(320, 32767, np.int16), tone_pcm(0.02, level=0.5)]
    )
    levels = levels_dbfs(frames)
    assert levels[0] == -100.0  # digital silence is clamped, not -inf
    assert levels[1] == pytest.approx(0.0, abs=0.01)
    assert levels[2] == pytest.approx(20 * np.log10(0.5) - 3.01, abs=0.1)


def test_digital_silence_gives_nothing() -> None:
    assert run(silence_pcm(5.0)) == []


def test_one_burst() -> None:
    signal = np.concatenate([silence_pcm(0.5), tone_pcm(1.0), silence_pcm(1.0)])
    [(start, end, audio)] = segments(run(signal))
    assert start == 8000 - 4800  # 300 ms of pre-roll before the onset
    assert end == 24000 + 3200  # 200 ms of hangover after the burst
    assert np.array_equal(audio, signal[start:end])


def test_segment_closes_after_pause_ms() -> None:
    seg = Segmenter()
    assert seg.push(np.concatenate([silence_pcm(0.5), tone_pcm(1.0)])) != []
    assert not any(isinstance(e, SegmentEnd) for e in seg.push(silence_pcm(0.58)))
    assert seg.in_speech
    assert [e for e in seg.push(silence_pcm(0.02)) if isinstance(e, SegmentEnd)]
    assert not seg.in_speech


@pytest.mark.parametrize("chunk", [1, 17, 320, 509, 4096, 44100])
def test_chunking_does_not_matter(chunk: int) -> None:
    signal = np.concatenate(
        [
            silence_pcm(0.3),
            tone_pcm(0.7),
            silence_pcm(0.3),
            tone_pcm(0.4),
            silence_pcm(1.0),
            tone_pcm(0.5, freq=200),
            silence_pcm(0.9),
        ]
    )
    expected = segments(run(signal))
    got = segments(run(signal, chunk))
    assert [(s, e) for s, e, _ in got] == [(s, e) for s, e, _ in expected]
    assert all(np.array_equal(a, b) for (_, _, a), (_, _, b) in zip(got, expected, strict=True))
    assert len(expected) == 2  # the 0.3 s gap does not split, the 1.0 s one does


def test_short_gap_is_kept_long_gap_splits() -> None:
    short = np.concatenate([tone_pcm(0.5), silence_pcm(0.5), tone_pcm(0.5), silence_pcm(1.0)])
    [(start, end, audio)] = segments(run(short))
    assert np.array_equal(audio, short[start:end])  # the inner pause is handed on, not dropped
    long = np.concatenate([tone_pcm(0.5), silence_pcm(0.7), tone_pcm(0.5), silence_pcm(1.0)])
    first, second = segments(run(long))
    assert first[1] <= second[0]  # pre-roll never reaches back into the previous segment


def test_held_back_silence_becomes_preroll() -> None:
    signal = np.concatenate([tone_pcm(0.5), silence_pcm(0.66), tone_pcm(0.5), silence_pcm(1.0)])
    first, second = segments(run(signal))
    assert first[1] == 8000 + 3200
    assert second[0] == 8000 + 10560 - 4800


def test_threshold_needs_louder_speech() -> None:
    # About -62 dBFS over digital silence (the floor at its -80 dB minimum): 18 dB above the
    # floor, a score of 0.6 (6 dB margin, 20 dB span).
    quiet = np.concatenate([silence_pcm(0.5), tone_pcm(1.0, level=0.0011), silence_pcm(1.0)])
    assert len(segments(run(quiet, config=VadConfig(threshold=0.5)))) == 1
    assert segments(run(quiet, config=VadConfig(threshold=0.7))) == []
    loud = np.concatenate([silence_pcm(0.5), tone_pcm(1.0, level=0.3), silence_pcm(1.0)])
    assert len(segments(run(loud, config=VadConfig(threshold=1.0)))) == 1


def test_steady_noise_is_not_speech_but_speech_over_it_is() -> None:
    rng = np.random.default_rng(1)
    noise = np.round(rng.standard_normal(16000 * 6) * 300).astype(np.int16)  # about -40 dBFS
    # The floor starts at -60 dB and rises to the noise at 6 dB/s: one spurious segment of
    # under a second at the very start, then nothing.
    [(start, end, _)] = segments(run(noise))
    assert start == 0 and end < RATE
    mixed = noise.copy()
    mixed[3 * RATE : 4 * RATE] += tone_pcm(1.0, level=0.3)
    [_, (start, end, _)] = segments(run(mixed))
    assert start == 3 * RATE - 4800
    assert end == 4 * RATE + 3200


def test_speech_at_the_very_start_is_found() -> None:
    signal = np.concatenate([tone_pcm(0.5), silence_pcm(1.0)])
    [(start, end, _)] = segments(run(signal))
    assert (start, end) == (0, 8000 + 3200)


@pytest.mark.parametrize("threshold", [0.2, 0.5, 1.0])
def test_vad_threshold_is_the_shared_detectors_threshold(threshold: float) -> None:
    seg = Segmenter(VadConfig(threshold=threshold))
    assert isinstance(seg.detector, EnergyDetector) and seg.detector.threshold == threshold
    # Speech needs 6 + 20 * threshold dB above the floor: just under it is not speech.
    over = 6 + 20 * threshold
    floor = -80.0  # where digital silence puts it
    detector = EnergyDetector(threshold)
    detector.score(-100.0, 0.02)
    assert detector.floor_db == floor
    assert not detector.is_speech(floor + over - 0.5, 0.0)
    assert detector.is_speech(floor + over, 0.0)


@pytest.mark.parametrize(
    "threshold, quietest_speech_db",
    [(0.5, -44.0), (1.0, -34.0), (1.5, -24.0), (2.0, -14.0)],
)
def test_a_threshold_above_1_asks_for_louder_speech(
    threshold: float, quietest_speech_db: float
) -> None:
    # Against the initial floor (-60 dBFS): 6 + threshold x 20 dB above it.
    for level, speech in ((quietest_speech_db, True), (quietest_speech_db - 0.5, False)):
        detector = EnergyDetector(threshold)
        assert detector.is_speech(level, 0.0) is speech
        assert detector.floor_db == -60.0


def test_no_audio_is_loud_enough_for_a_threshold_of_4() -> None:
    # After digital silence the floor is -80 dBFS: 4 asks for 86 dB above it.
    signal = np.concatenate([silence_pcm(0.5), tone_pcm(2.0, level=1.0), silence_pcm(1.0)])
    assert segments(run(signal, config=VadConfig(threshold=4.0))) == []
    assert len(segments(run(signal, config=VadConfig(threshold=1.5)))) == 1


def test_steady_tone_becomes_the_floor_but_syllables_do_not() -> None:
    # A -13.5 dBFS tone after digital silence: the floor (-80 dB) rises 6 dB/s, so after
    # (66.5 - 16) / 6 = 8.4 s the tone no longer stands 16 dB above it.
    steady = np.concatenate([silence_pcm(0.5), tone_pcm(12.0), silence_pcm(1.0)])
    [(start, end, _)] = segments(run(steady))
    assert 8.5 * RATE < end < 9.5 * RATE  # taken for noise once the floor has caught up
    syllables = np.concatenate([silence_pcm(0.5), voice_pcm(8.0), silence_pcm(1.0)])
    [(start, end, _)] = segments(run(syllables))
    assert start == 0.2 * RATE
    assert 8.6 * RATE <= end <= 8.7 * RATE  # the last 50 ms of voice_pcm are a dip


def test_flush_closes_open_segment() -> None:
    signal = np.concatenate([silence_pcm(0.5), tone_pcm(1.0)[:-100]])
    events = run(signal, flush=True)
    [(start, end, audio)] = segments(events)
    assert end == len(signal)  # including the incomplete last frame
    assert np.array_equal(audio, signal[start:end])
    assert segments(run(signal)) == []


def test_push_rejects_other_dtypes() -> None:
    with pytest.raises(TypeError):
        Segmenter().push(np.zeros(10, np.float32))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"threshold": 0.0},
        {"threshold": -1.5},
        {"threshold": float("inf")},
        {"threshold": float("nan")},
        {"frame_ms": 0},
        {"rate": 44100, "frame_ms": 25},
        {"preroll_ms": 310},
        {"hangover_ms": 600},
        {"onset_ms": 0},
        {"pause_ms": 610},
    ],
)
def test_config_validation(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        VadConfig(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("detector", ["energy", "silero"])
def test_a_gated_stream_is_segmented_where_the_whole_stream_is(three_in_noise, detector) -> None:
    # Between segments the server's floor rises fast, so at each onset it comes from the
    # last 0.2-0.3 s of noise, which the gate sends as its pre-roll: the sentences' segments
    # start and end on the same sample whether the server heard the whole pauses or only the
    # gate's tails and pre-rolls. (With the slow rise everywhere, the second sentence ended
    # 20 ms apart with the energy gate and 40 ms with Silero.)
    if detector == "silero":
        pytest.importorskip("onnxruntime")
    whole = np.asarray(three_in_noise.samples, np.int16)
    ungated = gating.segments(gating.frames(whole, RATE))
    gated = gating.segments(gating.gated(whole, RATE, detector))
    for a, b in three_in_noise.segments:
        [got] = [s for s in gated if s[0] < b and s[1] > a]
        [want] = [s for s in ungated if s[0] < b and s[1] > a]
        assert got == want
