"""What Silero costs per stream: one stream at a time against many scored together.

    python benchmarks/vad_batch.py [--streams 300] [--seconds 10] [--rate 8000] [--frame-ms 100]
                                   [--max-wait-ms 10] [--json FILE]

``--streams`` streams, each the suite's noisy recording (three flite sentences in brown noise,
``tests/recordings.py``; needs flite and sox) at ``--rate`` from its own offset, cut into
``--frame-ms`` frames, are scored by Silero (onnxruntime, one thread) three ways:

- ``one at a time``: every stream's own :class:`SileroDetector`, no batcher: one model call
  per 32 ms window per stream.
- ``together``: one thread holds every stream's frame of a tick and scores them with
  ``push_together`` through one :class:`SileroBatcher`: one call per window step for all
  (what a telephony gateway's packet clock does; ``concurrency.py --gate-vad silero``).
  ``of it, model``: as many model calls alone, on inputs made in advance (the rest of
  ``together`` is nsaudio's Python around them).
- ``threads``: a thread per stream, each released at real time with its frames (streams a
  frame apart in turn, as they start), each blocked in ``scores`` while the shared batcher's
  group commit gathers the others (``--max-wait-ms``). Reported too: how long a frame waited
  in ``scores`` (the latency batching adds) and the mean batch.

CPU is the process's (user + system) over the frames scored, per 32 ms window of one stream
(a *stream-frame* of the model); the first two run as fast as they can, ``threads`` for
``--seconds`` of real time. The issue's bar: at most 50 µs per stream-frame at 300 streams.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import soxr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nsaudio.blocks import Frame  # noqa: E402
from nsaudio.detectors import SileroBatcher, SileroDetector, SileroModel  # noqa: E402
from nsaudio.detectors.silero import WINDOWS  # noqa: E402
from nsaudio.stages import SpeechGate, push_together  # noqa: E402
from tests.recordings import three_utterances_in_noise  # noqa: E402


def streams_audio(n: int, rate: int, seconds: float) -> list[np.ndarray]:
    with tempfile.TemporaryDirectory() as tmp:
        rec = three_utterances_in_noise(Path(tmp))
    x = rec.samples.astype(np.float32) / 32768
    if rate != rec.rate:
        x = soxr.resample(x, rec.rate, rate, quality="HQ")
    pcm = np.clip(np.rint(x * 32768), -32768, 32767).astype(np.int16)
    need = round(seconds * rate)
    loop = np.concatenate([pcm] * (need // len(pcm) + 2))
    step = len(pcm) // max(1, n)
    return [loop[i * step : i * step + need] for i in range(n)]


def frames_of(x: np.ndarray, size: int) -> list[np.ndarray]:
    return [x[i : i + size].reshape(1, -1) for i in range(0, len(x) - size + 1, size)]


def one_at_a_time(audio: list[np.ndarray], rate: int, size: int) -> dict[str, Any]:
    detectors = [SileroDetector() for _ in audio]
    frames = [frames_of(x, size) for x in audio]
    cpu = time.process_time()
    for step in range(len(frames[0])):
        for d, f in zip(detectors, frames, strict=True):
            d.scores(f[step], rate)
    cpu = time.process_time() - cpu
    windows = sum(d.windows for d in detectors)
    return {"cpu_s": cpu, "windows": windows, "calls": windows}


def together(audio: list[np.ndarray], rate: int, size: int) -> dict[str, Any]:
    batcher = SileroBatcher()
    gates = [SpeechGate(SileroDetector(batcher=batcher)) for _ in audio]
    frames = [[Frame(f.tobytes(), 0, rate, 0) for f in frames_of(x, size)] for x in audio]
    cpu = time.process_time()
    for step in range(len(frames[0])):
        push_together(gates, [f[step] for f in frames])
    cpu = time.process_time() - cpu
    return {"cpu_s": cpu, "windows": batcher.windows, "calls": batcher.calls}


def model_only(audio: list[np.ndarray], rate: int, size: int) -> dict[str, Any]:
    """The model's share of ``together``: the same calls on inputs made in advance."""
    window, context = WINDOWS[rate]
    steps = len(audio[0]) // window
    model = SileroModel.shared()
    x = np.zeros((len(audio), context + window), np.float32)
    state = np.zeros((2, len(audio), 128), np.float32)
    cpu = time.process_time()
    for _ in range(steps):
        _, state = model.run(x, state, rate)
    cpu = time.process_time() - cpu
    return {"cpu_s": cpu, "windows": steps * len(audio), "calls": steps}


