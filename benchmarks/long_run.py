"""Memory and tasks over a long stream: hours of audio at ``--pace 0`` to the local server.

    python benchmarks/long_run.py --hours 4 [--warmup-minutes 20] [--json FILE] [--plot FILE.png]

Speech-like audio (16 kHz mono, a syllable-rate tone with pauses) goes through the standard
stages and the WebSocket sink, as fast as the local server (the cheap recogniser, in its own
process) takes it: a ping per frame, a full result every few seconds, hours of results. A
thread samples this process's resident memory (``/proc/self/statm``), its threads, and the
tasks on the sink's event loop, each time another minute of audio has been sent. Reported:
the peak RSS after the warm-up and its growth over the rest of the run (what a stream open for
a working day would leak), the task count's range, and the audio's pace.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from latency import speechlike

from nsaudio.blocks import Block
from nsaudio.neuralspace.protocol import StreamParams
from nsaudio.runner import Pipeline, standard_stages
from nsaudio.server.child import ServerProcess
from nsaudio.sinks.loop import SocketLoop
from nsaudio.sinks.neuralspace import NeuralSpaceSink

RATE = 16000
PAGE = os.sysconf("SC_PAGE_SIZE")


class LoopedSpeech:
    """``seconds`` of speech-like audio, a 30 s pattern repeated, in 1 s blocks (a file)."""

    rate, channels, live, name = RATE, 1, False, "speech-like audio"

    def __init__(self, seconds: float) -> None:
        pattern = speechlike(30.0, RATE, 1)[:, 0]
        self.pattern = np.round(pattern * 32767).astype(np.int16)
        self.frames = round(seconds * RATE)
        self._stop = False

    def blocks(self) -> Iterator[Block]:
        pos = 0
        n = len(self.pattern)
        while pos < self.frames and not self._stop:
            k = min(RATE, self.frames - pos)
            idx = (pos + np.arange(k)) % n
            yield Block(self.pattern[idx][:, None], pos, RATE, time.monotonic_ns())
            pos += k

    def stop(self) -> None:
        self._stop = True


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 1e6


async def _tasks() -> int:
    return len(asyncio.all_tasks())


def run(hours: float, warmup_minutes: float) -> dict[str, Any]:
    seconds = hours * 3600
    server = ServerProcess(engine="cheap").start()
    samples: list[dict[str, float]] = []
    results = {"full": 0, "partial": 0}

    def on_result(r: Any) -> None:
        results["full" if r.full else "partial"] += 1

    try:
        source = LoopedSpeech(seconds)
        sink = NeuralSpaceSink(server.base_url, "bench", StreamParams(), on_result=on_result)
        pipeline = Pipeline(source, standard_stages(source, "pcm_16k"), sink)
        done = threading.Event()

        def sample() -> None:
            loop = SocketLoop.get().loop
            next_minute = 0.0
            while not done.wait(0.2):
                sent = sink.counters.samples_sent / RATE
                if sent < next_minute:
                    continue
                tasks = asyncio.run_coroutine_threadsafe(_tasks(), loop).result(5)
                samples.append({"audio_min": round(sent / 60, 2), "rss_mb": round(rss_mb(), 2),
                                "tasks": tasks, "threads": threading.active_count(),
                                "wall_s": round(time.monotonic() - t0, 1)})  # fmt: skip
                next_minute = (int(sent // 60) + 1) * 60

        watcher = threading.Thread(target=sample, daemon=True)
        t0 = time.monotonic()
        watcher.start()
        pipeline.run()
        wall = time.monotonic() - t0
        done.set()
        watcher.join(5)
    finally:
        server.stop()
    after = [s for s in samples if s["audio_min"] >= warmup_minutes]
    base = after[0]["rss_mb"] if after else float("nan")
    return {
        "audio_hours": hours,
        "wall_s": round(wall, 1),
        "x_real_time": round(seconds / wall, 1),
        "frames_sent": sink.counters.frames_sent,
        "full_results": results["full"],
        "partial_results": results["partial"],
        "reconnects": sink.counters.reconnects,
        "rss_mb_at_warmup": base,
        "rss_mb_max_after_warmup": max((s["rss_mb"] for s in after), default=float("nan")),
        "rss_growth_mb_after_warmup": round(
            max((s["rss_mb"] for s in after), default=base) - base, 2
        ),
        "tasks_range": [min(s["tasks"] for s in samples), max(s["tasks"] for s in samples)]
        if samples
        else [],
        "samples": samples,
    }


def plot(report: dict[str, Any], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [s["audio_min"] for s in report["samples"]]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.plot(xs, [s["rss_mb"] for s in report["samples"]], lw=1.2)
    ax.set_xlabel("audio streamed (minutes)")
    ax.set_ylabel("resident memory (MB)")
    ax.set_title(f"{report['audio_hours']:g} h at --pace 0: RSS growth after warm-up "
                 f"{report['rss_growth_mb_after_warmup']} MB")  # fmt: skip
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hours", type=float, default=4.0)
    ap.add_argument("--warmup-minutes", type=float, default=20.0)
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--plot", metavar="FILE.png")
    args = ap.parse_args()
    report = run(args.hours, args.warmup_minutes)
    print(f"{args.hours:g} h of audio in {report['wall_s']} s ({report['x_real_time']}x real "
          f"time): {report['frames_sent']} frames, {report['full_results']} full results, "
          f"{report['reconnects']} reconnects")  # fmt: skip
    print(f"RSS {report['rss_mb_at_warmup']} MB at {args.warmup_minutes:g} min, at most "
          f"{report['rss_mb_max_after_warmup']} MB after: growth "
          f"{report['rss_growth_mb_after_warmup']} MB; tasks on the loop "
          f"{report['tasks_range']}; load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    if args.plot:
        plot(report, args.plot)


if __name__ == "__main__":
    main()
