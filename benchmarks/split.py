"""``nsaudio stream --split-channels`` against each channel streamed alone.

Streams the committed two-speaker call (``fixtures/conversation_16000_stereo_flac16.flac``:
the agent, flite voice slt, on the left channel, the customer, rms, on the right; the
customer's second turn starts inside the agent's second and is finalised first) through the
built-in local server at ``--pace 0``: once with ``--split-channels --channel-names
agent,customer``, and each channel alone, as a mono WAV of exactly its samples. For each
channel it reports the word error rate of the split run against the channel's sentences,
whether every full result carries the channel's label, and the largest difference between
the split run's result times and the run alone; then whether the merged full results came
in start-time order, and how long each run took.

With ``--api async`` the split run goes through the asyncio API instead
(``nsaudio.connect_channels()`` in this process, the file sent unpaced in 20 ms chunks, a
local server in a child process); the runs alone stay the command line's.

    python benchmarks/split.py [--runs 3] [--api cli|async] [--json FILE]

The issue's bar: each channel's words exact (WER 0) with its label, times within 20 ms of
the mono runs of each channel.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import FIXTURES, MANIFEST, wer  # noqa: E402

CALL = next(f for f in MANIFEST if f["kind"] == "conversation")
# Unpaced, two sessions' decoding can keep a loaded machine's server from reading a window
# of audio within the default pong timeout; a reconnect would re-cut a channel's segments.
OPTIONS = ("--local", "--pace", "0", "--ping-timeout", "60", "--output", "jsonl")


def stream(path: Path, *options: str) -> tuple[list[dict], float]:
    cmd = [sys.executable, "-m", "nsaudio", "stream", str(path), *OPTIONS, *options]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    seconds = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    return [r for r in results if r["full"] and r["text"]], seconds


def stream_async(path: Path, names: list[str]) -> tuple[list[dict], float]:
    """``path`` through ``nsaudio.connect_channels()``: its full results, as JSON Lines'."""
    import nsaudio

    audio, rate = sf.read(path, dtype="int16")
    step = rate // 50

    async def main(url: str) -> list[dict]:
        async with nsaudio.connect_channels(
            url, "any-key", nsaudio.StreamParams(language="en"), rate=rate,
            channels=audio.shape[1], names=names, dtype="int16", ping_timeout=60,
        ) as conn:  # fmt: skip

            async def send_all() -> None:
                for i in range(0, len(audio), step):
                    await conn.send(audio[i : i + step])
                await conn.end()

            sender = asyncio.create_task(send_all())
            got = [r.to_dict() async for r in conn if r.full and r.text]
            await sender
        return got

    with nsaudio.ServerProcess() as server:
        t0 = time.monotonic()
        results = asyncio.run(main(server.base_url))
        return results, time.monotonic() - t0


def one_run(folder: Path, api: str) -> dict:
    names = CALL["names"]
    if api == "async":
        merged, split_s = stream_async(FIXTURES / CALL["file"], names)
    else:
        merged, split_s = stream(FIXTURES / CALL["file"], "--split-channels",
                                 "--channel-names", ",".join(names))  # fmt: skip
    audio, rate = sf.read(FIXTURES / CALL["file"], dtype="int16")
    run: dict = {"split_s": split_s, "channels": {}}
    for i, (name, texts) in enumerate(zip(names, CALL["channel_texts"], strict=True)):
        mono = folder / f"{name}.wav"
        sf.write(mono, audio[:, i], rate, subtype="PCM_16")
        alone, alone_s = stream(mono)
        mine = [r for r in merged if r.get("channel") == name]
        same = [r["text"] for r in mine] == [r["text"] for r in alone]
        drift = (
            max(
                max(abs(a["start_time"] - b["start_time"]), abs(a["end_time"] - b["end_time"]))
                for a, b in zip(mine, alone, strict=True)
            )
            if same and mine
            else float("nan")
        )
        run["channels"][name] = {
            "wer": wer(" ".join(texts), " ".join(r["text"] for r in mine)),
            "results": len(mine),
            "same_results_as_alone": same,
            "max_time_difference_s": drift,
            "alone_s": alone_s,
            "fulls": [(r["start_time"], r["end_time"], r["text"]) for r in mine],
        }
    run["labelled"] = all(r.get("channel") in names for r in merged)
    starts = [r["start_time"] for r in merged]
    run["in_start_order"] = starts == sorted(starts)
    run["order"] = [f"{r['channel']}: {r['text']}" for r in merged]
    return run


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--api", choices=("cli", "async"), default="cli",
                   help="the split run through the command line or connect_channels()")  # fmt: skip
    p.add_argument("--json", metavar="FILE", help="also write every figure to FILE")
    args = p.parse_args()
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    print(f"load average at start: {' '.join(load)}; split run through: {args.api}")
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            run = one_run(Path(tmp), args.api)
            runs.append(run)
            print(f"\nrun {i + 1}: split {run['split_s']:.1f} s; labelled {run['labelled']}; "
                  f"in start order {run['in_start_order']}")  # fmt: skip
            for name, ch in run["channels"].items():
                print(f"  {name:<9} WER {ch['wer']:.3f}  {ch['results']} results  "
                      f"largest time difference {ch['max_time_difference_s'] * 1000:.1f} ms  "
                      f"(alone {ch['alone_s']:.1f} s)")  # fmt: skip
    print("\nmerged transcript (last run):")
    for line in runs[-1]["order"]:
        print(f"  {line}")
    ok = all(
        run["labelled"]
        and run["in_start_order"]
        and all(
            ch["wer"] == 0 and ch["max_time_difference_s"] <= 0.02
            for ch in run["channels"].values()
        )
        for run in runs
    )
    print(f"\nbar (WER 0, labelled, times within 20 ms, in order) in every run: {ok}")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"load_average": load, "api": args.api, "runs": runs}, indent=2)
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
