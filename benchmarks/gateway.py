"""N simulated phone calls through ``nsaudio gateway`` to the cheap local server, on this machine.

    python benchmarks/gateway.py --calls 200 --seconds 20 --protocol twilio [--json FILE]
    python benchmarks/gateway.py --calls 200 --protocol twilio --spread-ms 20
    python benchmarks/gateway.py --calls 200 --protocol audiosocket --workers 2
    python benchmarks/gateway.py --protocol twilio --find-max
    python benchmarks/gateway.py --calls 100 --protocol audiosocket --gate-vad silero

Three kinds of process share the machine: the cheap local server (``nsaudio serve --engine
cheap``), the gateway (``--workers`` processes of it on the same ports, SO_REUSEPORT, as
``nsaudio gateway --workers N`` runs them), and this process, the callers. The callers have
one clock: a single task wakes every 5 ms and sends each call the 20 ms packets that are due,
Twilio's as JSON media messages (byte for byte in Twilio's layout) of base64 µ-law,
AudioSocket's as 0x10 frames, all prepared before the run.

Calls start at random moments within ``--spread-ms`` (default 100, one frame: seeded, the
same in every run), as phone calls start at any moment: their 100 ms frames then end at any
phase, and a 5 ms tick serves a quarter of the calls' packets. ``--spread-ms 20`` is the
worst case for the gateway: every call's frame ends in the same fifth of each 100 ms, so the
work each frame costs (the stages, the speech detector, the session's send and its ping)
comes in bursts five times as dense. (Before December 2026 this benchmark always ran so,
evenly spaced over 20 ms.)

Added latency, packet in -> frame out: for every frame the gateway sent to the service, the
time it was written to the socket (the gateway's send log) minus the time the caller wrote
the frame's last packet (both ``CLOCK_MONOTONIC``, one machine). It covers the caller's
socket, the gateway's parsing, jitter buffer, stages and session engine. Behind schedule is
the same against the time that packet was due by the callers' clock, so it adds how late
the callers themselves were (their clock ticks every 5 ms, and shares the machine). Drops
are packets the platform never delivered (the jitter buffer's gaps and late packets) plus
audio the sessions dropped before sending; reconnects and verdicts come from each call's end.
CPU per call is the gateway processes' CPU time while the clock ran (not the calls' set-up
and end), per call, as a share of one core.

``--gate-vad energy|silero``: every track gated (``--gate``) with that detector (Silero scores
the tracks' frames together, in a worker thread beside the gateway's loop, and a second line
says how they were batched), and the calls are real
speech (flite sentences in room noise, which needs flite and sox) instead of the tones. The
pre-roll the gate holds back goes out with the onset after it, up to 300 ms after it came:
those frames are left out of the added latency, which then tells how late the speech went.

``--find-max``: the largest N with no drop, no reconnect, every call complete and the p99
added latency within ``--max-p99-ms`` (50): N doubles from ``--calls`` until a run fails, then
bisects (runs of ``--seconds``, default 10 for it).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import os
import platform
import random
import resource
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from latency import percentiles, speechlike

PACKET = 160  # 20 ms at 8 kHz
PACKET_NS = 20_000_000
TICK_S = 0.005
PATTERNS = 8


# -- the gateway's side: run in its own process ---------------------------------------------


def serve(args: argparse.Namespace) -> int:
    """One gateway process: listen, print the ports, drain on SIGTERM, dump what it measured."""
    from nsaudio.gateway import Gateway, GatewayConfig, ServiceTarget, TrackSettings
    from nsaudio.neuralspace.protocol import StreamParams

    # As `nsaudio gateway` does (cli/main.py: run()): what was imported is frozen out of
    # every later collection, so the cyclic GC walks only what the calls make.
    gc.freeze()

    calls: list[Any] = []

    async def main() -> None:
        config = GatewayConfig(
            service=ServiceTarget(args.base_url, "bench"),
            track=TrackSettings(params=StreamParams(format="pcm_8k"), log_sends=True,
                                gate=args.gate_vad is not None,
                                gate_vad=args.gate_vad or "energy"),
            twilio=("127.0.0.1", args.twilio_port), audiosocket=("127.0.0.1", args.audiosocket_port),
            max_calls=5000, reuse_port=True, handshake_timeout=30, idle_timeout=30,
        )  # fmt: skip
        gw = Gateway(config)
        start_call = gw.start_call

        def recording(*a: Any, **kw: Any) -> Any:
            call = start_call(*a, **kw)
            if call is not None:
                calls.append(call)
            return call

        gw.start_call = recording  # type: ignore[method-assign]
        await gw.start()
        print(f"ready {gw.twilio_port} {gw.audiosocket_port}", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, stop.wait)
        cpu0 = _cpu()
        await gw.drain()
        loop = type(asyncio.get_running_loop()).__module__.split(".")[0]  # uvloop or asyncio
        out = {"cpu_s": cpu0, "ends": [e.to_dict() for e in gw.ended], "frames": {},
               "silero": _silero_batches(), "loop": loop}  # fmt: skip
        for call in calls:
            sink = call.sessions["caller"].sink
            out["frames"][call.call_id] = [(start, sent) for start, _, sent in sink.send_log or ()]
        Path(args.dump).write_text(json.dumps(out))

    import threading

    from nsaudio.gateway.server import engine_loop

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # On the session engine's loop, as the command runs it; the main thread waits.
    asyncio.run_coroutine_threadsafe(main(), engine_loop()).result()
    return 0


def _silero_batches() -> dict[str, float]:
    """What this loop's batched Silero scoring did (nothing without ``--gate-vad silero``)."""
    from nsaudio.aio.scoring import _SCORINGS

    out = {"batches": 0, "jobs": 0, "windows": 0, "calls": 0, "run_s": 0.0}
    for scoring in _SCORINGS.get(asyncio.get_running_loop(), {}).values():
        b = scoring.batcher
        out["batches"] += b.batches
        out["jobs"] += b.jobs
        out["windows"] += b.windows
        out["calls"] += b.calls
        out["run_s"] += scoring.run_seconds
    return out


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# -- the callers' side -----------------------------------------------------------------------


