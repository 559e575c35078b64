"""N real-time streams at once, from one process, to the local server or any server speaking
the protocol.

    python benchmarks/concurrency.py --streams 300 --seconds 20 --format pcm_8k [--json FILE]
    python benchmarks/concurrency.py --format pcm_8k --find-max [--plot FILE.png]
    python benchmarks/concurrency.py ... --base-url https://voice.neuralspace.ai --api-key-file KEY
    python benchmarks/concurrency.py --api async --streams 300 --seconds 20 --format pcm_8k

``pcm_8k``: telephony-shaped streams. Every stream's audio is already what the service takes
(8 kHz mono int16) and arrives in 20 ms packets at real time. No stream has a thread: one clock
thread wakes for every packet, as an RTP gateway would, and joins each stream's packets into
``--frame-ms`` frames (default 100, nsaudio's frame; 20 hands over every packet), handing a
sink its frame with ``write()`` when the frame's last packet arrives. Streams start a packet
apart in turn, so their frames complete on every tick, not all on one. A frame is stamped
with the time its last packet was due, so a clock starved by the sinks shows in the figures.
Frames are prepared before the run (a few looped speech-like patterns, as bytes), so the
clock's own cost per frame is a Frame and a ``write()``.

``--api async`` (pcm_8k only): the same packets go through ``await stream.send(packet)`` of
``nsaudio.connect()`` streams on one event loop, the stages running on that loop; it also
reports how long each ``send()`` held the loop and the loop's lag (``aio_streams.py``).

``pcm_16k``: each stream is a synthetic live source (48 kHz stereo, 10 ms blocks, released at
real time) through its own pipeline thread and sink, as ``nsaudio stream`` runs one.

Send overhead (ms) = when the sink sent a frame - when the frame's newest sample became
available, over all frames of all streams; dropped frames and reconnects come from the sinks.
Without ``--base-url`` the benchmark starts its own local server in a child process, with the
cheap recogniser (``--engine cheap``: results from the server's VAD, text ``[speech 1.2 s]``)
unless told otherwise: pocketsphinx decodes only about 2.5 streams per core.

``--gate-vad energy|silero``: every stream's frames are labelled by a speech gate of its own
(label only, every frame still sent) instead of being labelled in advance. For ``pcm_8k`` the
clock thread scores each tick's frames of all streams at once (``push_together``: with
Silero, one onnxruntime call per 32 ms window step for all of them, through one shared
``SileroBatcher``), before handing them to the sinks, so the scoring's cost shows in the send
overhead; its CPU time on the clock thread is reported per stream-frame (a 32 ms window of
one stream). For ``pcm_16k`` each pipeline's gate scores on its own thread, Silero's through
the shared batcher's group commit.

``--find-max``: the largest N whose run drops nothing, fails no stream, reconnects nowhere
and keeps the p99 send overhead within ``--max-p99-ms`` (50): N doubles from ``--streams``
until a run fails, then bisects, with short runs (``--seconds``, default 10 here).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# This checkout's nsaudio (not an installed copy), and the benchmarks beside this one.
sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]

from aio_streams import run_async_telephony  # noqa: E402
from latency import percentiles, run_stream, speechlike  # noqa: E402

from nsaudio.blocks import Frame  # noqa: E402
from nsaudio.detectors import SileroBatcher, make_detector  # noqa: E402
from nsaudio.neuralspace.protocol import StreamParams  # noqa: E402
from nsaudio.server.child import ServerProcess  # noqa: E402
from nsaudio.sinks.neuralspace import NeuralSpaceSink  # noqa: E402
from nsaudio.stages import SpeechGate, push_together  # noqa: E402

PACKET_MS = 20  # telephony: one RTP packet
PATTERNS = 8  # distinct looped audio patterns shared by the streams
PATTERN_SECONDS = 10.0
PHRASE_PERIOD_S = 5.0  # latency.speechlike: phrases of syllables at 0.2 Hz
QUIET_END_S = 0.5
OPEN_WORKERS = 16  # sinks opened (token, handshake) at once
CLOSE_WORKERS = 64  # sinks drained at once after the run


@dataclass
class Target:
    base_url: str
    api_key: str
    description: str


def _percentiles_or_none(values: np.ndarray) -> dict[str, float] | None:
    return percentiles(values) if len(values) else None


def telephony_packets(rate: int) -> list[list[tuple[bytes, bool]]]:
    """PATTERNS loops of speech-like audio, cut into (pcm, speech) 20 ms packets.

    The audio's phrases (about 3 s of syllables, then 2 s of pause: a 5 s period that the
    PATTERN_SECONDS loop holds whole) start at a different moment in each pattern. ``speech``
    is the packet's level against -40 dBFS."""
    per_packet = rate * PACKET_MS // 1000
    packets_per_loop = round(PATTERN_SECONDS * 1000 / PACKET_MS)
    loops = []
    for p in range(PATTERNS):
        x = speechlike(packets_per_loop * per_packet / rate, rate, 1, seed=p)[:, 0]
        x = np.roll(x, round(p * PHRASE_PERIOD_S / PATTERNS * rate))
        pcm = np.clip(np.rint(x * 32767), -32768, 32767).astype("<i2")
        cut = pcm.reshape(packets_per_loop, per_packet)
        level = np.sqrt(np.mean(cut.astype(np.float64) ** 2, axis=1))
        speech = level > 0.01 * 32768
        loops.append([(row.tobytes(), bool(s)) for row, s in zip(cut, speech, strict=True)])
    return loops


