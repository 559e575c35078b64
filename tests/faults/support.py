"""Helpers for the fault tests: run the CLI against a fault server, and check what came back."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..conftest import run_cli
from .server import FaultServer
from .slots import CODES, SLOTS_PER_SECOND, SlotAudio, decode_pcm

RATE = 16000
SLOT_BYTES = 2 * RATE // SLOTS_PER_SECOND


@dataclass
class Run:
    proc: subprocess.CompletedProcess
    results: list[dict]

    @property
    def stderr(self) -> str:
        return self.proc.stderr.decode()

    @property
    def stderr_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]

    @property
    def words(self) -> list[str]:
        """The final transcript: the full results' text, joined, as words."""
        return " ".join(r["text"] for r in self.results if r["full"] and r["text"]).split()


def stream(
    server: FaultServer | str,
    path: Path,
    *args: str,
    key: str | None = None,
    timeout: float = 120,
) -> Run:
    """``nsaudio stream PATH --base-url ... --pace 0 --output jsonl ARGS`` with the key in the env."""
    base = server if isinstance(server, str) else server.base_url
    if key is None and isinstance(server, FaultServer):
        key = server.api_key
    proc = run_cli(
        "stream", str(path), "--base-url", base, "--pace", "0", "--output", "jsonl", *args,
        env={"NS_API_KEY": key or "unused-key"}, timeout=timeout,
    )  # fmt: skip
    lines = proc.stdout.decode().splitlines()
    return Run(proc, [json.loads(line) for line in lines if line.strip()])


def slot_of(word: str) -> int:
    assert word.startswith("w"), word
    return int(word[1:])


def check_times(results: list[dict], *, gaps: bool = False) -> None:
    """Every result's times are the absolute slot times its words say; full results in order.

    A result naming slots a..b starts at a/10 s and ends at (b+1)/10 s of the original stream
    (slot numbers wrap at 800, so modulo that), whichever session it came from: offsets after
    a reconnect are right to the sample. ``gaps``: audio was dropped (a live source outran
    the connection), so a segment may skip slots.
    """
    last_end = 0.0
    for r in results:
        ks = [slot_of(w) for w in r["text"].split()]
        if not ks:
            continue
        start, end = r["start_time"] * SLOTS_PER_SECOND, r["end_time"] * SLOTS_PER_SECOND
        assert abs(start - round(start)) < 1e-5 and abs(end - round(end)) < 1e-5, r
        assert round(start) % CODES == ks[0] and round(end - 1) % CODES == ks[-1], r
        if not gaps:  # a segment never spans a gap
            assert ks == [(ks[0] + i) % CODES for i in range(len(ks))], r
            assert round(end) - round(start) == len(ks), r
        if r["full"]:
            assert r["start_time"] >= last_end - 1e-6, (last_end, r)
            last_end = r["end_time"]


def check_server_audio(server: FaultServer, audio: SlotAudio, reference: bytes) -> list[int]:
    """What the server received, session by session, against the uncut stream ``reference``.

    Every session that carried speech is byte-identical to ``reference`` from a slot boundary
    on (the replay starts exactly where the last full result ended, and re-sends the same
    bytes), and together the sessions hold every voiced slot. A session may end in more
    silence than the reference did (the end sends silence in steps while it waits for a slow
    final result). Returns where each session started in the stream (bytes; -1 when it
    carried no speech to place it by).
    """
    heard: set[int] = set()
    starts = []
    for s in server.sessions:
        codes = decode_pcm(bytes(s.audio), RATE)
        heard.update(k for k in codes if k is not None)
        first = next((j for j, k in enumerate(codes) if k is not None), None)
        if first is None:
            starts.append(-1)
            continue
        start = (codes[first] - first) * SLOT_BYTES
        assert start >= 0
        got = bytes(s.audio)
        same = reference[start : start + len(got)]
        assert got[: len(same)] == same, f"session {s.index} differs"
        assert not got[len(same) :].strip(b"\0"), f"session {s.index} ends in more than silence"
        starts.append(start)
    expected = {k for k, v in enumerate(audio.voiced) if v}
    missing = sorted(expected - heard)
    assert not missing, f"voiced slots no session received: {missing[:20]}"
    return starts
