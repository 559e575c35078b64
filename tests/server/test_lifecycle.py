from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import requests
import websocket

from nsaudio.server.app import LocalServer

from .counting_engine import CountingEngine
from .server_support import StreamClient, expect_close, silence_pcm, voice_pcm, wait_until

ROOT = Path(__file__).resolve().parents[2]
SID = "1b4e28ba-2fa1-41d2-883f-0016d3cca427"


def test_serve_forever_in_a_thread_stops_on_stop() -> None:
    server = LocalServer(engine_factory=CountingEngine, prewarm=False)
    urls: list[str] = []
    outcome: list[int | None] = []
    ready = threading.Event()

    def on_ready(srv: LocalServer) -> None:
        urls.append(srv.base_url)
        ready.set()

    thread = threading.Thread(
        target=lambda: outcome.append(server.serve_forever(on_ready=on_ready))
    )
    thread.start()
    assert ready.wait(10)
    assert requests.get(urls[0] + "/api/v2/languages", headers={"Authorization": "k"}, timeout=5).ok
    server.stop()
    thread.join(10)
    assert not thread.is_alive() and outcome == [None]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_serve_forever_stops_cleanly_on_signal(signum: int) -> None:
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from nsaudio.server.app import LocalServer\n"
        "from tests.server.counting_engine import CountingEngine\n"
        "server = LocalServer(engine_factory=CountingEngine, prewarm=False)\n"
        "stopped_by = server.serve_forever(on_ready=lambda s: print(s.base_url, flush=True))\n"
        "print('stopped by', stopped_by, flush=True)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        headers = {"Authorization": "k"}
        token = requests.get(url + "/api/v2/token", headers=headers, timeout=5).json()["data"][
            "token"
        ]
        ws_url = url.replace("http://", "ws://") + f"/voice/stream/live/transcribe/en/{token}/{SID}"
        ws = websocket.create_connection(ws_url, timeout=10)
        proc.send_signal(signum)
        assert expect_close(ws)[0] == 1001  # open sessions are closed as "going away"
        out, _ = proc.communicate(timeout=15)
        assert proc.returncode == 0
        assert out.strip() == f"stopped by {int(signum)}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _socket_buffers_mib() -> int:
    """The most a loopback connection's receive and send buffers can hold, in MiB."""
    most = 0
    for name in ("tcp_rmem", "tcp_wmem"):
        try:
            most += int(Path(f"/proc/sys/net/ipv4/{name}").read_text().split()[2])
        except (OSError, ValueError, IndexError):
            most += 8 << 20  # not Linux: a generous guess
    return -(-most // (1 << 20))


class GatedEngine(CountingEngine):
    """Blocks in process() until the gate opens, like a decoder that cannot keep up."""

    gate = threading.Event()
    processed = 0

    def process(self, samples: np.ndarray) -> None:
        GatedEngine.gate.wait(20)
        GatedEngine.processed += len(samples)
        super().process(samples)


def test_a_slow_engine_slows_the_sender() -> None:
    """The server reads the next message only after the last one was transcribed: a client
    sending faster than that is held back by TCP, and the server's memory stays bounded.

    What the sender gets away with before it is held: the server's queue (32 messages) and
    the two sockets' buffers, which Linux grows on loopback up to ``tcp_rmem`` and
    ``tcp_wmem``'s maximum (32 MiB and 4 MiB on some machines): the sender offers more than
    all of that, and must be held back before it has sent it."""
    held_at = 32 + _socket_buffers_mib() + 2
    offered = held_at + 16
    GatedEngine.gate.clear()
    with LocalServer(engine_factory=GatedEngine, prewarm=False) as server:
        ws = StreamClient(server).connect(disable_partial="true")
        speech = np.concatenate([silence_pcm(0.5), voice_pcm(1.0)]).tobytes()
        block = np.tile(voice_pcm(1.0), 32).tobytes()  # 1 MiB (32 s) per message
        sent: list[int] = []

        def send() -> None:
            ws.send_binary(speech)
            for _ in range(offered):
                ws.send_binary(block)
                sent.append(1)

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        time.sleep(1.0)
        held_back = len(sent)
        assert sender.is_alive() and held_back < held_at, (held_back, held_at)
        GatedEngine.gate.set()
        sender.join(60)
        assert not sender.is_alive()
        ws.send_binary(silence_pcm(1.0).tobytes())
        wait_until(lambda: GatedEngine.processed >= offered * 32 * 16000, timeout=60)
        ws.close()
        wait_until(lambda: server.active_sessions == 0)