def joined(loop: list[tuple[bytes, bool]], m: int) -> list[tuple[bytes, bool]]:
    """For every packet of a loop, the frame of ``m`` packets starting there (what a framer
    joining ``m`` packets makes), with its speech label: prepared once, as bytes."""
    n = len(loop)
    out = []
    for j in range(n):
        packets = [loop[(j + d) % n] for d in range(m)]
        out.append((b"".join(pcm for pcm, _ in packets), any(s for _, s in packets)))
    return out


def quiet_ends(loop: list[tuple[bytes, bool]]) -> list[int]:
    """Packets of a loop at least QUIET_END_S into a pause: where a stream may end, so that
    its last speech is a whole phrase, one the server has surely taken for speech (a stream
    cut a few ms into a phrase would leave speech the server's VAD never opens a segment
    for, and the sink would wait for a final result that cannot come)."""
    need = round(QUIET_END_S * 1000 / PACKET_MS)
    n = len(loop)
    return [j for j in range(n) if not any(loop[(j - d) % n][1] for d in range(need))]


def _open_all(sinks: list[Any], rate: int) -> dict[int, BaseException]:
    """Open every sink (a few at a time: each fetches a token and shakes hands); the failures."""

    def one(i: int) -> BaseException | None:
        try:
            sinks[i].open(rate)
        except Exception as err:
            return err
        return None

    with ThreadPoolExecutor(OPEN_WORKERS) as pool:
        return {i: e for i, e in enumerate(pool.map(one, range(len(sinks)))) if e is not None}


def _close_all(sinks: list[Any], failed: dict[int, BaseException], abort: bool) -> None:
    """Drain and close every sink at once (abort those that failed, or all with ``abort``);
    adds close failures to ``failed``."""

    def one(i: int) -> BaseException | None:
        try:
            if abort or i in failed:
                sinks[i].abort()
            else:
                sinks[i].close()
        except Exception as err:
            return err
        return None

    with ThreadPoolExecutor(min(CLOSE_WORKERS, max(1, len(sinks)))) as pool:
        for i, err in enumerate(pool.map(one, range(len(sinks)))):
            if err is not None:
                failed.setdefault(i, err)


def make_gates(vad: str | None, n: int) -> tuple[list[SpeechGate] | None, SileroBatcher | None]:
    """A label-only gate per stream, Silero's sharing one batcher (None, None: no gate)."""
    if vad is None:
        return None, None
    batcher = SileroBatcher() if vad == "silero" else None
    return [SpeechGate(make_detector(vad, batcher=batcher)) for _ in range(n)], batcher