def _ulaw(x: np.ndarray) -> bytes:
    s = np.clip(np.round(x * 32768), -32768, 32767).astype(np.int32)
    sign = np.where(s < 0, 0x80, 0)
    mag = np.minimum(np.abs(s), 32635) + 0x84
    exp = np.clip(np.floor(np.log2(mag)).astype(np.int32) - 7, 0, 7)
    mant = (mag >> (exp + 3)) & 0x0F
    return (~(sign | (exp << 4) | mant) & 0xFF).astype(np.uint8).tobytes()


def _patterns(seconds: float, voices: bool = False) -> list[np.ndarray]:
    """Speech-like audio (phrases of syllables and pauses), a few distinct loops; with
    ``voices``, real speech instead (the test suite's recording: three flite sentences 7 s
    apart in room noise, at 8 kHz, each loop starting 3 s further into it), which a neural
    detector takes for speech where it would not take the tones."""
    n = int(seconds * 8000) // PACKET * PACKET
    quiet = np.zeros(8000, np.float32)  # each call ends with a second of quiet, as calls do
    if not voices:
        return [
            np.concatenate([speechlike(n / 8000 - 1, 8000, 1, seed=k)[:, 0], quiet])[:n]
            for k in range(PATTERNS)
        ]
    import tempfile

    import soxr

    from tests.recordings import three_utterances_in_noise

    with tempfile.TemporaryDirectory() as tmp:
        rec = three_utterances_in_noise(Path(tmp))
    x = soxr.resample(rec.samples.astype(np.float32) / 32768, rec.rate, 8000)
    loop = np.tile(x, int(n / len(x)) + 2)
    return [
        np.concatenate([loop[k * 24000 : k * 24000 + n - 8000], quiet])[:n] for k in range(PATTERNS)
    ]


