#!/usr/bin/env python3
"""Conversion throughput: ``nsaudio convert`` against sox, one-shot soxr, scipy and libsamplerate.

One run, one input for every contender: a WAV of 48 kHz stereo 16-bit tones and light noise,
made in a temporary directory. Each contender makes 16 kHz mono int16 from it. Processes (nsaudio, sox) are timed wall-clock from spawn to exit, interpreter
start included; the one-shot resamplers run in a fresh child process each, which times its own
file read and its compute (downmix + resample + int16) separately. Peak memory is the child's
peak RSS from ``os.wait4``. Quality is the SNR of each output against one-shot soxr HQ.

    python benchmarks/throughput.py [--seconds 600] [--repeat 5] [--budget 12] [--json FILE] [--plot FILE.png]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

IN_RATE, OUT_RATE = 48000, 16000
TARGET_RATIO, TARGET_RSS_MB = 0.5, 40.0
#: The input: (frequency Hz, amplitude) of the tones on each channel, different on each so that
#: the downmix is not a copy of one channel, and independent white noise on each.
TONES = (((440.0, 0.30), (1250.0, 0.12)), ((660.0, 0.25), (3100.0, 0.10)))
NOISE_RMS = 0.003  # about -50 dBFS
#: One-shot contenders: name -> (label, module needed). The code is in ``_resample``.
ONE_SHOT = {
    "soxr_hq": ("soxr one-shot HQ", "soxr"),
    "scipy_poly": ("scipy resample_poly(1, 3)", "scipy"),
    "src_fastest": ("libsamplerate sinc_fastest", "samplerate"),
    "src_best": ("libsamplerate sinc_best", "samplerate"),
}
REFERENCE = "soxr_hq"
#: Contenders timed as whole processes; the rest are one-shot compute times.
PROCESSES = ("nsaudio", "sox")
#: nsaudio -v ends its convert log line with the seconds spent in the pipeline.
PIPELINE_LOG = re.compile(r" in ([0-9.]+) s$", re.MULTILINE)


def make_input(path: Path, seconds: float) -> str:
    """Write ``seconds`` of 48 kHz stereo int16 to ``path``; return a description of it.

    Two tones on each channel with a slow (0.25 Hz) swell, and light white noise, the same
    on every run (a fixed seed).
    """
    import soundfile as sf

    rng = np.random.default_rng(1)
    total, step = round(seconds * IN_RATE), 10 * IN_RATE
    with sf.SoundFile(str(path), "w", IN_RATE, 2, "PCM_16") as f:
        for start in range(0, total, step):
            t = np.arange(start, min(total, start + step), dtype=np.float64) / IN_RATE
            swell = 0.6 + 0.4 * np.sin(2 * np.pi * 0.25 * t)
            x = rng.normal(0, NOISE_RMS, (len(t), 2))
            for ch, tones in enumerate(TONES):
                for freq, amp in tones:
                    x[:, ch] += swell * amp * np.sin(2 * np.pi * freq * t)
            f.write(x.astype(np.float32))  # libsndfile rounds to int16
    tones = "; ".join(" + ".join(f"{f:g} Hz" for f, _ in ch) for ch in TONES)
    return (
        f"tones ({tones}) with a 0.25 Hz swell and white noise at "
        f"{20 * math.log10(NOISE_RMS):.0f} dBFS: {seconds:g} s, 48 kHz stereo int16"
    )


# Peak RSS comes from wait4() on the contender, run by this small shim. Spawned straight from
# this script it would be wrong: Linux carries the spawning process's peak RSS into the child's
# ru_maxrss across exec (posix_spawn shares our memory until exec, fork copies it), so every
# contender would show at least this script's peak. The shim's own few MB are the floor.
SHIM = """import json, os, sys, time
t = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execv(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, ru = os.wait4(pid, 0)
wall = time.perf_counter() - t
with open(sys.argv[1], "w") as f:
    json.dump({"wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime, "rss_mb": ru.ru_maxrss / 1024,
               "status": os.waitstatus_to_exitcode(status)}, f)
"""


def spawn(argv: list[str], tmp: Path) -> dict[str, float]:
    """Run ``argv`` to completion (stdout to tmp/stdout.txt, stderr to tmp/stderr.txt): the
    child's wall seconds (fork to exit), CPU seconds (user + sys) and peak RSS in MB.

    Python children cache their bytecode under ``tmp`` as an installed package would have it,
    even where PYTHONDONTWRITEBYTECODE is set (compiling nsaudio on every start costs ~15 ms).
    """
    result, out, err = tmp / "result.json", tmp / "stdout.txt", tmp / "stderr.txt"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    shim = [sys.executable, "-I", "-S", "-c", SHIM, str(result), *argv]
    with open(out, "wb") as fo, open(err, "wb") as fe:
        subprocess.run(shim, stdout=fo, stderr=fe, env=env, check=True)
    r = json.loads(result.read_text())
    if r.pop("status") != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {err.read_text().strip()[-500:]}")
    return r


def nsaudio_argv() -> list[str]:
    script = Path(sys.executable).parent / "nsaudio"
    return [str(script)] if script.exists() else [sys.executable, "-m", "nsaudio"]


def _resample(name: str, mono: np.ndarray) -> np.ndarray:
    if name == "soxr_hq":
        import soxr

        return soxr.resample(mono, IN_RATE, OUT_RATE, quality="HQ")
    if name == "scipy_poly":
        from scipy.signal import resample_poly

        return resample_poly(mono, 1, IN_RATE // OUT_RATE)
    import samplerate

    return samplerate.resample(mono, OUT_RATE / IN_RATE, "sinc_" + name.removeprefix("src_"))


def to_int16(y: np.ndarray) -> np.ndarray:
    """As nsaudio's framer does it: scale by 32768, round, clip."""
    return np.clip(np.rint(y * np.float32(32768)), -32768, 32767).astype("<i2")


def child(name: str, src: str, out: str) -> None:
    """One one-shot run in this (fresh) process; timings as JSON on stdout, output to ``out``."""
    import soundfile as sf

    _resample(name, np.zeros(IN_RATE, np.float32))  # imports and first-call set-up, untimed
    t0 = time.perf_counter()
    x = sf.read(src, dtype="float32", always_2d=True)[0]
    t1 = time.perf_counter()
    mono = x @ np.full(x.shape[1], 1 / x.shape[1], np.float32)  # the mean; faster than .mean()
    pcm = to_int16(_resample(name, mono))
    t2 = time.perf_counter()
    pcm.tofile(out)
    print(json.dumps({"read_s": t1 - t0, "compute_s": t2 - t1}))


def summarise(runs: list[dict[str, float]], key: str) -> dict[str, Any]:
    times = [r[key] for r in runs]
    return {"runs": len(times), "median_s": statistics.median(times), "min_s": min(times),
            "times_s": [round(t, 4) for t in times], "cpu_median_s": statistics.median(r["cpu_s"] for r in runs),
            "peak_rss_mb": max(r["rss_mb"] for r in runs)}  # fmt: skip


def load_pcm(path: Path) -> np.ndarray:
    if path.suffix == ".wav":
        import soundfile as sf

        return sf.read(str(path), dtype="int16")[0]
    return np.fromfile(path, "<i2")


def snr(out: np.ndarray, ref: np.ndarray) -> dict[str, Any]:
    n = min(len(out), len(ref))
    a, r = out[:n].astype(np.float64), ref[:n].astype(np.float64)
    noise = float(np.sum((a - r) ** 2))
    value = math.inf if noise == 0 else 10 * math.log10(float(np.sum(r**2)) / noise)
    return {
        "snr_db": None if math.isinf(value) else round(value, 2),
        "identical": noise == 0,
        "length_diff": len(out) - len(ref),
        "max_abs_diff": int(np.max(np.abs(a - r))) if n else 0,
    }


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_avg_at_start": [round(v, 2) for v in os.getloadavg()],
    }
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        m = re.search(r"model name\s*:\s*(.*)", cpuinfo.read_text())
        info["cpu"] = m.group(1) if m else None
    for pkg in ("nsaudio", "numpy", "soxr", "soundfile", "scipy", "samplerate"):
        try:
            info[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            info[pkg] = None
    sox = shutil.which("sox")
    if sox:
        version = subprocess.run([sox, "--version"], capture_output=True, text=True).stdout
        info["sox"] = m.group(1) if (m := re.search(r"v(\d[\w.]*)", version)) else version.strip()
    return info


def print_table(results: dict[str, dict[str, Any]], floor_mb: float) -> None:
    head = f"{'contender':<30}{'runs':>5}{'median s':>10}{'min s':>8}{'x sox':>7}{'cpu s':>7}{'RSS MB':>8}{'read s':>8}{'SNR dB':>9}"
    print(head)
    print("-" * len(head))
    for r in results.values():
        if "skipped" in r:
            print(f"{r['label']:<30}  skipped: {r['skipped']}")
            continue
        q = r.get("quality", {})
        s = "ref" if not q else ("exact" if q["identical"] else q["snr_db"])
        read = f"{r['read_median_s']:.3f}" if "read_median_s" in r else ""
        cpu = "" if r["cpu_median_s"] is None else f"{r['cpu_median_s']:.2f}"
        rss = f"{r['peak_rss_mb']:.1f}" if r["peak_rss_mb"] > floor_mb + 0.5 else f"<{floor_mb:.0f}"
        print(f"{r['label']:<30}{r['runs']:>5}{r['median_s']:>10.3f}{r['min_s']:>8.3f}"
              f"{r['ratio_vs_sox']:>7.2f}{cpu:>7}{rss:>8}{read:>8}{s!s:>9}")  # fmt: skip


def report(desc: str, info: dict[str, Any], results: dict[str, dict[str, Any]],
           memory: dict[str, float], long_wall: float) -> None:  # fmt: skip
    nsa, floor = results["nsaudio"], info["rss_floor_mb"]
    print(f"input: {desc}\nmachine: {info['cpu_count']} CPUs, {info.get('cpu')}, Python {info['python']}, "
          f"load average at start {info['load_avg_at_start']}\n")  # fmt: skip
    print_table(results, floor)
    print(
        "\nx sox: median / sox's median. cpu s: user+sys of the process. One-shot rows time the compute\n"
        "only (downmix, resample, int16), in a fresh process; read s is their whole-file read.\n"
        f"RSS MB: peak RSS of the process ({floor:.1f} MB is the floor of the measurement).\n"
        "SNR dB: against one-shot soxr HQ of the mean downmix, int16 both."
    )
    if "pipeline_median_s" in nsa:
        print(f"nsaudio: {nsa['pipeline_median_s']:.3f} s in its pipeline, "
              f"{nsa['startup_and_exit_s']:.3f} s interpreter start, imports and exit")  # fmt: skip
    ok = nsa["ratio_vs_sox"] <= TARGET_RATIO
    print(
        f"\nnsaudio / sox = {nsa['ratio_vs_sox']:.2f}  (target <= {TARGET_RATIO}: {'met' if ok else 'NOT met'})"
    )
    ok = max(memory.values()) <= TARGET_RSS_MB
    print("nsaudio peak RSS: " + ", ".join(f"{mb:.1f} MB at {s} s" for s, mb in memory.items())
          + f"  (target <= {TARGET_RSS_MB:g} MB: {'met' if ok else 'NOT met'}); the longer one took {long_wall:.2f} s")  # fmt: skip
    if q := nsa.get("quality"):
        shown = "identical (bit-exact)" if q["identical"] else f"{q['snr_db']} dB"
        print(f"nsaudio vs one-shot soxr HQ: SNR {shown}, length difference {q['length_diff']} "
              f"samples, max |diff| {q['max_abs_diff']} LSB")  # fmt: skip


def plot(path: str, desc: str, info: dict[str, Any], results: dict[str, dict[str, Any]]) -> None:
    """The contenders side by side: time (median, whiskers min to max) and peak RSS.

    The time axis is linear and stops at 3x sox's median: a slower contender's bar runs off
    the edge, its figure written inside the bar with an arrow; a bar too long for its figure
    to follow it has the figure inside too.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    names = [n for n, r in results.items() if "median_s" in r][::-1]  # first row on top
    rows = [results[n] for n in names]
    y = np.arange(len(rows))
    colours = ["tab:blue" if n in PROCESSES else "tab:gray" for n in names]
    fig, (ax_t, ax_m) = plt.subplots(
        1, 2, figsize=(11, 0.45 * len(rows) + 2.6), sharey=True, width_ratios=[3, 2]
    )
    med = np.array([r["median_s"] for r in rows])
    # times_s are rounded to 0.1 ms: a whisker can come out a hair below zero
    lo = np.maximum(0, med - np.array([min(r["times_s"]) for r in rows]))
    hi = np.maximum(0, np.array([max(r["times_s"]) for r in rows]) - med)
    edge = 3 * results["sox"]["median_s"]
    ax_t.barh(y, np.minimum(med, edge), color=colours)
    inside = med + hi < 0.7 * edge  # room for the figure after the whisker
    ax_t.errorbar(med[inside], y[inside], xerr=[lo[inside], hi[inside]], fmt="none",
                  ecolor="black", capsize=3, lw=1)  # fmt: skip
    for yi, r in zip(y, rows, strict=True):
        text = f" {r['median_s']:.3f} s  ({r['ratio_vs_sox']:.2f}x sox)"
        if inside[yi]:
            ax_t.annotate(text, (med[yi] + hi[yi], yi), va="center", fontsize=8)
        else:
            more = " \u2192" if med[yi] > edge else " "  # the bar runs off the edge
            ax_t.annotate(text + more, (min(med[yi], edge), yi), va="center", ha="right", fontsize=8,
                          color="white", fontweight="bold")  # fmt: skip
    ax_t.axvline(results["sox"]["median_s"], color="tab:orange", lw=1, ls="--")
    ax_t.axvline(TARGET_RATIO * results["sox"]["median_s"], color="tab:green", lw=1, ls=":")
    ax_t.set_xlim(0, edge)
    ax_t.set_yticks(y, [r["label"] for r in rows])
    ax_t.set_xlabel(f"seconds (median of {info['repeat']} runs; whiskers: min to max)")
    ax_t.set_title("Time")
    floor = info["rss_floor_mb"]
    rss = np.array([r["peak_rss_mb"] for r in rows])
    ax_m.barh(y, rss, color=colours)
    for yi, mb in zip(y, rss, strict=True):
        text = f" <{floor:.0f} (floor)" if mb <= floor + 0.5 else f" {mb:.0f}"
        ax_m.annotate(text, (mb, yi), va="center", fontsize=8)
    ax_m.set_xlim(0, rss.max() * 1.25)
    ax_m.set_xlabel("peak RSS of the process, MB")
    ax_m.set_title("Memory")
    fig.legend(
        handles=[Patch(color="tab:blue", label="whole process, spawn to exit (start-up included)"),
                 Patch(color="tab:gray", label="one-shot: compute only, whole file in memory"),
                 plt.Line2D([], [], color="tab:orange", ls="--", label="sox"),
                 plt.Line2D([], [], color="tab:green", ls=":", label=f"{TARGET_RATIO:g}x sox (target)")],
        loc="lower center", ncol=4, fontsize=8, frameon=False,
    )  # fmt: skip
    fig.suptitle(
        f"{info['input_seconds'] / 60:g} min of 48 kHz stereo int16 WAV to 16 kHz mono int16\n"
        f"input: {desc.split(':')[0]}\n{info['cpu_count']} CPUs ({info.get('cpu')}), "
        f"load average at start {info['load_avg_at_start'][0]}",
        fontsize=9,
    )
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, dpi=80)
    plt.close(fig)


def run_processes(src: Path, tmp: Path, repeat: int) -> dict[str, dict[str, Any]]:
    """nsaudio convert and sox, round robin so that load from elsewhere hits both alike."""
    sox = shutil.which("sox") or "sox"
    cmds = {
        "nsaudio": ("nsaudio convert", [*nsaudio_argv(), "-v", "convert", str(src), str(tmp / "nsaudio.raw"), "--format", "pcm_16k"]),
        "sox": ("sox", [sox, str(src), "-r", str(OUT_RATE), "-c", "1", "-b", "16", str(tmp / "sox.wav")]),
    }  # fmt: skip
    for _, argv in cmds.values():  # warm-up: page cache, .pyc files
        spawn(argv, tmp)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in cmds}
    pipeline: list[float] = []  # nsaudio's own account (-v) of the time spent in its pipeline
    for _ in range(repeat):
        for name, (_, argv) in cmds.items():
            runs[name].append(spawn(argv, tmp))
            if name == "nsaudio" and (m := PIPELINE_LOG.search((tmp / "stderr.txt").read_text())):
                pipeline.append(float(m.group(1)))
    results = {
        name: {"label": label, "measures": "process wall time", **summarise(runs[name], "wall_s")}
        for name, (label, _) in cmds.items()
    }
    if pipeline:
        nsa = results["nsaudio"]
        nsa["pipeline_median_s"] = statistics.median(pipeline)
        nsa["startup_and_exit_s"] = nsa["median_s"] - nsa["pipeline_median_s"]
    return results


def run_one_shot(name: str, src: Path, out: Path, tmp: Path, repeat: int, budget: float) -> dict[str, Any]:  # fmt: skip
    """``repeat`` runs of a one-shot contender, fewer if they would take over ``budget`` seconds."""
    label, module = ONE_SHOT[name]
    if importlib.util.find_spec(module) is None:
        return {"label": label, "skipped": f"python package {module!r} not installed"}
    runs: list[dict[str, float]] = []
    began = time.perf_counter()
    while len(runs) < repeat:
        argv = [sys.executable, str(Path(__file__).resolve()), "--child", name, str(src), str(out)]
        try:
            proc = spawn(argv, tmp)
        except RuntimeError as err:
            return {"label": label, "skipped": str(err).splitlines()[-1]}
        runs.append({**proc, **json.loads((tmp / "stdout.txt").read_text())})
        spent = time.perf_counter() - began
        if spent + spent / len(runs) > budget:
            break
    return {
        "label": label,
        "measures": "in-process compute (downmix + resample + int16); file read apart",
        **summarise(runs, "compute_s"),
        "cpu_median_s": None,  # the child's CPU time includes its imports and the read
        "read_median_s": statistics.median(r["read_s"] for r in runs),
    }


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--seconds", type=float, default=600, help="input length (default 600)")
    p.add_argument("--repeat", type=int, default=5, help="runs per contender (default 5)")
    p.add_argument("--budget", type=float, default=12, help="seconds after which a slow one-shot contender's runs stop (default 12)")  # fmt: skip
    p.add_argument("--json", metavar="FILE", help="write every figure to FILE")
    p.add_argument(
        "--plot",
        metavar="FILE.png",
        help="draw the contenders side by side into FILE.png (needs matplotlib)",
    )
    p.add_argument("--child", nargs=3, help=argparse.SUPPRESS)  # NAME IN OUT: one one-shot run
    args = p.parse_args()
    if args.repeat < 1 or args.seconds <= 0:
        p.error("--repeat must be at least 1 and --seconds positive")
    if args.child:
        child(*args.child)
        return 0
    if not shutil.which("sox"):
        sys.exit("throughput: sox must be on PATH (it is the baseline)")
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        sys.exit("throughput: --plot needs matplotlib (pip install -e '.[bench]')")
    t_start = time.perf_counter()
    info = machine()
    with tempfile.TemporaryDirectory(prefix="nsaudio-bench-") as tmp_name:
        tmp = Path(tmp_name)
        src = tmp / "in.wav"
        desc = make_input(src, args.seconds)
        info["rss_floor_mb"] = spawn([shutil.which("true") or "/bin/true"], tmp)["rss_mb"]
        results = run_processes(src, tmp, args.repeat)
        outputs = {"nsaudio": tmp / "nsaudio.raw", "sox": tmp / "sox.wav"}
        for name in ONE_SHOT:
            outputs[name] = tmp / f"{name}.raw"
            results[name] = run_one_shot(name, src, outputs[name], tmp, args.repeat, args.budget)
        for r in results.values():
            if "median_s" in r:
                r["ratio_vs_sox"] = r["median_s"] / results["sox"]["median_s"]
        if "median_s" in results[REFERENCE]:
            ref = load_pcm(outputs[REFERENCE])
            for name, r in results.items():
                if "median_s" in r and name != REFERENCE:
                    r["quality"] = snr(load_pcm(outputs[name]), ref)
            del ref
        # Memory against length: nsaudio once more on an input twice as long.
        src.unlink()
        make_input(src, 2 * args.seconds)
        argv = [*nsaudio_argv(), "convert", str(src), str(tmp / "nsaudio.raw")]
        long_run = spawn(argv, tmp)

    nsa = results["nsaudio"]
    memory = {f"{args.seconds:g}": nsa["peak_rss_mb"], f"{2 * args.seconds:g}": long_run["rss_mb"]}
    report(desc, info, results, memory, long_run["wall_s"])
    total = time.perf_counter() - t_start
    print(f"benchmark took {total:.1f} s")
    if args.plot:
        plot(
            args.plot, desc, {**info, "repeat": args.repeat, "input_seconds": args.seconds}, results
        )
        print(f"plot: {args.plot}")
    if args.json:
        data = {
            "benchmark": "throughput",
            "input": {"description": desc, "seconds": args.seconds, "rate": IN_RATE, "channels": 2, "subtype": "PCM_16"},
            "output": {"rate": OUT_RATE, "channels": 1, "dtype": "int16"},
            "repeat": args.repeat,
            "machine": info,
            "contenders": results,
            "nsaudio_peak_rss_mb_by_seconds": memory,
            "nsaudio_long_run": {"seconds": 2 * args.seconds, **long_run},
            "targets": {"ratio_vs_sox_max": TARGET_RATIO, "peak_rss_mb_max": TARGET_RSS_MB},
            "total_s": total,
        }  # fmt: skip
        Path(args.json).write_text(json.dumps(data, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
