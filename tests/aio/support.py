"""Helpers for the asyncio API's tests: feeding a stream, a loop-lag ticker, counting what a
stream may leave behind (socket loop tasks, client sockets), and the threaded ``Pipeline``'s
run of a recording as the reference."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import psutil

from nsaudio.aio import AsyncChannelStream, AsyncStream
from nsaudio.sinks.loop import SocketLoop

#: Chunk sizes cycled through when feeding: awkward ones, as a network delivers them.
CUTS = (1, 17, 509, 4410, 44100, 3)


async def feed(
    stream: AsyncStream | AsyncChannelStream,
    data: np.ndarray,
    *,
    cuts: tuple[int, ...] = CUTS,
    pace: float = 0.0,
    as_bytes: bool = False,
    end: bool = True,
) -> None:
    """Send ``data`` in chunks of ``cuts`` (every other one as bytes with ``as_bytes``); with
    ``pace``, at that factor of real time."""
    rate = stream.format.rate
    t0 = time.monotonic()
    i = k = 0
    while i < len(data):
        n = cuts[k % len(cuts)]
        chunk = data[i : i + n]
        await stream.send(chunk.tobytes() if as_bytes and k % 2 else chunk)
        i, k = i + n, k + 1
        if pace:
            delay = t0 + i / rate / pace - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
    if end:
        await stream.end()


async def collect(stream: AsyncStream | AsyncChannelStream) -> list:
    return [result async for result in stream]


class Ticker:
    """Sleeps ``period`` again and again on the loop and keeps how late each wake-up was: a
    call that holds the loop shows as lateness."""

    def __init__(self, period: float = 0.005) -> None:
        self.period = period
        self.late: list[float] = []
        self._task: asyncio.Task | None = None

    async def _run(self) -> None:
        while True:
            due = time.monotonic() + self.period
            await asyncio.sleep(self.period)
            self.late.append(time.monotonic() - due)

    def __enter__(self) -> Ticker:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()

    @property
    def worst(self) -> float:
        return max(self.late, default=0.0)


def socket_loop_tasks() -> int:
    """Tasks alive on the socket loop (every sink's coroutines), counted on that loop."""
    sockets = SocketLoop.get()

    async def count() -> int:
        return len(asyncio.all_tasks()) - 1  # not this one

    return asyncio.run_coroutine_threadsafe(count(), sockets.loop).result(5)


def client_sockets(port: int) -> int:
    """This process's TCP sockets connected to ``port`` (the client's side only)."""
    return sum(
        1 for c in psutil.Process().net_connections(kind="tcp") if c.raddr and c.raddr.port == port
    )


def eventually(check: Callable[[], bool], seconds: float = 5.0) -> bool:
    """Whether ``check()`` comes true within ``seconds`` (sockets close a turn of a loop later)."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def silero_pipeline(base_url: str, path: object) -> tuple[list, Any]:
    """The threaded ``Pipeline`` on ``path``, gated by Silero, to ``base_url``: its results
    and its gate (what the asyncio streams must match)."""
    from nsaudio.runner import Pipeline, standard_stages
    from nsaudio.sinks.neuralspace import NeuralSpaceSink
    from nsaudio.sources import open_source

    results: list = []
    source = open_source(path)
    stages = standard_stages(source, "pcm_16k", skip_silence=True, gate_vad="silero")
    sink = NeuralSpaceSink(base_url, "key", on_result=results.append, ping_timeout=60)
    Pipeline(source, stages, sink).run()
    return results, stages[-1]
