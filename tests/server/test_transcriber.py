from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from nsaudio.server.params import SessionParams
from nsaudio.server.transcriber import Transcriber

from .counting_engine import CountingEngine
from .server_support import silence_pcm, tone_pcm, voice_pcm

SID = "1b4e28ba-2fa1-41d2-883f-0016d3cca427"
KEYS = {"full", "stream_id", "chunk_id", "start_time", "end_time", "send_time", "text"}


def make(**kwargs: Any) -> tuple[Transcriber, CountingEngine]:
    engine = CountingEngine()
    params = SessionParams(language="en", session_id=SID, **kwargs)
    return Transcriber(params, engine, clock=lambda: 123.0), engine


def feed_all(t: Transcriber, pcm: bytes, chunk: int = 8192) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(0, len(pcm), chunk):
        out += t.feed(pcm[i : i + chunk])
    return out


def words(text: str) -> list[int]:
    return [int(w[1:]) for w in text.split()]


def burst(seconds: float, lead: float = 0.5, tail: float = 1.0, rate: int = 16000) -> bytes:
    return np.concatenate(
        [silence_pcm(lead, rate), voice_pcm(seconds, rate), silence_pcm(tail, rate)]
    ).tobytes()


def test_one_segment() -> None:
    t, engine = make()
    out = feed_all(t, burst(2.0))
    assert all(set(m) == KEYS for m in out)
    partials = [m for m in out if not m["full"]]
    [full] = [m for m in out if m["full"]]
    assert out[-1] is full
    assert len(partials) == 2  # after 1 s and 2 s of segment audio
    assert all(
        m["chunk_id"] == 0 and m["stream_id"] == SID and m["send_time"] == 123.0 for m in out
    )
    # 300 ms pre-roll before 0.5 s, 200 ms hangover after 2.5 s
    assert (full["start_time"], full["end_time"]) == (0.2, 2.7)
    assert words(full["text"]) == list(range(3, 28))
    for p in partials:
        assert p["start_time"] == 0.2 and p["end_time"] < 2.7
        assert words(p["text"]) == list(range(3, int(p["end_time"] * 10) + 1))
    assert engine.calls == ["start", "finish"]


def test_silence_gives_nothing() -> None:
    t, engine = make()
    assert feed_all(t, silence_pcm(5.0).tobytes()) == []
    assert engine.calls == []


def test_disable_partial() -> None:
    t, _ = make(disable_partial=True)
    out = feed_all(t, burst(2.5))
    assert [m["full"] for m in out] == [True]


def test_chunk_ids_and_times_across_segments() -> None:
    t, _ = make()
    pcm = (
        burst(1.2, lead=0.3, tail=1.5)
        + burst(1.5, lead=0.0, tail=1.0)
        + burst(0.8, lead=0.0, tail=1.0)
    )
    out = feed_all(t, pcm, chunk=4096)
    fulls = [m for m in out if m["full"]]
    assert [m["chunk_id"] for m in fulls] == [0, 1, 2]
    assert [m["chunk_id"] for m in out] == sorted(m["chunk_id"] for m in out)
    ends = [0.0]
    for m in fulls:
        assert m["start_time"] >= ends[-1] and m["end_time"] > m["start_time"]
        ends.append(m["end_time"])
    assert ends[-1] <= len(pcm) / 2 / 16000


def test_max_chunk_size_splits_without_gaps() -> None:
    t, _ = make(max_chunk_size=1)
    out = feed_all(t, burst(3.5), chunk=3000)
    fulls = [m for m in out if m["full"]]
    assert len(fulls) == 4
    spoken = [w for m in fulls for w in words(m["text"])]
    assert spoken == list(range(spoken[0], spoken[-1] + 1))  # no gap, no repeat
    for m in fulls[:-1]:
        assert m["end_time"] - m["start_time"] == pytest.approx(1.0)
    for a, b in itertools.pairwise(fulls):
        assert b["start_time"] == a["end_time"]
        assert b["chunk_id"] == a["chunk_id"] + 1
    # No partial of a piece follows that piece's full result.
    finished: set[int] = set()
    for m in out:
        assert m["chunk_id"] not in finished
        if m["full"]:
            finished.add(m["chunk_id"])


