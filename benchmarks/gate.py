"""What ``nsaudio stream --gate`` saves, and what it costs in results, with each detector.

Builds the test suite's recording (``tests/recordings.py``: three flite sentences separated
by 6-8 s of -53 dBFS brown noise, 26 s; needs flite and sox) and streams it through the
built-in local server (pocketsphinx, its energy VAD) at ``--pace 0``: as it is, with
``--gate`` (energy) and with ``--gate --gate-vad silero``. With ``--noise KIND`` the same
sentences get a noise that is not stationary (``tests/noises.py``), at each ``--level``:

- ``music``: a chord and a beat under and between the sentences (RMS dBFS);
- ``clicks``: keyboard clicks in the pauses (peak dBFS);
- ``babble``: three other voices, low (RMS dBFS);
- ``steady``: brown noise instead of the room's (RMS dBFS).

For each run it reports the audio the sink sent (trailing silence included, from ``-v``),
the share of the recording the gate let through (its closing line; the sink's own silence at
the end, 1.2 s and more while a result is awaited, is left out of it), the full results, the
largest difference in the times of the results that carry the sentences (each sentence's is
the full result overlapping it most) against the ungated run's, and the word error rate
against the sentences.

    python benchmarks/gate.py [--noise music|clicks|babble|steady] [--level DB ...]
                              [--gate-tail MS] [--gate-pre-roll MS] [--json FILE]

Without ``--noise`` (the recording as it is) the bar is the gate's first one: at most half
the audio sent, the same number of full results with times within 0.1 s of the ungated
run's, and a word error rate at most 0.05 worse. With ``--noise``, Silero's: on music at most
half the audio sent and a WER at most the energy gate's + 0.02; on clicks and steady noise
no worse than the energy gate (share within +5 points, WER within +0.02) and times within
20 ms of the ungated run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import wer  # noqa: E402
from tests.noises import KINDS  # noqa: E402
from tests.recordings import (  # noqa: E402
    Recording,
    three_utterances_in_noise,
    three_utterances_with,
)

#: Levels run when --level is not given: the second of each is where the energy gate fails,
#: or (steady) the recording of the suite.
LEVELS = {"music": [-40, -30], "clicks": [-20, -6], "babble": [-50, -40], "steady": [-53, -40]}
RUNS = {
    "ungated": [],
    "energy": ["--gate"],
    "silero": ["--gate", "--gate-vad", "silero"],
}


def stream(path: Path, *options: str) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "nsaudio", "-v", "stream", str(path), "--local", "--pace", "0",
           "--output", "jsonl", *options]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("nsaudio: error:")]
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    sent = re.search(r"INFO: sent ([\d.]+) s of audio", proc.stderr)
    if sent is None and not (proc.returncode == 1 and errors):  # a verdict's exit 1 says no
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr}")  # "sent" line: kept
    gate = re.search(r"^nsaudio: sent ([\d.]+) s of ([\d.]+) s", proc.stderr, re.M)
    fulls = [(r["start_time"], r["end_time"], r["text"]) for r in results if r["full"]]
    return {
        # By the sink, the silence it adds at the end too (not said by a run that failed).
        "sent_s": float(sent.group(1)) if sent else math.nan,
        "passed_s": float(gate.group(1)) if gate else None,  # by the gate, of the recording
        "fulls": fulls,
        # A run that ended in an error (exit 1) still printed its results: they are kept.
        "exit": proc.returncode,
        "error": errors[-1] if errors else None,
    }


def sentence_results(fulls: list, seconds: list[tuple[float, float]]) -> list[tuple | None]:
    """For each sentence, the full result overlapping it most (None if none does)."""
    out = []
    for a, b in seconds:
        overlaps = [(min(b, e) - max(a, s), (s, e)) for s, e, _ in fulls]
        best = max(overlaps, default=(0.0, None))
        out.append(best[1] if best[0] > 0 else None)
    return out


def time_difference(run: list, ungated: list) -> float:
    """Largest start or end difference between the sentences' results (inf: one is missing),
    to the microsecond: the times are whole samples, and 2.72 - 2.70 is 0.020000000000000018
    in floating point, which a bar of 20 ms must not count as more than one 20 ms frame."""
    diffs = []
    for got, want in zip(run, ungated, strict=True):
        if got is None or want is None:
            return math.inf
        diffs += [abs(got[0] - want[0]), abs(got[1] - want[1])]
    return round(max(diffs), 6)


def measure(rec: Recording, tail: str, pre_roll: str) -> dict[str, Any]:
    truth = " ".join(rec.texts)
    runs: dict[str, Any] = {}
    for name, options in RUNS.items():
        if options:
            options = [*options, "--gate-tail", tail, "--gate-pre-roll", pre_roll]
        run = runs[name] = stream(rec.path, *options)
        run["wer"] = wer(truth, " ".join(text for *_, text in run["fulls"]))
        run["sentences"] = sentence_results(run["fulls"], rec.seconds)
    base = runs["ungated"]
    seconds = len(rec.samples) / rec.rate
    for run in runs.values():
        # What the gate let through of the recording: the sink's own trailing silence (1.2 s,
        # and more while a result is awaited) is the same with or without a gate.
        run["share"] = (run["passed_s"] if run["passed_s"] is not None else seconds) / seconds
        run["max_time_difference_s"] = time_difference(run["sentences"], base["sentences"])
    return runs


def table(title: str, runs: dict[str, Any]) -> None:
    print(f"\n{title}")
    print(f"  {'run':8} {'sent s':>7} {'share':>6} {'fulls':>5} {'max dt s':>9} {'WER':>6}"
          "   (sent: the audio the sink sent, the silence it adds at the end apart; share: the gate's, of the recording)")  # fmt: skip
    for name, run in runs.items():
        dt = run["max_time_difference_s"]
        shown = "missing" if dt == math.inf else f"{dt:.3f}"
        print(f"  {name:8} {run['sent_s']:7.2f} {run['share']:6.2f} {len(run['fulls']):5d} "
              f"{shown:>9} {run['wer']:6.3f}")  # fmt: skip
    for name, run in runs.items():
        if run["exit"]:
            print(f"  {name} exited {run['exit']}: {run['error']}")
    for name, run in runs.items():
        print(f"  {name}:")
        for start, end, text in run["fulls"]:
            print(f"    {start:6.2f}-{end:6.2f}  {text}")


def verdicts(kind: str | None, runs: dict[str, Any]) -> dict[str, bool]:
    """The issue's bars for this recording (see the module's docstring)."""
    energy, silero, ungated = runs["energy"], runs["silero"], runs["ungated"]
    ended = {"silero: the run ended well (exit 0)": silero["exit"] == 0}
    return ended | _bars(kind, energy, silero, ungated)


def _bars(kind: str | None, energy: dict, silero: dict, ungated: dict) -> dict[str, bool]:
    if kind is None:
        return {
            f"{name}: <= 0.5 sent, same results, times <= 0.1 s, WER <= +0.05": (
                run["share"] <= 0.5
                and len(run["fulls"]) == len(ungated["fulls"])
                and run["max_time_difference_s"] <= 0.1
                and run["wer"] <= ungated["wer"] + 0.05
            )
            for name, run in (("energy", energy), ("silero", silero))
        }
    if kind == "music":
        return {
            "silero: <= 0.5 sent": silero["share"] <= 0.5,
            "silero: WER <= energy's + 0.02": silero["wer"] <= energy["wer"] + 0.02,
        }
    if kind in ("clicks", "steady"):
        return {
            "silero: share <= energy's + 0.05": silero["share"] <= energy["share"] + 0.05,
            "silero: WER <= energy's + 0.02": silero["wer"] <= energy["wer"] + 0.02,
            "silero: times within 0.02 s of ungated": silero["max_time_difference_s"] <= 0.02,
        }
    return {}  # babble: measured, no bar


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--noise", choices=KINDS, help="add this noise (default: the recording as is)")
    p.add_argument("--level", type=float, action="append", metavar="DB",
                   help="the noise's level in dBFS, repeatable (default: two per kind)")  # fmt: skip
    p.add_argument("--gate-tail", default="700", metavar="MS")
    p.add_argument("--gate-pre-roll", default="300", metavar="MS")
    p.add_argument("--json", metavar="FILE", help="also write every figure to FILE")
    args = p.parse_args()
    if args.level and not args.noise:
        p.error("--level needs --noise")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    report: dict[str, Any] = {"noise": args.noise, "levels": {}}
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        levels = (args.level or LEVELS[args.noise]) if args.noise else [None]
        for level in levels:
            folder = Path(tmp) / f"level{level}"
            folder.mkdir()
            if args.noise is None:
                rec = three_utterances_in_noise(folder)
                title = "the recording: -53 dBFS brown noise"
            else:
                rec = three_utterances_with(folder, args.noise, level)
                title = f"{args.noise} at {level:g} dBFS"
            runs = measure(rec, args.gate_tail, args.gate_pre_roll)
            table(
                title + ", sentences at " + ", ".join(f"{a:.2f}-{b:.2f}" for a, b in rec.seconds),
                runs,
            )
            checks = verdicts(args.noise, runs)
            for what, passed in checks.items():
                print(f"  {'met ' if passed else 'MISSED'}  {what}")
            ok = ok and all(checks.values())
            report["levels"][str(level)] = {"runs": runs, "checks": checks}
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
