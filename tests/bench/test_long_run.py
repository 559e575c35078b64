"""benchmarks/long_run.py: memory and tasks stay flat over a long stream (issue 15, finding 9:
one finished task was kept per ping, forever; RSS grew 49 -> 67 MB over 5 h)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import ROOT

SCRIPT = ROOT / "benchmarks" / "long_run.py"


def _run(tmp_path: Path, hours: float, warmup: float) -> dict:
    out = tmp_path / "long.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--hours", str(hours), "--warmup-minutes", str(warmup),
         "--json", str(out)],
        capture_output=True, text=True, cwd=ROOT, timeout=1800,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(out.read_text())


@pytest.mark.server
def test_half_an_hour_keeps_the_task_count_flat(tmp_path):
    report = _run(tmp_path, 0.5, 5)
    assert report["reconnects"] == 0 and report["full_results"] > 300
    lo, hi = report["tasks_range"]
    assert hi - lo <= 1, report["tasks_range"]  # a reader and a writer, nothing piling up
    assert report["rss_growth_mb_after_warmup"] <= 3, report["samples"]


@pytest.mark.slow
@pytest.mark.server
def test_four_hours_grow_rss_by_at_most_3_mb_after_the_first_20_minutes(tmp_path):
    report = _run(tmp_path, 4, 20)
    print(json.dumps({k: v for k, v in report.items() if k != "samples"}))
    assert report["reconnects"] == 0
    assert report["rss_growth_mb_after_warmup"] <= 3, report["samples"]
    lo, hi = report["tasks_range"]
    assert hi - lo <= 1