@pytest.mark.parametrize("chunk", [1, 3, 17, 509, 4096, 100_001])
def test_odd_chunks_give_the_same_results(chunk: int) -> None:
    pcm = burst(1.7, lead=0.4)
    t1, _ = make(disable_partial=True)
    t2, _ = make(disable_partial=True)
    assert feed_all(t1, pcm, chunk) == feed_all(t2, pcm, len(pcm))


class RecordingEngine(CountingEngine):
    def __init__(self) -> None:
        super().__init__()
        self.heard: list[np.ndarray] = []

    def process(self, samples: np.ndarray) -> None:
        self.heard.append(samples.copy())
        super().process(samples)


@pytest.mark.parametrize("chunk", [1, 333, 4096, 100_001])
def test_8k_audio_reaches_the_engine_identically_however_it_is_cut(chunk: int) -> None:
    """pocketsphinx can turn a 1-LSB difference into another word: the upsampled audio must
    not depend on how the client cut its messages."""
    rng = np.random.default_rng(7)
    voice = np.round(rng.standard_normal(12000) * 3000).astype(np.int16)
    pcm = np.concatenate([silence_pcm(0.4, 8000), voice, silence_pcm(1.0, 8000)]).tobytes()
    engines = [RecordingEngine(), RecordingEngine()]
    for engine, size in zip(engines, (chunk, len(pcm)), strict=True):
        t = Transcriber(SessionParams("en", SID, format="pcm_8k"), engine)
        feed_all(t, pcm, size)
    a, b = (np.concatenate(e.heard) for e in engines)
    assert len(a) > 16000 and np.array_equal(a, b)


def test_odd_byte_is_carried() -> None:
    t, _ = make()
    assert t.feed(b"\x01") == []
    assert t.position == 0
    t.feed(b"\x02\x03")
    assert t.position == 1
    assert t.bytes_received == 3


def test_pcm_8k_times_match_16k() -> None:
    t16, _ = make(disable_partial=True)
    t8, _ = make(disable_partial=True, format="pcm_8k")
    [a] = feed_all(t16, burst(1.5, rate=16000))
    [b] = feed_all(t8, burst(1.5, rate=8000), chunk=4096)
    assert b["start_time"] == pytest.approx(a["start_time"], abs=0.021)
    assert b["end_time"] == pytest.approx(a["end_time"], abs=0.021)


def test_close_drops_the_open_segment() -> None:
    t, engine = make(disable_partial=True)
    assert feed_all(t, burst(1.5, tail=0.3)) == []
    t.close()
    assert engine.calls == ["start", "finish"]  # the engine is left idle
    with pytest.raises(RuntimeError):
        t.feed(b"\x00\x00")
    t.close()  # twice is fine


def test_flush_finishes_the_open_segment() -> None:
    t, _ = make(disable_partial=True)
    assert feed_all(t, burst(1.5, tail=0.3)) == []
    [full] = t.flush()
    assert full["full"] and full["end_time"] == pytest.approx(2.2)  # speech + 200 ms hangover


class ScriptedEngine(CountingEngine):
    """Says ``partial_text`` mid-utterance and ``final_text`` at the end."""

    def __init__(self, partial_text: str, final_text: str) -> None:
        super().__init__()
        self.partial_text, self.final_text = partial_text, final_text

    def partial(self) -> str:
        return self.partial_text

    def finish(self) -> str:
        super().finish()
        return self.final_text


def test_empty_final_after_partials_still_supersedes() -> None:
    engine = ScriptedEngine("uh", "")
    t = Transcriber(SessionParams("en", SID), engine)
    out = feed_all(t, burst(1.5))
    assert [m["full"] for m in out] == [False, True]
    assert out[-1]["text"] == "" and out[-1]["chunk_id"] == out[0]["chunk_id"]


def test_nothing_recognised_sends_nothing() -> None:
    t = Transcriber(SessionParams("en", SID), ScriptedEngine("", ""))
    assert feed_all(t, burst(1.5)) == []


def test_vad_threshold_reaches_the_vad() -> None:
    # About -62 dBFS over digital silence: 18 dB above the floor, speech at 0.5 (16 dB) and
    # not at 0.9 (24 dB).
    quiet = np.concatenate(
        [silence_pcm(0.5), tone_pcm(1.0, level=0.0011), silence_pcm(1.0)]
    ).tobytes()
    loose, _ = make(vad_threshold=0.5)
    strict, _ = make(vad_threshold=0.9)
    assert len(feed_all(loose, quiet)) > 0
    assert feed_all(strict, quiet) == []
