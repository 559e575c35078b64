"""The issue's "Must reach" cases, scaled down in the default suite and full under -m slow.

- a call whose speech-service connection drops twice keeps every word, at exact times;
- a flood of idle connections is closed within the timeouts while genuine calls keep every
  word (default: 200 idle and 10 calls; slow: 1,000 and 50);
- SIGTERM with calls in flight (default 10, slow 50): readiness false at once, every
  transcript file complete, every call-end webhook sent, exit 0 within the drain deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import pytest

from ..conftest import ROOT
from ..faults.server import Plan
from ..faults.support import check_times
from .support import (
    WebhookReceiver,
    audiosocket_call,
    audiosocket_frames,
    twilio_call,
    twilio_messages,
)

PACE = 0.02  # real time: one 20 ms packet every 20 ms


def test_a_call_whose_service_drops_twice_keeps_every_word(
    gateway, fault_server, call_audio, tmp_path
):
    # Cut the TCP connection (no close frame) 1.5 s into the first session and 1.2 s into
    # the second (which begins with the replay of what no full result covered).
    server = fault_server(
        {0: Plan(at_bytes=24_000, action="cut"), 1: Plan(at_bytes=19_200, action="cut")}
    )
    gw = gateway(server, out_dir=str(tmp_path))
    sid = "CA" + "d" * 32
    msgs = twilio_messages(sid, {"inbound": call_audio.data[:, 0]})
    asyncio.run(twilio_call(gw.twilio_url, msgs, pace=PACE))
    (end,) = gw.wait_ends(1)
    assert len(server.sessions) == 3 and all(s.faulted for s in server.sessions[:2])
    assert end.verdict == "complete" and end.tracks["caller"]["reconnects"] == 2, end
    assert gw.recorded.words(sid) == call_audio.words  # nothing lost, nothing repeated
    lines = [json.loads(x) for x in (tmp_path / f"{sid}.jsonl").read_text().splitlines()]
    check_times(lines)  # times exact to the slot, across both reconnects


def _flood(gw, call_audio, idle: int, calls: int, limit: float):
    async def run():
        loop = asyncio.get_running_loop()
        idle_conns = []
        for i in range(idle):  # half on each protocol, opened and left silent
            port = gw.audiosocket_port if i % 2 else int(gw.twilio_url.rsplit(":", 1)[1])
            idle_conns.append(await asyncio.open_connection("127.0.0.1", port))
        t0 = loop.time()
        twilio = [
            twilio_messages(f"CA{k:032d}", {"inbound": call_audio.data[:, 0]})
            for k in range(calls // 2)
        ]
        socket_calls = [
            audiosocket_frames(uuid.UUID(int=k + 1), call_audio.data[:, 0])
            for k in range(calls - calls // 2)
        ]

        async def closed(reader):
            with contextlib.suppress(ConnectionError, asyncio.TimeoutError):
                await asyncio.wait_for(reader.read(), limit + 5)
            return loop.time() - t0

        watch = [asyncio.ensure_future(closed(r)) for r, _ in idle_conns]
        await asyncio.gather(
            *(twilio_call(gw.twilio_url, m, pace=PACE) for m in twilio),
            *(audiosocket_call(gw.audiosocket_port, f, pace=PACE) for f in socket_calls),
        )
        closed_after = await asyncio.gather(*watch)
        for _, w in idle_conns:
            w.close()
        return closed_after

    closed_after = asyncio.run(run())
    assert max(closed_after) < limit, max(closed_after)
    ends = gw.wait_ends(calls, timeout=120)
    assert all(e.verdict == "complete" for e in ends), [e for e in ends if e.verdict != "complete"]
    for e in ends:
        assert gw.recorded.words(e.call_id) == call_audio.words, e.call_id
    return closed_after


def test_idle_connections_are_closed_while_calls_keep_every_word(gateway, call_audio):
    gw = gateway(handshake_timeout=2.0, max_calls=2000)
    _flood(gw, call_audio, idle=200, calls=10, limit=2.0 + 1.0)


@pytest.mark.slow
def test_a_thousand_idle_connections_and_fifty_calls(gateway, call_audio):
    gw = gateway(handshake_timeout=3.0, max_calls=2000)
    closed = _flood(gw, call_audio, idle=1000, calls=50, limit=3.0 + 1.5)
    print(f"1000 idle connections closed within {max(closed):.2f} s (timeout 3 s)")


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _status(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
            return r.status
    except urllib.error.HTTPError as err:
        return err.code


def _sigterm_with_calls(fault_server, call_audio, tmp_path, calls: int, workers: int = 1):
    server = fault_server()
    tw, aso, ops = _free_ports(3)
    drain = 30.0
    with WebhookReceiver() as hook:
        proc = subprocess.Popen(
            [sys.executable, "-m", "nsaudio", "gateway", "--twilio", f"127.0.0.1:{tw}",
             "--audiosocket", f"127.0.0.1:{aso}", "--ops", f"127.0.0.1:{ops}",
             "--out-dir", str(tmp_path), "--webhook", hook.url, "--base-url", server.base_url,
             "--drain-timeout", str(drain), "--workers", str(workers), "--max-calls", "200"],
            cwd=ROOT, stderr=subprocess.PIPE, env={"PATH": "/usr/bin:/bin", "NS_API_KEY": server.api_key},
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while _status_or_none(ops) != 200:
                assert time.monotonic() < deadline and proc.poll() is None, (
                    "the gateway did not start"
                )
                time.sleep(0.1)

            async def run():
                tasks = []
                for k in range(calls):
                    if k % 2:
                        frames = audiosocket_frames(uuid.UUID(int=k + 1), call_audio.data[:, 0])
                        tasks.append(audiosocket_call(aso, frames, pace=PACE))
                    else:
                        msgs = twilio_messages(f"CA{k:032d}", {"inbound": call_audio.data[:, 0]})
                        tasks.append(twilio_call(f"ws://127.0.0.1:{tw}/stream", msgs, pace=PACE))
                calls_done = asyncio.gather(*tasks)
                await asyncio.sleep(2.0)  # every call in flight, a third of the way through
                t_term = time.monotonic()
                proc.send_signal(signal.SIGTERM)
                ready = await asyncio.to_thread(_status_or_none, ops)
                t_ready = time.monotonic() - t_term
                await calls_done
                return ready, t_ready, t_term

            ready, t_ready, t_term = asyncio.run(run())
            _, err = proc.communicate(timeout=drain + 30)
            took = time.monotonic() - t_term
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert ready in (503, None), ready  # not ready at once (or already gone)
        assert t_ready < 1.0
        assert proc.returncode == 0, err.decode()[-3000:]
        assert took < drain, took
        files = sorted(tmp_path.glob("*.jsonl"))
        assert len(files) == calls
        for f in files:
            lines = [json.loads(x) for x in f.read_text().splitlines()]
            assert " ".join(x["text"] for x in lines).split() == call_audio.words, f.name
            check_times(lines)
        ends = hook.ends()
        assert len(ends) == calls and all(e["verdict"] == "complete" for e in ends)
        assert not list(tmp_path.glob(".*.part"))  # nothing half-written left behind
    return took


def _status_or_none(port: int) -> int | None:
    try:
        return _status(port, "/readyz")
    except OSError:
        return None


def test_sigterm_with_calls_in_flight(fault_server, call_audio, tmp_path):
    _sigterm_with_calls(fault_server, call_audio, tmp_path, calls=10)


@pytest.mark.slow
def test_sigterm_with_fifty_calls_in_flight(fault_server, call_audio, tmp_path):
    took = _sigterm_with_calls(fault_server, call_audio, tmp_path, calls=50)
    print(f"50 calls: exit 0 {took:.1f} s after SIGTERM (drain timeout 30 s)")


@pytest.mark.slow
def test_sigterm_with_two_workers(fault_server, call_audio, tmp_path):
    took = _sigterm_with_calls(fault_server, call_audio, tmp_path, calls=20, workers=2)
    print(f"2 workers, 20 calls: exit 0 {took:.1f} s after SIGTERM")


def test_the_supervisors_metrics_add_up_its_workers(fault_server, call_audio, tmp_path):
    # --workers 2: each worker writes its metrics to the supervisor's directory, and the
    # supervisor's /metrics adds them up (it once raised on every scrape, which then hung).
    server = fault_server()
    aso, ops = _free_ports(2)
    proc = subprocess.Popen(
        [sys.executable, "-m", "nsaudio", "gateway", "--audiosocket", f"127.0.0.1:{aso}",
         "--ops", f"127.0.0.1:{ops}", "--base-url", server.base_url, "--workers", "2"],
        cwd=ROOT, stderr=subprocess.PIPE, env={"PATH": "/usr/bin:/bin", "NS_API_KEY": server.api_key},
        start_new_session=True,  # the supervisor and its workers: one group to kill if need be
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while _status_or_none(ops) != 200:
            assert time.monotonic() < deadline and proc.poll() is None, "it did not start"
            time.sleep(0.1)
        for k in range(2):
            frames = audiosocket_frames(uuid.UUID(int=k + 1), call_audio.data[:, 0])
            asyncio.run(audiosocket_call(aso, frames))
        want = 'nsaudio_gateway_calls_total{protocol="audiosocket",verdict="complete"} 2.0'
        text = ""
        while want not in text:  # each call's end is counted once its verdict is in
            assert time.monotonic() < deadline + 60, text
            with urllib.request.urlopen(f"http://127.0.0.1:{ops}/metrics", timeout=5) as r:
                assert r.status == 200
                text = r.read().decode()
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()[-3000:]
        assert b"Traceback" not in err and b"Unhandled exception" not in err, err.decode()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the workers too, or their stderr stays open
            proc.communicate(timeout=30)
