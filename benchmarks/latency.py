"""End-to-end latency: a source paced at real time, through the pipeline, to the local server.

    python benchmarks/latency.py --seconds 30 [--rate 48000] [--frame-ms 100] [--json FILE] [--plot FILE.png]

Each frame carries the monotonic time at which its newest input sample became available;
the sink notes when the frame was handed to the socket. Figures (milliseconds):

- ``send_overhead_ms``: send time - that availability time: what nsaudio adds (queues,
  thread hand-offs, resampling, framing).
- ``intrinsic_ms``: frame duration + the resampler's hold-back: what any client framing audio
  this way must wait before the first sample of a frame can go out.
- ``sample_age_ms``: the age at send of each frame's oldest sample = overhead + intrinsic.
- ``oldest_sample_age_ms``: the same age measured directly: send time minus the time the
  callback (block) holding the frame's first sample was delivered. Lower than the estimate
  by up to a block, since a block's first samples are older than its delivery time says.

The source is synthetic speech-like audio (a tone with a syllable-rate envelope) released
block by block exactly when a sound card would deliver it.

``--status`` runs ``nsaudio stream``'s live status line meanwhile, drawing (with the results,
as text) onto a pseudo-terminal of 120 columns whose output a thread reads and drops: what
the preview costs the send path on a user's terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import importlib.util
import json
import os
import platform
import struct
import subprocess
import sys
import termios
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nsaudio.cli.stream_run import Lane
from nsaudio.errors import NsAudioError
from nsaudio.neuralspace.protocol import StreamParams
from nsaudio.runner import Pipeline, standard_stages
from nsaudio.server.child import ServerProcess
from nsaudio.sinks.neuralspace import NeuralSpaceSink
from nsaudio.sources.synthetic import ArraySource
from nsaudio.stages.resampler import Resampler


def percentiles(values_ms: np.ndarray) -> dict[str, float]:
    if not len(values_ms):
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan"), "max": float("nan")}
    p50, p95, p99 = np.percentile(values_ms, [50, 95, 99])
    return {
        "p50": round(float(p50), 3),
        "p95": round(float(p95), 3),
        "p99": round(float(p99), 3),
        "max": round(float(values_ms.max()), 3),
    }


def speechlike(seconds: float, rate: int, channels: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * rate)) / rate
    envelope = np.clip(np.sin(2 * np.pi * 3.0 * t), 0, None) * (np.sin(2 * np.pi * 0.2 * t) > -0.3)
    voice = 0.3 * np.sin(2 * np.pi * 180 * t) + 0.1 * np.sin(2 * np.pi * 720 * t)
    x = (envelope * voice + rng.normal(0, 0.002, len(t))).astype(np.float32)
    return np.repeat(x[:, None], channels, axis=1)


def holdback_ms(in_rate: int, out_rate: int, block_frames: int, quality: str = "HQ") -> float:
    """Mean hold-back of the streaming resampler for this block size, measured, not assumed."""
    r = Resampler(in_rate, out_rate, 1, quality=quality)
    from nsaudio.blocks import Block

    lag = []
    pushed = out = 0
    for i in range(200):
        pushed += block_frames
        for b in r.push(Block(np.zeros(block_frames, np.float32), i * block_frames, in_rate, 0)):
            out += len(b)
        lag.append(pushed / in_rate - out / out_rate)
    return 1000 * float(np.mean(lag[20:]))


class _Logged:
    """A source whose blocks' (start, frames, t_ns) are noted as they pass."""

    def __init__(self, source: Any) -> None:
        self.source = source
        self.log: list[tuple[int, int, int]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.source, name)

    def blocks(self) -> Any:
        for block in self.source.blocks():
            self.log.append((block.start, len(block), block.t_ns))
            yield block