def run_telephony(
    target: Target, n: int, seconds: float, frame_ms: int, vad: str | None = None
) -> dict[str, Any]:
    """N pcm_8k streams fed by one clock thread (this one); see the module docstring."""
    params = StreamParams(format="pcm_8k")
    rate = params.rate
    m = frame_ms // PACKET_MS  # packets a frame
    per_frame = rate * frame_ms // 1000
    n_frames = round(seconds * 1000 / frame_ms)
    audio_end = n_frames * per_frame
    packets = telephony_packets(rate)
    loops = [joined(loop, m) for loop in packets]
    ends = [quiet_ends(loop) for loop in packets]
    loop_len = len(packets[0])
    # No on_result: each would bring a delivery thread; the transcripts count the results.
    sinks = [
        NeuralSpaceSink(
            target.base_url, target.api_key, params, live=True, drain_timeout=10, log_sends=True
        )
        for _ in range(n)
    ]
    # Stream i's call starts i % m packets after the first, so that frames complete on
    # every tick, not all on one in m; it loops one pattern from its own offset, so that
    # phrases do not start in step, chosen so that the stream ends in a pause.
    groups: list[list[tuple[int, Any, list[tuple[bytes, bool]], int]]] = [[] for _ in range(m)]
    for i, sink in enumerate(sinks):
        p = i % PATTERNS
        end = ends[p][(i // PATTERNS * 7) % len(ends[p])]
        groups[i % m].append((i, sink, loops[p], (end - (n_frames * m - 1)) % loop_len))
    gates, batcher = make_gates(vad, n)
    gate_cpu = 0.0
    failed = _open_all(sinks, rate)
    streaming = not failed  # one stream that cannot even start fails the run
    ticks = n_frames * m + m - 1
    late_ns = np.zeros(ticks, np.int64)
    threads = threading.active_count()
    cpu0, wall0, server0 = time.process_time(), time.monotonic(), _children_cpu()
    if streaming:
        period = PACKET_MS * 1_000_000
        t0 = time.monotonic_ns() + 50_000_000
        for k in range(ticks):
            due = t0 + (k + 1) * period  # packet k arrives as it ends
            delay = due - time.monotonic_ns()
            if delay > 0:
                time.sleep(delay / 1e9)
            late_ns[k] = time.monotonic_ns() - due
            # Frame j of the streams that started at packet `phase` ends with packet
            # phase + j * m + m - 1: the group whose framer this packet completes.
            phase = (k + 1) % m
            j = (k + 1 - phase) // m - 1
            if not 0 <= j < n_frames:
                continue
            start = j * per_frame
            tick = [
                (i, sink, Frame(pcm, start, rate, due, speech=speech))
                for i, sink, loop, offset in groups[phase]
                if i not in failed
                for pcm, speech in (loop[(j * m + offset) % loop_len],)
            ]
            if gates is not None:  # the gates' labels instead of the prepared ones
                cpu0_gate = time.thread_time()
                push_together([gates[i] for i, _, _ in tick], [f for _, _, f in tick])
                gate_cpu += time.thread_time() - cpu0_gate
            for i, sink, frame in tick:
                try:
                    sink.write(frame)
                except Exception as err:
                    failed[i] = err
            if k == ticks // 2:
                threads = threading.active_count()
    streamed_s = time.monotonic() - wall0
    cpu = time.process_time() - cpu0
    server_cpu = _cpu_since(server0)
    _close_all(sinks, failed, abort=not streaming)
    overhead: list[np.ndarray] = []
    dropped = reconnects = sent = 0
    for sink in sinks:
        stats = sink.stats()
        dropped += int(stats.get("dropped_frames", 0))
        reconnects += int(stats.get("reconnects", 0))
        sent += int(stats.get("frames_sent", 0))
        log = np.array(sink.send_log, dtype=np.int64).reshape(-1, 3)
        log = log[log[:, 0] < audio_end]  # the trailing silence of the drain is not audio
        _, first = np.unique(log[:, 0], return_index=True)  # a frame replayed: its first send
        overhead.append((log[first, 2] - log[first, 1]) / 1e6)
    return {
        "streams": n,
        "overhead": np.concatenate(overhead) if overhead else np.zeros(0),
        "dropped_frames": dropped,
        "reconnects": reconnects,
        "frames": n_frames * n,
        "frames_sent": sent,
        "full_results": sum(sink.transcript.count for sink in sinks),
        "failed_streams": len(failed),
        "errors": _error_kinds(failed.values()),
        "clock_late_ms": percentiles(late_ns / 1e6),
        "gate": _gate_figures(vad, gate_cpu, gates, batcher),
        "threads": threads,
        "streaming_s": round(streamed_s, 3),
        "client_cpu_s": round(cpu, 3),
        "server_cpu_s": None if server_cpu is None else round(server_cpu, 3),
    }


def _gate_figures(
    vad: str | None, cpu: float, gates: list[SpeechGate] | None, batcher: SileroBatcher | None
) -> dict[str, Any] | None:
    """The gates' cost: CPU on the clock thread, per 32 ms window of one stream for Silero."""
    if vad is None or gates is None:
        return None
    out: dict[str, Any] = {"vad": vad, "cpu_s": round(cpu, 3)}
    if batcher is not None and batcher.windows:
        out |= {
            "windows": batcher.windows,
            "calls": batcher.calls,
            "us_per_stream_frame": round(cpu / batcher.windows * 1e6, 1),
        }
    return out


def run_pipelines(
    target: Target, n: int, seconds: float, fmt: str, frame_ms: float, vad: str | None = None
) -> dict[str, Any]:
    """N synthetic 48 kHz live sources, each through its own pipeline thread and sink."""
    results: list[dict[str, Any]] = [{} for _ in range(n)]
    errors: list[BaseException] = []
    batcher = SileroBatcher() if vad == "silero" else None

    def one(i: int) -> None:
        try:
            detector = make_detector(vad, batcher=batcher) if vad is not None else None
            results[i] = run_stream(
                target, seconds, 48000, 2, frame_ms, fmt, 10, seed=i, api_key=target.api_key,
                detector=detector,
            )  # fmt: skip
        except Exception as err:
            errors.append(err)

    cpu0, wall0, server0 = time.process_time(), time.monotonic(), _children_cpu()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    peak_threads = threading.active_count()
    for t in threads:
        t.join()
    server_cpu = _cpu_since(server0)
    done = [r for r in results if r]
    return {
        "streams": n,
        "overhead": np.concatenate([r["overhead"] for r in done]) if done else np.zeros(0),
        "dropped_frames": int(sum(r["dropped_frames"] for r in done)),
        "reconnects": int(sum(r["reconnects"] for r in done)),
        "frames": int(sum(r["frames"] for r in done)),
        "frames_sent": int(sum(r["frames"] for r in done)),
        "failed_streams": n - len(done),
        "errors": _error_kinds(errors),
        "clock_late_ms": None,
        "gate": None
        if batcher is None
        else {"vad": vad, "windows": batcher.windows, "calls": batcher.calls},
        "threads": peak_threads,
        "streaming_s": round(time.monotonic() - wall0, 3),
        "client_cpu_s": round(time.process_time() - cpu0, 3),
        "server_cpu_s": None if server_cpu is None else round(server_cpu, 3),
    }


def _error_kinds(errors: Any) -> list[str]:
    return sorted({f"{type(e).__name__}: {e}" for e in errors})[:5]


def _children_cpu() -> float | None:
    """CPU seconds used so far by this process's children (the local server), or None."""
    try:
        import psutil
    except ImportError:
        return None
    total = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            t = child.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def _cpu_since(before: float | None) -> float | None:
    now = _children_cpu()
    return None if now is None or before is None else now - before


def passes(run: dict[str, Any], max_p99_ms: float) -> bool:
    p99 = run["send_overhead_ms"]["p99"] if run["send_overhead_ms"] else float("inf")
    return (
        not run["failed_streams"]
        and not run["dropped_frames"]
        and not run["reconnects"]
        and p99 <= max_p99_ms
    )


def summarise(run: dict[str, Any]) -> dict[str, Any]:
    """A run's figures for the report: all but the overhead of every frame."""
    return {k: v for k, v in run.items() if k != "overhead"}


def line(run: dict[str, Any]) -> str:
    p = run["send_overhead_ms"]
    over = (
        f"send overhead ms p50 {p['p50']:.2f} p95 {p['p95']:.2f} p99 {p['p99']:.2f} max {p['max']:.2f}"
        if p
        else "no frame sent"
    )
    if run.get("loop_lag_ms"):
        lag, call = run["loop_lag_ms"], run["send_call_ms"]
        over += (
            f"; send() held the loop p50 {call['p50']:.3f} p99 {call['p99']:.3f} max "
            f"{call['max']:.2f} ms; loop lag p50 {lag['p50']:.2f} p99 {lag['p99']:.2f} "
            f"max {lag['max']:.2f} ms"
        )
    extra = f", {run['failed_streams']} streams failed" if run["failed_streams"] else ""
    if run.get("full_results") is not None:
        extra += f", {run['full_results']} full results"
    gate = run.get("gate")
    if gate and "us_per_stream_frame" in gate:
        extra += (f"; {gate['vad']} gate: {gate['us_per_stream_frame']:.1f} µs CPU per "
                  f"stream-frame on the clock thread, {gate['windows'] / gate['calls']:.0f} "
                  "streams a call")  # fmt: skip
    elif gate and "calls" in gate and gate["calls"]:
        extra += f"; {gate['vad']} gate: {gate['windows'] / gate['calls']:.1f} streams a call"
    cpu = f"; CPU s: this process {run['client_cpu_s']:.1f}"
    if run["server_cpu_s"] is not None:
        cpu += f", server {run['server_cpu_s']:.1f}"
    return (
        f"{run['streams']:5d} streams: {run['frames_sent']} frames sent, {run['dropped_frames']} dropped"
        f", {run['reconnects']} reconnects{extra}; {over}; {run['threads']} threads{cpu}"
    )


def find_max(
    trial: Callable[[int], dict[str, Any]], start: int, limit: int, max_p99_ms: float
) -> tuple[int, list[dict[str, Any]]]:
    """Double N from ``start`` until a run fails (or ``limit``), then bisect to within 5 %
    (at least 5 streams). Returns the largest N that passed (0 if none) and every run."""
    runs: list[dict[str, Any]] = []

    def ok(n: int) -> bool:
        run = trial(n)
        run["passed"] = passes(run, max_p99_ms)
        runs.append(run)
        print(("pass " if run["passed"] else "FAIL ") + line(run), flush=True)
        time.sleep(1.0)  # let the server close the last run's sessions
        return bool(run["passed"])

    good, bad, n = 0, None, start
    while n <= limit:
        if not ok(n):
            bad = n
            break
        good = n
        if n == limit:
            break
        n = min(2 * n, limit)
    if bad is None:
        return good, runs
    while bad - good > max(5, good // 20):
        mid = (good + bad) // 2
        if ok(mid):
            good = mid
        else:
            bad = mid
    return good, runs


def plot(path: str, report: dict[str, Any], overhead: np.ndarray | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    title = f"{report['format']}, {report['frame_ms']:g} ms frames, {report['server']}"
    if "find_max" in report:
        runs = sorted(report["runs"], key=lambda r: r["streams"])
        n = [r["streams"] for r in runs if r["send_overhead_ms"]]
        for key, style in (("p50", "o-"), ("p99", "s-"), ("max", "^:")):
            ax.plot(
                n,
                [r["send_overhead_ms"][key] for r in runs if r["send_overhead_ms"]],
                style,
                label=key,
            )
        for r in runs:
            if not r["passed"]:
                ax.axvline(r["streams"], color="red", alpha=0.2)
        ax.axhline(
            report["max_p99_ms"], color="grey", ls="--", label=f"{report['max_p99_ms']:g} ms"
        )
        ax.axvline(report["find_max"], color="green", label=f"max N = {report['find_max']}")
        ax.set_xlabel("concurrent streams (red: failed run)")
        ax.set_ylabel("send overhead (ms)")
        ax.set_yscale("log")
        ax.set_title(f"Send overhead against streams: {title}")
    else:
        x = np.sort(overhead if overhead is not None else np.zeros(0))
        ax.plot(x, np.arange(1, len(x) + 1) / max(1, len(x)), label=f"{len(x)} frames")
        ax.axvline(
            report["max_p99_ms"], color="grey", ls="--", label=f"{report['max_p99_ms']:g} ms"
        )
        ax.set_xscale("log")
        ax.set_xlabel("send overhead (ms)")
        ax.set_ylabel("fraction of frames")
        ax.set_title(f"{report['streams']} streams x {report['seconds']:g} s: {title}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _raise_fd_limit() -> None:
    """Every stream is a socket here and one in the local server (which inherits this)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--streams",
        type=int,
        help="streams at once (default 4; with --find-max, where the search starts: 50)",
    )
    ap.add_argument(
        "--seconds", type=float, help="length of each run (default 20; 10 with --find-max)"
    )
    ap.add_argument("--format", default="pcm_16k", choices=["pcm_16k", "pcm_8k"])
    ap.add_argument(
        "--api",
        default="threads",
        choices=["threads", "async"],
        help="threads: sinks written by a clock thread (pcm_8k) or pipelines (pcm_16k); "
        "async: nsaudio.connect() streams on one event loop (pcm_8k)",
    )
    ap.add_argument(
        "--frame-ms",
        type=float,
        help="frame sent (default 100, as nsaudio stream; for pcm_8k a whole number of 20 ms "
        "packets, 20 sending each packet as it comes)",
    )
    ap.add_argument(
        "--base-url", help="any server speaking the protocol (default: a local server started here)"
    )
    ap.add_argument(
        "--api-key-file",
        metavar="FILE",
        help="API key for --base-url (default: NS_API_KEY, else any)",
    )
    ap.add_argument(
        "--engine",
        default="cheap",
        choices=["cheap", "pocketsphinx"],
        help="recogniser of the local server (default cheap)",
    )
    ap.add_argument(
        "--gate-vad",
        choices=["energy", "silero"],
        help="label every frame with a speech gate of each stream's own (default: labels "
        "prepared in advance)",
    )
    ap.add_argument(
        "--find-max", action="store_true", help="search for the largest N that keeps up"
    )
    ap.add_argument(
        "--max-p99-ms",
        type=float,
        default=50.0,
        help="--find-max: p99 send overhead allowed (default 50)",
    )
    ap.add_argument(
        "--max-streams",
        type=int,
        default=2048,
        help="--find-max: stop doubling here (default 2048)",
    )
    ap.add_argument("--plot", metavar="FILE.png", help="overhead against N (--find-max) or its CDF")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()
    streams = args.streams or (50 if args.find_max else 4)
    seconds = args.seconds or (10.0 if args.find_max else 20.0)
    frame_ms = args.frame_ms or 100
    if streams < 1 or seconds <= 0:
        ap.error("--streams and --seconds must be positive")
    if args.api == "async" and args.format != "pcm_8k":
        ap.error("--api async runs telephony streams: give --format pcm_8k")
    if args.format == "pcm_8k" and frame_ms % PACKET_MS:
        ap.error(f"--frame-ms must be a whole number of {PACKET_MS} ms packets for pcm_8k")

    from nsaudio.cli.service import read_api_key

    api_key = read_api_key(args.api_key_file) or "bench"
    _raise_fd_limit()
    server: ServerProcess | None = None
    if args.base_url:
        target = Target(args.base_url, api_key, args.base_url)
    else:
        cap = max(args.max_streams if args.find_max else streams, 16)
        server = ServerProcess(engine=args.engine, max_sessions=cap).start()
        target = Target(server.base_url, api_key, f"local server, {args.engine} recogniser")
        if args.engine == "cheap":
            print(
                "local server with the cheap recogniser: results come from its VAD, text '[speech N s]'"
            )

    def server_cpu(before: float | None = None) -> float | None:
        return _children_cpu() if before is None else _cpu_since(before)

    def trial(n: int) -> dict[str, Any]:
        if args.api == "async":
            packets = telephony_packets(8000)
            run = run_async_telephony(
                target, n, seconds, int(frame_ms), packets, [quiet_ends(p) for p in packets],
                percentiles, _error_kinds, server_cpu,
            )  # fmt: skip
        elif args.format == "pcm_8k":
            run = run_telephony(target, n, seconds, int(frame_ms), args.gate_vad)
        else:
            run = run_pipelines(target, n, seconds, args.format, frame_ms, args.gate_vad)
        run["send_overhead_ms"] = _percentiles_or_none(run["overhead"])
        return run

    report: dict[str, Any] = {
        "format": args.format,
        "api": args.api,
        "seconds": seconds,
        "frame_ms": frame_ms,
        "server": target.description,
        "sources": (
            f"8 kHz mono int16, 20 ms packets sent by one clock coroutine through "
            f"nsaudio.connect() on one event loop, framed into {frame_ms:g} ms frames"
            if args.api == "async"
            else f"8 kHz mono int16, 20 ms packets released by one clock thread, joined into "
            f"{frame_ms:g} ms frames"
            if args.format == "pcm_8k"
            else "48 kHz stereo, 10 ms blocks, a pipeline thread per stream"
        ),
        "max_p99_ms": args.max_p99_ms,
        "gate_vad": args.gate_vad,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average": os.getloadavg(),
        },
    }
    overhead = None
    try:
        if args.find_max:
            best, runs = find_max(trial, streams, args.max_streams, args.max_p99_ms)
            report.update(
                find_max=best,
                runs=[summarise(r) for r in runs],
            )
            best_run = max(
                (r for r in runs if r["passed"]), key=lambda r: r["streams"], default=None
            )
            report.update(summarise(best_run) if best_run else {"streams": 0})
            print(
                f"largest N with no drop, no reconnect and p99 send overhead <= {args.max_p99_ms:g} ms: {best}"
            )
        else:
            run = trial(streams)
            overhead = run["overhead"]
            report.update(summarise(run))
            print(f"{seconds:g} s of {args.format} ({target.description}):")
            print(line(run))
            if run["errors"]:
                print("errors: " + "; ".join(run["errors"]))
    finally:
        if server is not None:
            server.stop()
    if args.plot:
        plot(args.plot, report, overhead)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
