"""``concurrency.py --api async``: N telephony streams through the asyncio API, one event loop.

The same audio as the threaded telephony run (8 kHz mono int16, 20 ms packets from a few
looped speech-like patterns, each stream ending in a pause), but every packet goes through
``await stream.send(packet)`` of a :func:`nsaudio.connect` stream (live: the oldest audio
would be dropped, and counted, if sending fell behind), so the stages (resampler, framer,
energy gate) run on the caller's loop as they would in a FastAPI server. One clock coroutine
wakes for every packet and sends it to every stream, whose calls start a packet apart in turn
so that their frames complete on different ticks.

Measured on the caller's loop, besides the sinks' send overhead, drops and reconnects:

- ``send_call_ms``: how long each ``send()`` held the loop (it never awaits here: live);
- ``loop_lag_ms``: a ticker sleeping 10 ms on the same loop, and how late each wake-up was;
- ``clock_late_ms``: how late the clock's packets went out against their due time;
- ``tick_ms``: how long one tick's sends to every stream took.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import numpy as np

import nsaudio
from nsaudio.neuralspace.protocol import StreamParams

PACKET_MS = 20
TICKER_S = 0.010
OPEN_AT_ONCE = 16  # streams entered (token, handshake) at once


class _Ticker:
    """Sleeps ``TICKER_S`` again and again and keeps how late it woke (the loop's lag)."""

    def __init__(self) -> None:
        self.late: list[float] = []

    async def run(self) -> None:
        while True:
            due = time.monotonic() + TICKER_S
            await asyncio.sleep(TICKER_S)
            self.late.append(time.monotonic() - due)


async def _run(
    target: Any, n: int, seconds: float, frame_ms: int, packets: list[list[tuple[bytes, bool]]],
    ends: list[list[int]],
) -> dict[str, Any]:  # fmt: skip
    params = StreamParams(format="pcm_8k")
    m = frame_ms // PACKET_MS
    n_packets = round(seconds * 1000 / PACKET_MS)
    loop_len = len(packets[0])
    options = {"rate": params.rate, "dtype": "int16", "live": True, "frame_ms": frame_ms,
               "drain_timeout": 10, "log_sends": True}  # fmt: skip
    streams = [
        nsaudio.connect(target.base_url, target.api_key, params, **options) for _ in range(n)
    ]
    plan = []  # per stream: its pattern, where in the loop it starts, and its first tick
    for i in range(n):
        p = i % len(packets)
        end = ends[p][(i // len(packets) * 7) % len(ends[p])]
        plan.append((packets[p], (end - (n_packets - 1)) % loop_len, i % m))
    failed: dict[int, BaseException] = {}
    entered: list[bool] = [False] * n
    gate = asyncio.Semaphore(OPEN_AT_ONCE)

    async def enter(i: int) -> None:
        async with gate:
            try:
                await streams[i].__aenter__()
                entered[i] = True
            except Exception as err:
                failed[i] = err

    await asyncio.gather(*(enter(i) for i in range(n)))
    ticker = _Ticker()
    ticking = asyncio.get_running_loop().create_task(ticker.run())
    calls = np.zeros(n * n_packets, np.float64)
    late = np.zeros(n_packets + m, np.float64)
    tick_work = np.zeros(n_packets + m, np.float64)
    ncalls = 0
    threads = threading.active_count()
    cpu0, wall0 = time.process_time(), time.monotonic()
    if not failed:
        period = PACKET_MS / 1000
        t0 = time.monotonic() + 0.05
        for k in range(n_packets + m - 1):
            due = t0 + (k + 1) * period
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            late[k] = time.monotonic() - due
            w0 = time.perf_counter()
            for i, stream in enumerate(streams):
                loop, offset, first = plan[i]
                j = k - first  # this stream's packet number
                if not 0 <= j < n_packets or i in failed:
                    continue
                pcm = loop[(j + offset) % loop_len][0]
                c0 = time.perf_counter()
                try:
                    await stream.send(pcm)
                except Exception as err:
                    failed[i] = err
                calls[ncalls] = time.perf_counter() - c0
                ncalls += 1
            tick_work[k] = time.perf_counter() - w0
            if k == n_packets // 2:
                threads = threading.active_count()
            await asyncio.sleep(0)  # the ticker and the wake-ups get their turn every tick
    streamed_s = time.monotonic() - wall0
    cpu = time.process_time() - cpu0
    ticking.cancel()

    async def leave(i: int) -> None:
        if not entered[i]:
            return
        try:
            if i in failed:
                await streams[i].__aexit__(RuntimeError, RuntimeError("failed"), None)
            else:
                await streams[i].__aexit__(None, None, None)
        except Exception as err:
            failed.setdefault(i, err)

    await asyncio.gather(*(leave(i) for i in range(n)))
    return {
        "streams": streams,
        "failed": failed,
        "calls_ms": calls[:ncalls] * 1000,
        "loop_lag_ms": np.array(ticker.late) * 1000,
        "clock_late_ms": late * 1000,
        "tick_ms": tick_work * 1000,
        "threads": threads,
        "streamed_s": streamed_s,
        "cpu": cpu,
    }


def run_async_telephony(
    target: Any,
    n: int,
    seconds: float,
    frame_ms: int,
    packets: list[list[tuple[bytes, bool]]],
    ends: list[list[int]],
    percentiles: Any,
    error_kinds: Any,
    server_cpu: Any,
) -> dict[str, Any]:
    """N pcm_8k streams through ``nsaudio.connect()`` on one event loop (this thread's);
    returns the figures ``concurrency.py`` reports for any run, and the caller-loop's."""
    cpu_before = server_cpu()
    out = asyncio.run(_run(target, n, seconds, frame_ms, packets, ends))
    server = server_cpu(cpu_before)
    per_frame = 8000 * frame_ms // 1000
    audio_end = round(seconds * 1000 / PACKET_MS) * 8000 * PACKET_MS // 1000
    overhead, dropped, reconnects, sent, full = [], 0, 0, 0, 0
    for stream in out["streams"]:
        stats = stream.stats()
        dropped += int(stats.get("dropped_frames", 0))
        reconnects += int(stats.get("reconnects", 0))
        sent += int(stats.get("frames_sent", 0))
        full += stream.transcript.count
        log = np.array(stream.sink.send_log, dtype=np.int64).reshape(-1, 3)
        log = log[log[:, 0] < audio_end]  # the drain's trailing silence is not audio
        _, first = np.unique(log[:, 0], return_index=True)  # a replayed frame: its first send
        overhead.append((log[first, 2] - log[first, 1]) / 1e6)
    return {
        "streams": n,
        "api": "async",
        "overhead": np.concatenate(overhead) if overhead else np.zeros(0),
        "dropped_frames": dropped,
        "reconnects": reconnects,
        "frames": -(-audio_end // per_frame) * n,
        "frames_sent": sent,
        "full_results": full,
        "failed_streams": len(out["failed"]),
        "errors": error_kinds(out["failed"].values()),
        "clock_late_ms": percentiles(out["clock_late_ms"]),
        "loop_lag_ms": percentiles(out["loop_lag_ms"]),
        "send_call_ms": percentiles(out["calls_ms"]),
        "tick_ms": percentiles(out["tick_ms"]),
        "threads": out["threads"],
        "streaming_s": round(out["streamed_s"], 3),
        "client_cpu_s": round(out["cpu"], 3),
        "server_cpu_s": None if server is None else round(server, 3),
    }
