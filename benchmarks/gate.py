"""What ``nsaudio stream --gate`` saves, and what it costs in results.

Builds the test suite's noisy recording (``tests/recordings.py``: three flite sentences
separated by 6-8 s of -53 dBFS brown noise, 26 s; needs flite and sox) and streams it through
the built-in local server twice, at ``--pace 0``: as it is, and with ``--gate``. For each run
it reports the audio the sink sent (trailing silence included, from ``-v``), the full results'
times and text, and the word error rate against the sentences; then the gated/ungated ratio of
audio sent and the largest difference in result times.

    python benchmarks/gate.py [--gate-tail MS] [--gate-pre-roll MS] [--json FILE]

The issue's bar: at most half the audio sent, the same number of full results with times
within 0.1 s of the ungated run's, and a word error rate at most 0.05 worse.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import wer  # noqa: E402
from tests.recordings import three_utterances_in_noise  # noqa: E402


def stream(path: Path, *options: str) -> dict:
    cmd = [sys.executable, "-m", "nsaudio", "-v", "stream", str(path), "--local", "--pace", "0",
           "--output", "jsonl", *options]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    sent = re.search(r"INFO: sent ([\d.]+) s of audio", proc.stderr)
    assert sent, proc.stderr
    fulls = [(r["start_time"], r["end_time"], r["text"]) for r in results if r["full"]]
    return {"sent_s": float(sent.group(1)), "fulls": fulls}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gate-tail", default="700", metavar="MS")
    p.add_argument("--gate-pre-roll", default="300", metavar="MS")
    p.add_argument("--json", metavar="FILE", help="also write every figure to FILE")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rec = three_utterances_in_noise(Path(tmp))
        truth = " ".join(rec.texts)
        runs = {
            "ungated": stream(rec.path),
            "gated": stream(rec.path, "--gate", "--gate-tail", args.gate_tail,
                            "--gate-pre-roll", args.gate_pre_roll),
        }  # fmt: skip
    print(f"recording: {len(rec.samples) / rec.rate:.1f} s, sentences at "
          + ", ".join(f"{a:.2f}-{b:.2f}" for a, b in rec.seconds))  # fmt: skip
    for name, run in runs.items():
        run["wer"] = wer(truth, " ".join(text for *_, text in run["fulls"]))
        print(f"\n{name}: sent {run['sent_s']:.2f} s, WER {run['wer']:.3f}")
        for start, end, text in run["fulls"]:
            print(f"  {start:6.2f}-{end:6.2f}  {text}")
    ungated, gated = runs["ungated"], runs["gated"]
    ratio = gated["sent_s"] / ungated["sent_s"]
    same_count = len(gated["fulls"]) == len(ungated["fulls"])
    drift = (
        max(
            max(abs(a0 - a1), abs(b0 - b1))
            for (a0, b0, _), (a1, b1, _) in zip(ungated["fulls"], gated["fulls"], strict=True)
        )
        if same_count and gated["fulls"]
        else float("nan")
    )
    print(f"\ngated / ungated audio sent: {ratio:.3f} (bar: <= 0.5)")
    print(f"full results: {len(gated['fulls'])} gated, {len(ungated['fulls'])} ungated; "
          f"largest time difference {drift:.3f} s (bar: <= 0.1)")  # fmt: skip
    print(f"WER: {gated['wer']:.3f} gated, {ungated['wer']:.3f} ungated (bar: <= +0.05)")
    if args.json:
        summary = {"ratio": ratio, "max_time_difference_s": drift, **runs}
        Path(args.json).write_text(json.dumps(summary, indent=2))
    ok = ratio <= 0.5 and same_count and drift <= 0.1 and gated["wer"] <= ungated["wer"] + 0.05
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
