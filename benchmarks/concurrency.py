"""N real-time streams at once, from one process, to the local server on loopback.

    python benchmarks/concurrency.py --streams 4 --seconds 20 [--format pcm_16k] [--json FILE]

Each stream is a synthetic live source (48 kHz stereo, 10 ms blocks, released at real time)
through its own pipeline and WebSocket sink, all in this process's threads; the server runs
in its own process. Reports the send overhead over all frames of all streams (ms from the
newest input sample's arrival to the frame's send, see latency.py) and the frames dropped
because a stream fell behind.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from latency import percentiles, run_stream

from nsaudio.server.child import ServerProcess


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--streams", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--format", default="pcm_16k", choices=["pcm_16k", "pcm_8k"])
    ap.add_argument("--frame-ms", type=float, default=100)
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()

    results: list[dict[str, Any]] = [{} for _ in range(args.streams)]
    errors: list[BaseException] = []
    with ServerProcess() as server:

        def one(i: int) -> None:
            try:
                results[i] = run_stream(
                    server, args.seconds, 48000, 2, args.frame_ms, args.format, 10, seed=i
                )
            except BaseException as err:
                errors.append(err)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(args.streams)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    if errors:
        raise errors[0]
    overhead = np.concatenate([r["overhead"] for r in results])
    report = {
        "streams": args.streams,
        "seconds": args.seconds,
        "format": args.format,
        "frame_ms": args.frame_ms,
        "send_overhead_ms": percentiles(overhead),
        "dropped_frames": int(sum(r["dropped_frames"] for r in results)),
        "frames": int(sum(r["frames"] for r in results)),
        "cpus": os.cpu_count(),
    }
    p = report["send_overhead_ms"]
    print(
        f"{args.streams} streams x {args.seconds:g} s ({args.format}): {report['frames']} frames, "
        f"{report['dropped_frames']} dropped; send overhead ms p50 {p['p50']:.2f} p95 {p['p95']:.2f} "
        f"p99 {p['p99']:.2f} max {p['max']:.2f}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
