"""The NeuralSpace guide's own client flow, step by step, against the local server."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import requests
import websocket

from nsaudio.server.app import LocalServer

from .server_support import API_KEY, silence_pcm, word_error_rate

SENTENCE = "my name is john and i live in a small house near the river"
KEYS = {"full", "stream_id", "chunk_id", "start_time", "end_time", "send_time", "text"}
FRAMES_PER_BUFFER = 4096
RATE = 16000
SPEED = 4.0  # the guide sends at real time (a microphone); 4x keeps the test short


def test_guide_client_flow(
    sphinx_server: LocalServer, speech: Callable[[str, int], np.ndarray]
) -> None:
    base = sphinx_server.base_url
    headers = {"Authorization": API_KEY}

    response = requests.get(
        f"{base}/api/v2/languages", params={"type": "stream"}, headers=headers, timeout=10
    )
    assert response.status_code == 200
    assert "en" in response.json()["data"]["languages"]

    response = requests.get(
        f"{base}/api/v2/token", params={"duration": 600}, headers=headers, timeout=10
    )
    assert response.status_code == 200
    token = response.json()["data"]["token"]

    session_id = str(uuid.uuid4())
    ws_base = base.replace("http://", "ws://")
    url = (
        f"{ws_base}/voice/stream/live/transcribe/en/{token}/{session_id}"
        "?max_chunk_size=5&vad_threshold=0.5&disable_partial=False&format=pcm_16k"
    )
    ws = websocket.create_connection(url)

    received: list[dict[str, Any]] = []
    got_full = threading.Event()

    def receive() -> None:  # the guide receives in a separate thread
        while not got_full.is_set():
            message = ws.recv()
            if not message:
                return
            result = json.loads(message)
            received.append(result)
            if result["full"]:
                got_full.set()

    receiver = threading.Thread(target=receive, daemon=True)
    receiver.start()

    audio = np.concatenate([speech(SENTENCE, RATE), silence_pcm(1.0)])
    for i in range(0, len(audio), FRAMES_PER_BUFFER):
        ws.send_binary(audio[i : i + FRAMES_PER_BUFFER].tobytes())
        time.sleep(FRAMES_PER_BUFFER / RATE / SPEED)

    assert got_full.wait(10), received
    receiver.join(5)
    ws.close()

    assert received and all(set(r) == KEYS for r in received)
    assert all(r["stream_id"] == session_id for r in received)
    assert any(not r["full"] for r in received)
    full = received[-1]
    assert full["full"] and word_error_rate(SENTENCE, full["text"]) <= 0.2
    assert full["send_time"] <= time.time()