def _twilio_packets(call_sid: str, x: np.ndarray) -> tuple[bytes, list[bytes]]:
    def frame(text: str) -> bytes:  # masked client text frames, built once: the clock writes bytes
        return _mask_frame(text.encode())

    start = {
        "event": "start", "streamSid": "MZ" + call_sid[2:],
        "start": {"streamSid": "MZ" + call_sid[2:], "callSid": call_sid, "accountSid": "AC1",
                  "tracks": ["inbound"], "customParameters": {},
                  "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}},
    }  # fmt: skip
    u = _ulaw(x)
    media = []
    for k in range(len(u) // PACKET):  # byte for byte Twilio's layout: compact, in this order
        payload = base64.b64encode(u[k * PACKET : (k + 1) * PACKET]).decode()
        media.append(frame(
            f'{{"event":"media","sequenceNumber":"{k + 3}","media":{{"track":"inbound",'
            f'"chunk":"{k + 1}","timestamp":"{k * 20}","payload":"{payload}"}},'
            f'"streamSid":"MZ{call_sid[2:]}"}}'
        ))  # fmt: skip
    head = frame('{"event": "connected", "protocol": "Call", "version": "1.0.0"}') + frame(
        json.dumps(start)
    )
    media.append(frame('{"event": "stop", "stop": {}}'))
    return head, media


def _mask_frame(payload: bytes) -> bytes:
    """A WebSocket client frame (FIN, text), masked with a fixed key."""
    key = b"\x37\xfa\x21\x3d"
    n = len(payload)
    head = bytes([0x81])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
    arr = np.frombuffer(payload, np.uint8)
    mask = np.resize(np.frombuffer(key, np.uint8), n)
    return head + key + (arr ^ mask).tobytes()


def _audiosocket_packets(call_id: uuid.UUID, x: np.ndarray) -> tuple[bytes, list[bytes]]:
    pcm = np.clip(np.round(x * 32768), -32768, 32767).astype("<i2").tobytes()
    head = bytes((0x01, 0, 16)) + call_id.bytes
    frames = [
        bytes((0x10, 0x01, 0x40)) + pcm[i : i + 2 * PACKET] for i in range(0, len(pcm), 2 * PACKET)
    ]
    frames.append(b"\x00\x00\x00")
    return head, frames


async def _open_twilio(port: int, head: bytes) -> asyncio.StreamWriter:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET /media HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    response = await reader.readuntil(b"\r\n\r\n")
    if b" 101 " not in response.split(b"\r\n", 1)[0]:
        raise RuntimeError(f"upgrade refused: {response[:60]!r}")
    writer.write(head)
    writer._bench_reader = reader  # type: ignore[attr-defined]  # kept open until the end
    return writer


async def _open_audiosocket(port: int, head: bytes) -> asyncio.StreamWriter:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head)
    writer._bench_reader = reader  # type: ignore[attr-defined]
    return writer


async def _callers(
    protocol: str,
    ports: tuple[int, int],
    n: int,
    seconds: float,
    mark: Any,
    voices: bool,
    spread_ms: float,
) -> dict[str, Any]:
    patterns = _patterns(seconds, voices)
    calls = []
    for i in range(n):
        x = patterns[i % PATTERNS]
        if protocol == "twilio":
            cid = f"CA{i:032d}"
            head, packets = _twilio_packets(cid, x)
        else:
            u = uuid.UUID(int=i + 1)
            cid = str(u)
            head, packets = _audiosocket_packets(u, x)
        calls.append((cid, head, packets))
    opener = _open_twilio if protocol == "twilio" else _open_audiosocket
    port = ports[0] if protocol == "twilio" else ports[1]
    sem = asyncio.Semaphore(32)

    async def open_one(head: bytes) -> asyncio.StreamWriter:
        async with sem:
            return await opener(port, head)

    writers = await asyncio.gather(*(open_one(head) for _, head, _ in calls))
    # The calls have started (Twilio's start, AudioSocket's UUID): their sessions open, as a
    # call's do while it rings through; the clock starts once they have had time to.
    await asyncio.sleep(max(2.0, n / 100))
    t0 = time.monotonic_ns() + 50_000_000
    rng = random.Random(n)  # when each call starts: the same in every run of n calls
    offsets = [rng.randrange(max(1, round(spread_ms * 1e6))) for _ in range(n)]
    sent = [0] * n
    total = len(calls[0][2])
    written = [[0] * total for _ in range(n)]  # when each packet was written, ns
    late_ticks = 0
    mark("start")
    while True:
        now = time.monotonic_ns()
        pending = False
        for i, (w, (_, _, packets)) in enumerate(zip(writers, calls, strict=True)):
            k = sent[i]
            while k < total and t0 + offsets[i] + k * PACKET_NS <= now:
                w.write(packets[k])
                written[i][k] = time.monotonic_ns()
                k += 1
            if k - sent[i] > 1:
                late_ticks += 1
            sent[i] = k
            pending |= k < total
        if not pending:
            break
        await asyncio.sleep(TICK_S)
    mark("end")
    for w in writers:
        await w.drain()
    await asyncio.sleep(0.5)
    for w in writers:
        w.close()
    return {
        "t0": t0,
        "offsets": dict(zip([c[0] for c in calls], offsets, strict=True)),
        "written": dict(zip([c[0] for c in calls], written, strict=True)),
        "late_ticks": late_ticks,
    }


def run(args: argparse.Namespace, n: int, seconds: float, base_url: str) -> dict[str, Any]:
    procs, dumps = [], []
    tw = au = 0
    for w in range(args.workers):
        dump = Path(f"/tmp/nsaudio-gateway-bench-{os.getpid()}-{w}.json")
        dumps.append(dump)
        proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", "--base-url", base_url, "--dump", str(dump),
             "--twilio-port", str(tw), "--audiosocket-port", str(au),
             *(["--gate-vad", args.gate_vad] if args.gate_vad else [])],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        line = proc.stdout.readline().split()  # type: ignore[union-attr]
        assert line and line[0] == "ready", line
        tw, au = int(line[1]), int(line[2])  # the next worker shares these ports
        procs.append(proc)
    marks: dict[str, tuple[float, float]] = {}

    def mark(label: str) -> None:  # the gateway processes' CPU time, and the wall clock
        marks[label] = (sum(_proc_cpu(p.pid) for p in procs), time.monotonic())

    try:
        clock = asyncio.run(
            _callers(
                args.protocol,
                (tw, au),
                n,
                seconds,
                mark,
                args.gate_vad is not None,
                args.spread_ms,
            )
        )
        cpu_run = marks["end"][0] - marks["start"][0]
        wall = marks["end"][1] - marks["start"][1]
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(120)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    ends, delays, behind, loops = [], [], [], set()
    silero = {"batches": 0, "jobs": 0, "windows": 0, "calls": 0, "run_s": 0.0}
    total_packets = int(seconds * 8000) // PACKET
    by_second: dict[int, list[float]] = {}
    for dump in dumps:
        data = json.loads(dump.read_text())
        dump.unlink()
        ends += data["ends"]
        loops.add(data["loop"])
        for k in silero:
            silero[k] += data["silero"][k]
        for cid, frames in data["frames"].items():
            due0 = clock["t0"] + clock["offsets"][cid]
            written = clock["written"][cid]
            if args.gate_vad:
                frames = _not_held(frames)
            for start, sent in frames:
                # A 100 ms frame holds packets start/160 to start/160 + 4: its last one
                # decides when it could go out.
                k = (start + 800) // PACKET - 1
                if sent and k < total_packets:
                    delays.append((sent - written[k]) / 1e6)
                    behind.append((sent - (due0 + k * PACKET_NS)) / 1e6)
                    by_second.setdefault(k // 50, []).append(delays[-1])
    if os.environ.get("GATEWAY_BENCH_DEBUG"):
        for sec, v in sorted(by_second.items()):
            print(
                f"  second {sec}: p50 {np.percentile(v, 50):.0f} p99 {np.percentile(v, 99):.0f} ms ({len(v)} frames)"
            )
    incomplete = [e for e in ends if e["verdict"] != "complete"]
    dropped_s = sum(
        t.get("dropped_s", 0) + t.get("missing_s", 0) for e in ends for t in e["tracks"].values()
    )
    reconnects = sum(t.get("reconnects", 0) for e in ends for t in e["tracks"].values())
    d = np.array(delays) if delays else np.zeros(0)
    b = np.array(behind) if behind else np.zeros(0)
    return {
        "protocol": args.protocol, "calls": n, "workers": args.workers, "seconds": seconds,
        "spread_ms": args.spread_ms,
        "loop": "+".join(sorted(loops)),
        "gate_vad": args.gate_vad,
        "calls_ended": len(ends), "incomplete": len(incomplete), "dropped_s": round(dropped_s, 3),
        "reconnects": reconnects, "frames": len(delays),
        "added_latency_ms": percentiles(d) if len(d) else None,
        "behind_schedule_ms": percentiles(b) if len(b) else None,
        "cpu_per_call_pct": round(100 * cpu_run / wall / n, 3) if n else None,
        "gateway_cpu_s": round(cpu_run, 2), "wall_s": round(wall, 2),
        "caller_late_ticks": clock["late_ticks"],
        "silero_batches": silero if silero["batches"] else None,
    }  # fmt: skip


def _not_held(frames: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """A gated track's frames less those its gate held back as pre-roll: they wait for the
    onset after them, and go out with it, in the same write (the next frame less than 1 ms
    later). What is left is how late the gate and everything after it made the speech."""
    frames = sorted(frames)
    return [
        f for f, after in zip(frames, [*frames[1:], None], strict=True)
        if after is None or not (f[1] and after[1] and after[1] - f[1] < 1_000_000)
    ]  # fmt: skip


def _proc_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def passes(r: dict[str, Any], max_p99: float) -> bool:
    lat = r["added_latency_ms"]
    return bool(
        r["calls_ended"] == r["calls"] and not r["incomplete"] and r["dropped_s"] == 0
        and r["reconnects"] == 0 and lat is not None and lat["p99"] <= max_p99
    )  # fmt: skip


def _show(r: dict[str, Any]) -> None:
    lat = r["added_latency_ms"] or {}
    late = r["behind_schedule_ms"] or {}
    print(
        f"{r['protocol']}{' gated by ' + r['gate_vad'] if r['gate_vad'] else ''} "
        f"x{r['calls']} ({r['workers']} worker{'s' if r['workers'] > 1 else ''} on "
        f"{r['loop']}, starts over {r['spread_ms']:g} ms): "
        f"ended {r['calls_ended']}, incomplete {r['incomplete']}, dropped {r['dropped_s']} s, "
        f"reconnects {r['reconnects']}, added latency p50 {lat.get('p50', float('nan')):.1f} / "
        f"p99 {lat.get('p99', float('nan')):.1f} / max {lat.get('max', float('nan')):.1f} ms "
        f"(behind schedule p50 {late.get('p50', float('nan')):.1f} / p99 "
        f"{late.get('p99', float('nan')):.1f} ms), CPU {r['cpu_per_call_pct']}% of a core per "
        f"call ({r['gateway_cpu_s']} s in {r['wall_s']} s)",
        flush=True,
    )
    sb = r.get("silero_batches")
    if sb:
        print(
            f"  Silero: {sb['batches']} batches of {sb['jobs'] / sb['batches']:.1f} streams on "
            f"average, {sb['calls']} model calls for {sb['windows']} windows, "
            f"{1e3 * sb['run_s'] / sb['batches']:.2f} ms per batch in the worker "
            f"({1e6 * sb['run_s'] / sb['windows']:.0f} µs per window)",
            flush=True,
        )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=200)
    p.add_argument("--seconds", type=float, default=None)
    p.add_argument("--protocol", choices=("twilio", "audiosocket"), default="twilio")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--find-max", action="store_true")
    p.add_argument(
        "--spread-ms",
        type=float,
        default=100.0,
        help="calls start at random moments within this (default 100: one frame)",
    )
    p.add_argument("--max-p99-ms", type=float, default=50.0)
    p.add_argument("--json", metavar="FILE")
    p.add_argument("--gate-vad", choices=("energy", "silero"),
                   help="gate every track (--gate) with this detector (default: no gate)")  # fmt: skip
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--base-url", help=argparse.SUPPRESS)
    p.add_argument("--dump", help=argparse.SUPPRESS)
    p.add_argument("--twilio-port", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--audiosocket-port", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve:
        return serve(args)
    from nsaudio.server.child import ServerProcess

    seconds = args.seconds or (10.0 if args.find_max else 20.0)
    load = os.getloadavg()
    print(
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        flush=True,
    )
    server = ServerProcess(engine="cheap", max_sessions=8192).start()
    results = []
    try:
        if not args.find_max:
            r = run(args, args.calls, seconds, server.base_url)
            _show(r)
            results.append(r)
        else:
            good, bad, n = 0, None, args.calls
            while bad is None or bad - good > max(2, good // 20):
                r = run(args, n, seconds, server.base_url)
                _show(r)
                results.append(r)
                if passes(r, args.max_p99_ms):
                    good = n
                    n = n * 2 if bad is None else (good + bad) // 2
                else:
                    bad = n
                    n = (good + bad) // 2
                if n <= good:
                    break
            print(f"find-max: {good} calls ({args.protocol}, {args.workers} worker(s))")
    finally:
        server.stop()
    if args.json:
        Path(args.json).write_text(json.dumps({"load_average": load, "runs": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