def oldest_sample_ages_ms(
    send_log: list[tuple[int, int, int]],
    blocks: list[tuple[int, int, int]],
    in_rate: int,
    out_rate: int,
) -> np.ndarray:
    """For each frame: send time - when the block holding its first sample was delivered."""
    starts = np.array([b[0] for b in blocks])
    t_ns = np.array([b[2] for b in blocks])
    ages = []
    for start, _t, sent in send_log:
        i = int(np.searchsorted(starts, start * in_rate // out_rate, side="right")) - 1
        if i >= 0:
            ages.append((sent - t_ns[i]) / 1e6)
    return np.array(ages)


@contextlib.contextmanager
def status_on_pty(cols: int = 120, rows: int = 40) -> Iterator[Any]:
    """The CLI's status line on a pseudo-terminal that a thread reads and drops."""
    from nsaudio.cli.status import StatusLine

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def drain() -> None:
        with contextlib.suppress(OSError):
            while chunk := os.read(master, 65536):
                drained[0] += len(chunk)

    drained = [0]
    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    err = open(slave, "w", encoding="utf-8")  # noqa: SIM115
    status = StatusLine(err)
    try:
        yield status
    finally:
        status.close()
        err.close()  # the reader sees EIO and ends
        reader.join(timeout=5)
        os.close(master)
        status.bytes_drawn = drained[0]


def run_stream(
    server: ServerProcess,
    seconds: float,
    rate: int,
    channels: int,
    frame_ms: float,
    fmt: str,
    block_ms: float,
    seed: int = 0,
    mic: str | None = None,
    quality: str = "LQ",
    api_key: str = "bench",
    status: Any = None,
    detector: Any = None,
) -> dict[str, Any]:
    """One live stream to ``server`` (anything with a ``base_url``); ``mic``: capture from
    that device instead of synthetic; ``status``: a status line to run meanwhile;
    ``detector``: the gate's speech detector (default energy)."""
    source: Any
    if mic is not None:
        from nsaudio.sources.mic import MicSource

        source = MicSource(mic.removeprefix("mic:"), block_ms=block_ms, duration=seconds)
    else:
        block = round(rate * block_ms / 1000)
        audio = speechlike(seconds, rate, channels, seed)
        source = ArraySource(audio, rate, block_frames=block, realtime=True)
    logged = _Logged(source)
    params = StreamParams(format=fmt)
    writer = status.writer("text", status.err, live=True) if status else None
    sink = NeuralSpaceSink(
        server.base_url, api_key, params, live=True, drain_timeout=10, log_sends=True,
        on_result=writer.write if writer else None,
    )  # fmt: skip
    stages = standard_stages(source, fmt, frame_ms=frame_ms, quality=quality, detector=detector)
    pipeline = Pipeline(logged, stages, sink)
    if status and pipeline.gate is not None:
        lanes = [Lane(None, pipeline.gate, sink)]
        status.start(lanes=lanes, source=source, rate=params.rate, pace=0)
    error = None
    try:
        pipeline.run()
    except NsAudioError as err:
        # A loaded machine's recogniser can fall behind and time the drain out: the frames
        # were sent all the same, and their send times are what is measured.
        error = str(err)
    stats = sink.stats()
    sent = list(sink.send_log)  # the frames of the source (the silence made at the end has no t_ns)
    overhead = np.array([(s - t) / 1e6 for _start, t, s in sent])
    source_stats = source.stats() if hasattr(source, "stats") else {}
    return {
        "overhead": overhead,
        "oldest_age": oldest_sample_ages_ms(sent, logged.log, source.rate, params.rate),
        # Frames the sink dropped, and the capture's dropped blocks (10 ms each): what was lost.
        "dropped_frames": stats.get("dropped_frames", 0) + source_stats.get("dropped", 0),
        "overflows": source_stats.get("overflows", 0),
        "frames": stats["frames_sent"],
        "reconnects": stats.get("reconnects", 0),
        "rate": source.rate,
        "error": error,
    }


def plot(
    path: str,
    report: dict[str, Any],
    overhead: np.ndarray,
    oldest_age: np.ndarray,
    quality: str,
    load_avg: list[float],
) -> None:
    """CDFs of the send overhead and of the sample age, with the intrinsic limit drawn in."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def cdf(ax: Any, values: np.ndarray, **kw: Any) -> None:
        v = np.sort(values)
        ax.plot(v, 100 * np.arange(1, len(v) + 1) / len(v), drawstyle="steps-post", **kw)

    frame, intrinsic = report["frame_ms"], report["intrinsic_ms"]
    fig, (ax_o, ax_a) = plt.subplots(1, 2, figsize=(11, 5))
    cdf(ax_o, overhead, color="tab:blue", label="send overhead")
    p = report["send_overhead_ms"]
    for q, ls in (("p50", "--"), ("p99", ":")):
        ax_o.axvline(p[q], color="tab:gray", ls=ls, lw=1, label=f"{q} {p[q]:.2f} ms")
    ax_o.set_xlabel("send time - when the frame's newest sample became available, ms")
    ax_o.set_title("What nsaudio adds (queues, hand-offs, resampling, framing)", fontsize=10)
    cdf(ax_a, overhead + intrinsic, color="tab:blue", label="estimate: intrinsic + overhead")
    if len(oldest_age):
        cdf(
            ax_a,
            oldest_age,
            color="tab:purple",
            label="measured: send - delivery of its first sample",
        )
    ax_a.axvline(intrinsic, color="tab:green", lw=1.5,
                 label=f"intrinsic limit {intrinsic:.1f} ms (frame {frame:g} + resampler "
                 f"hold-back {report['resampler_holdback_ms']:.1f})")  # fmt: skip
    ax_a.axvline(
        frame + 25, color="tab:red", ls=":", lw=1.5, label=f"target: frame + 25 = {frame + 25:g} ms"
    )
    ax_a.set_xlabel("age of the frame's oldest sample when sent, ms")
    ax_a.set_title("Sample age at send", fontsize=10)
    # A few slow frames (a session opening, a stall) would squeeze the rest into one pixel.
    if len(overhead) and overhead.min() > 0 and overhead.max() > 20 * max(p["p50"], 0.01):
        ax_o.set_xscale("log")
        ax_o.set_xlabel(ax_o.get_xlabel() + " (log scale)")
    if len(overhead) and overhead.max() > intrinsic:
        ax_a.set_xscale("log")
        ax_a.set_xlabel(ax_a.get_xlabel() + " (log scale)")
    for ax in (ax_o, ax_a):
        ax.set_ylabel("frames, cumulative %")
        ax.set_ylim(0, 100.5)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False)
    fig.suptitle(
        f"{report['source']} -> {report['format']}, {frame:g} ms frames, soxr {quality}, "
        f"local server on loopback\n{report['frames']} frames, {report['dropped_frames']} dropped; "
        f"{report['machine']['cpus']} CPUs, load average at start {load_avg[0]}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument(
        "--rate", type=int, default=48000, help="synthetic source rate (a sound card's)"
    )
    ap.add_argument("--channels", type=int, default=2)
    ap.add_argument(
        "--block-ms", type=float, default=10, help="source block (a sound card callback)"
    )
    ap.add_argument("--frame-ms", type=float, default=100)
    ap.add_argument("--format", default="pcm_16k", choices=["pcm_16k", "pcm_8k"])
    ap.add_argument(
        "--mic", metavar="mic:SPEC", help="capture from a real device instead (e.g. mic:)"
    )
    ap.add_argument(
        "--quality",
        default="LQ",
        help="soxr quality (default LQ, as nsaudio uses for live sources)",
    )
    ap.add_argument("--play", metavar="FILE", help="with --mic: paplay FILE in a loop meanwhile")
    ap.add_argument(
        "--status", action="store_true", help="run the status line meanwhile, onto a pty"
    )
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument(
        "--plot", metavar="FILE.png", help="draw the latency CDFs into FILE.png (needs matplotlib)"
    )
    args = ap.parse_args()
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        sys.exit("latency: --plot needs matplotlib (pip install -e '.[bench]')")
    load_avg = [round(v, 2) for v in os.getloadavg()]

    out_rate = 16000 if args.format == "pcm_16k" else 8000
    player = None
    if args.play:
        player = subprocess.Popen(["sh", "-c", 'while paplay "$0"; do :; done', args.play])
    try:
        with (
            ServerProcess() as server,  # its own process: the recogniser holds the GIL
            status_on_pty() if args.status else contextlib.nullcontext() as status,
        ):
            res = run_stream(
                server, args.seconds, args.rate, args.channels, args.frame_ms, args.format,
                args.block_ms, mic=args.mic,
                quality=args.quality, status=status,
            )  # fmt: skip
    finally:
        if player is not None:
            player.kill()
    rate = res["rate"]
    hold = holdback_ms(rate, out_rate, round(rate * args.block_ms / 1000), args.quality)
    intrinsic = args.frame_ms + hold
    overhead = res["overhead"]
    report = {
        "seconds": args.seconds,
        "source": f"{args.mic or 'synthetic'} at {rate} Hz, {args.block_ms:g} ms blocks, real time",
        "format": args.format,
        "frame_ms": args.frame_ms,
        "frames": res["frames"],
        "dropped_frames": res["dropped_frames"],
        "overflows": res["overflows"],
        "intrinsic_ms": round(intrinsic, 3),
        "resampler_holdback_ms": round(hold, 3),
        "send_overhead_ms": percentiles(overhead),
        "sample_age_ms": percentiles(overhead + intrinsic),
        "oldest_sample_age_ms": percentiles(res["oldest_age"]),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "status_line": args.status,
        "error": res["error"],
        "load_average": load_avg,
    }
    print(
        f"{report['source']}: {report['frames']} frames, {report['dropped_frames']} dropped, "
        f"{report['overflows']} overflows; intrinsic {intrinsic:.1f} ms "
        f"(frame {args.frame_ms:g} + resampler hold-back {hold:.1f})"
    )
    if status is not None:
        print(f"status line: {status.bytes_drawn} bytes drawn, failed: {status.failed}")
    print(f"load average at start: {load_avg}")
    if res["error"]:
        print(f"the stream ended with an error (the figures stand): {res['error']}")
    for key in ("send_overhead_ms", "sample_age_ms", "oldest_sample_age_ms"):
        p = report[key]
        print(
            f"{key:18s} p50 {p['p50']:8.2f}  p95 {p['p95']:8.2f}  p99 {p['p99']:8.2f}  max {p['max']:8.2f}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    if args.plot:
        plot(args.plot, report, overhead, res["oldest_age"], args.quality, load_avg)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
