"""Helpers shared by the CLI tests."""

from __future__ import annotations

import json

from ..conftest import run_cli


def stream(server, path, *args, input=None, env=None):
    """``nsaudio stream PATH --base-url ... --pace 0 --output jsonl ARGS``: its results."""
    proc = run_cli(
        "stream",
        str(path),
        "--base-url",
        server.base_url,
        "--pace",
        "0",
        "--output",
        "jsonl",
        *args,
        input=input,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    return [json.loads(line) for line in proc.stdout.decode().splitlines()]