def threaded(audio: list[np.ndarray], rate: int, size: int, max_wait_ms: float) -> dict[str, Any]:
    batcher = SileroBatcher(max_wait_ms=max_wait_ms)
    period = size / rate
    n = len(audio)
    waits: list[list[float]] = [[] for _ in audio]
    errors: list[BaseException] = []
    t0 = time.monotonic() + 0.5

    def stream(i: int) -> None:
        d = SileroDetector(batcher=batcher)
        try:
            for k, f in enumerate(frames_of(audio[i], size)):
                due = t0 + (k + 1) * period + i * period / n  # streams a frame apart in turn
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                start = time.monotonic()
                d.scores(f, rate)
                waits[i].append(time.monotonic() - start)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=stream, args=(i,), daemon=True) for i in range(n)]
    cpu = time.process_time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cpu = time.process_time() - cpu
    if errors:
        raise errors[0]
    w = np.concatenate([np.array(x) for x in waits]) * 1000
    return {
        "cpu_s": cpu,
        "windows": batcher.windows,
        "calls": batcher.calls,
        "batches": batcher.batches,
        "streams_per_batch": batcher.jobs / max(1, batcher.batches),
        "wait_ms": {q: float(np.percentile(w, p)) for q, p in (("p50", 50), ("p99", 99))}
        | {"max": float(w.max())},
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--streams", type=int, default=300)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--rate", type=int, default=8000, choices=[8000, 16000])
    p.add_argument("--frame-ms", type=int, default=100)
    p.add_argument("--max-wait-ms", type=float, default=10.0)
    p.add_argument("--skip-threads", action="store_true", help="only the first two ways")
    p.add_argument("--json", metavar="FILE")
    args = p.parse_args()
    size = args.rate * args.frame_ms // 1000
    audio = streams_audio(args.streams, args.rate, args.seconds)
    SileroModel.shared()  # loaded before anything is timed
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{args.streams} streams x {args.seconds:g} s at {args.rate} Hz, "
          f"{args.frame_ms} ms frames")  # fmt: skip
    report: dict[str, Any] = {"streams": args.streams, "seconds": args.seconds,
                              "rate": args.rate, "frame_ms": args.frame_ms}  # fmt: skip
    ways = {
        "one at a time": lambda: one_at_a_time(audio, args.rate, size),
        "together": lambda: together(audio, args.rate, size),
        "  of it, model": lambda: model_only(audio, args.rate, size),
    }
    if not args.skip_threads:
        ways["threads"] = lambda: threaded(audio, args.rate, size, args.max_wait_ms)
    for name, way in ways.items():
        run = way()
        run["us_per_stream_frame"] = run["cpu_s"] / run["windows"] * 1e6
        run["streams_per_call"] = run["windows"] / run["calls"]
        report[name] = run
        extra = ""
        if "wait_ms" in run:
            wm = run["wait_ms"]
            extra = (f"; {run['streams_per_batch']:.0f} streams a batch, wait in "
                     f"scores p50 {wm['p50']:.1f} p99 {wm['p99']:.1f} max {wm['max']:.1f} ms")  # fmt: skip
        print(f"  {name:14} {run['us_per_stream_frame']:6.1f} µs CPU per stream-frame "
              f"({run['windows']} windows, {run['streams_per_call']:.0f} a call){extra}")  # fmt: skip
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
