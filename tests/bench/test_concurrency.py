"""benchmarks/concurrency.py runs end to end and writes the figures it promises (no timing
is asserted: the machine's load decides those)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import ROOT

SCRIPT = ROOT / "benchmarks" / "concurrency.py"


def run_benchmark(tmp_path: Path, *args: str) -> tuple[dict, str]:
    out = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--json", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=180,
        env={**os.environ, "PYTHONPATH": str(ROOT)},  # this checkout's nsaudio
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(out.read_text()), proc.stdout


@pytest.mark.server
def test_telephony_streams_end_to_end(tmp_path: Path) -> None:
    report, stdout = run_benchmark(
        tmp_path, "--streams", "2", "--seconds", "2", "--format", "pcm_8k"
    )
    assert "cheap recogniser" in stdout
    assert report["streams"] == 2
    assert set(report["send_overhead_ms"]) == {"p50", "p95", "p99", "max"}
    assert report["dropped_frames"] >= 0 and report["reconnects"] >= 0
    assert report["failed_streams"] == 0 and report["frames"] == 2 * 20  # 100 ms frames
    assert report["frames_sent"] >= report["frames"]  # the drain's trailing silence too


@pytest.mark.server
def test_async_streams_end_to_end(tmp_path: Path) -> None:
    report, stdout = run_benchmark(
        tmp_path, "--api", "async", "--streams", "3", "--seconds", "2", "--format", "pcm_8k"
    )
    assert report["api"] == "async" and report["streams"] == 3
    for key in ("send_overhead_ms", "send_call_ms", "loop_lag_ms", "clock_late_ms"):
        assert set(report[key]) == {"p50", "p95", "p99", "max"}, key
    assert report["failed_streams"] == 0 and report["frames"] == 3 * 20
    assert report["frames_sent"] >= report["frames"]
    assert "loop lag" in stdout


@pytest.mark.server
def test_pipeline_streams_end_to_end_with_a_plot(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    plot = tmp_path / "cdf.png"
    report, _ = run_benchmark(tmp_path, "--streams", "2", "--seconds", "2", "--plot", str(plot))
    assert report["format"] == "pcm_16k" and report["streams"] == 2
    assert set(report["send_overhead_ms"]) == {"p50", "p95", "p99", "max"}
    assert "dropped_frames" in report and "reconnects" in report
    assert plot.read_bytes().startswith(b"\x89PNG")


@pytest.mark.server
def test_find_max_searches_and_plots(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    plot = tmp_path / "max.png"
    report, stdout = run_benchmark(
        tmp_path, "--format", "pcm_8k", "--find-max", "--streams", "1", "--max-streams", "2",
        "--seconds", "1", "--plot", str(plot),
    )  # fmt: skip
    assert "largest N" in stdout
    assert report["find_max"] in (0, 1, 2)
    assert [r["streams"] for r in report["runs"]][:1] == [1]
    assert all(set(r["send_overhead_ms"]) == {"p50", "p95", "p99", "max"} for r in report["runs"])
    assert all(isinstance(r["passed"], bool) for r in report["runs"])
    assert plot.read_bytes().startswith(b"\x89PNG")


@pytest.mark.server
@pytest.mark.parametrize("fmt", ["pcm_8k", "pcm_16k"])
def test_streams_gated_by_silero_report_its_cost(tmp_path: Path, fmt: str) -> None:
    # pcm_8k: ten streams in five phases (100 ms frames of 20 ms packets): two a tick
    report, stdout = run_benchmark(
        tmp_path, "--streams", "10", "--seconds", "2", "--format", fmt, "--gate-vad", "silero"
    )
    assert report["gate_vad"] == "silero" and report["failed_streams"] == 0
    gate = report["gate"]
    assert gate["vad"] == "silero" and gate["windows"] >= 10 * 2 * 31  # 32 ms windows
    assert gate["calls"] < gate["windows"]  # the streams shared calls
    if fmt == "pcm_8k":
        assert gate["us_per_stream_frame"] > 0 and "µs CPU per stream-frame" in stdout
