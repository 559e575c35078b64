from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import pytest

from nsaudio.server.engines import (
    Engine,
    EnginePool,
    EngineStateError,
    PocketSphinxEngine,
    PoolExhausted,
)

from .counting_engine import CountingEngine
from .server_support import silence_pcm


def test_counting_engine_numbers_by_position() -> None:
    e = CountingEngine()
    assert isinstance(e, Engine)
    e.start(3200)  # 0.2 s
    e.process(np.zeros(1599, np.int16))
    assert e.partial() == ""
    e.process(np.zeros(1, np.int16))  # reaches 0.3 s
    assert e.partial() == "w3"
    e.process(np.zeros(3200, np.int16))
    assert e.finish() == "w3 w4 w5"
    e.start(8000)  # a gap of 0.3 s shows as missing numbers
    e.process(np.zeros(1600, np.int16))
    assert e.finish() == "w6"


def test_counting_engine_order_errors() -> None:
    e = CountingEngine()
    with pytest.raises(EngineStateError):
        e.process(np.zeros(1, np.int16))
    with pytest.raises(EngineStateError):
        e.finish()
    assert e.partial() == ""
    with pytest.raises(ValueError):
        e.start(-1)
    with pytest.raises(ValueError):
        CountingEngine(word_ms=0)


def test_pool_reuses_and_caps() -> None:
    made: list[CountingEngine] = []

    def factory() -> CountingEngine:
        made.append(CountingEngine())
        return made[-1]

    pool = EnginePool(factory, capacity=2)
    a = pool.acquire()
    b = pool.acquire()
    with pytest.raises(PoolExhausted):
        pool.acquire()
    pool.release(a)
    assert pool.acquire() is a
    assert a.calls == ["reset", "reset"]  # reset on every acquire
    pool.discard(b)
    c = pool.acquire()
    assert c is not b and len(made) == 3


def test_pool_factory_failure_frees_the_slot() -> None:
    calls = {"n": 0}

    def flaky() -> CountingEngine:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("no model")
        return CountingEngine()

    pool = EnginePool(flaky, capacity=1)
    with pytest.raises(RuntimeError):
        pool.acquire()
    assert isinstance(pool.acquire(), CountingEngine)


def test_pool_prewarm_and_threads() -> None:
    pool = EnginePool(CountingEngine, capacity=4)
    pool.prewarm(10)  # capped at capacity, no error
    got: list[object] = []
    lock = threading.Lock()

    def take() -> None:
        engine = pool.acquire()
        with lock:
            got.append(engine)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len({id(e) for e in got}) == 4
    with pytest.raises(PoolExhausted):
        pool.acquire()


def test_pool_validation() -> None:
    with pytest.raises(ValueError):
        EnginePool(CountingEngine, capacity=0)


@pytest.fixture(scope="module")
def sphinx_engine() -> PocketSphinxEngine:
    return PocketSphinxEngine()


def test_pocketsphinx_silence_is_empty(sphinx_engine: PocketSphinxEngine) -> None:
    sphinx_engine.reset()
    sphinx_engine.start(0)
    sphinx_engine.process(silence_pcm(0.5))
    assert sphinx_engine.partial() == ""
    assert sphinx_engine.finish() == ""
    sphinx_engine.start(0)
    assert sphinx_engine.finish() == ""  # an empty utterance is fine too


def test_pocketsphinx_order_errors(sphinx_engine: PocketSphinxEngine) -> None:
    sphinx_engine.reset()
    with pytest.raises(EngineStateError):
        sphinx_engine.process(silence_pcm(0.1))
    with pytest.raises(EngineStateError):
        sphinx_engine.finish()


def test_pocketsphinx_reset_makes_sessions_independent(
    sphinx_engine: PocketSphinxEngine, speech: Callable[[str, int], np.ndarray]
) -> None:
    audio = speech("open the door and turn on the light", 16000)
    other = speech("my name is john and i live in a small house near the river", 16000)

    def decode() -> str:
        sphinx_engine.start(0)
        for i in range(0, len(audio), 4096):
            sphinx_engine.process(audio[i : i + 4096])
        return sphinx_engine.finish()

    sphinx_engine.reset()
    first = decode()
    sphinx_engine.start(0)
    sphinx_engine.process(other)
    sphinx_engine.finish()  # adapts the decoder to this session
    sphinx_engine.reset()
    assert decode() == first
