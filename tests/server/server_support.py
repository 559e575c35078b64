"""Client-side helpers for the local server's tests: what a real client does, step by step."""

from __future__ import annotations

import json
import struct
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import numpy as np
import requests
import websocket

from nsaudio.server.app import LocalServer

API_KEY = "test-api-key"


class StreamClient:
    """A client bound to one server, doing what a real client does, step by step."""

    def __init__(self, server: LocalServer, api_key: str = API_KEY) -> None:
        self.server = server
        self.api_key = api_key

    def get(self, path: str, **headers: str) -> requests.Response:
        headers = {"Authorization": self.api_key, **headers}
        return requests.get(self.server.base_url + path, headers=headers, timeout=10)

    def token(self, duration: float = 120) -> str:
        response = self.get(f"/api/v2/token?duration={duration}")
        response.raise_for_status()
        token: str = response.json()["data"]["token"]
        return token

    def url(
        self,
        *,
        language: str = "en",
        token: str | None = None,
        session_id: str | None = None,
        **query: Any,
    ) -> str:
        token = self.token() if token is None else token
        session_id = str(uuid.uuid4()) if session_id is None else session_id
        url = f"ws://127.0.0.1:{self.server.port}/voice/stream/live/transcribe/{language}/{token}/{session_id}"
        return url + ("?" + urlencode(query) if query else "")

    def connect(self, **kwargs: Any) -> websocket.WebSocket:
        return websocket.create_connection(self.url(**kwargs), timeout=10)

    def stream(
        self,
        pcm: bytes,
        *,
        chunk_bytes: int = 8192,
        expect_full: int = 1,
        idle: float = 0.3,
        timeout: float = 20.0,
        pace: float = 0.0,
        rate: int = 16000,
        **kwargs: Any,
    ) -> list[dict[str, Any]]:
        """Send ``pcm`` in chunks (at ``pace`` x real time, 0 = at once), then read results
        until ``expect_full`` full results came and ``idle`` seconds passed without more."""
        ws = self.connect(**kwargs)
        try:
            for i in range(0, len(pcm), chunk_bytes):
                chunk = pcm[i : i + chunk_bytes]
                ws.send_binary(chunk)
                if pace:
                    time.sleep(len(chunk) / 2 / rate / pace)
            return read_results(ws, expect_full=expect_full, idle=idle, timeout=timeout)
        finally:
            ws.close()


def read_results(
    ws: websocket.WebSocket, *, expect_full: int, idle: float, timeout: float
) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        full = sum(1 for r in results if r["full"])
        if full >= expect_full:
            ws.settimeout(idle)
        else:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out waiting for {expect_full} full results: {results}")
            ws.settimeout(remaining)
        try:
            opcode, frame = ws.recv_data_frame(control_frame=False)
        except websocket.WebSocketTimeoutException:
            if full >= expect_full:
                return results
            raise AssertionError(
                f"timed out waiting for {expect_full} full results: {results}"
            ) from None
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            raise AssertionError(f"server closed: {close_frame(frame.data)}; results: {results}")
        assert opcode == websocket.ABNF.OPCODE_TEXT, opcode
        results.append(json.loads(frame.data.decode("utf-8")))


def close_frame(data: bytes) -> tuple[int | None, str]:
    if len(data) < 2:
        return None, ""
    return struct.unpack("!H", data[:2])[0], data[2:].decode("utf-8")


def expect_close(ws: websocket.WebSocket, timeout: float = 10.0) -> tuple[int | None, str]:
    """Read until the server's close frame (answered by websocket-client); return its code
    and reason. The socket is closed afterwards: ``ws.close()`` would then do nothing."""
    ws.settimeout(timeout)
    try:
        while True:
            opcode, frame = ws.recv_data_frame(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                return close_frame(frame.data)
    finally:
        ws.shutdown()


def word_error_rate(reference: str, hypothesis: str) -> float:
    ref, hyp = reference.lower().split(), hypothesis.lower().split()
    row = list(range(len(hyp) + 1))
    for i in range(1, len(ref) + 1):
        previous, row = row, [i] + [0] * len(hyp)
        for j in range(1, len(hyp) + 1):
            row[j] = min(
                previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (ref[i - 1] != hyp[j - 1])
            )
    return row[-1] / len(ref)


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def tone_pcm(
    seconds: float, rate: int = 16000, level: float = 0.3, freq: float = 440.0
) -> np.ndarray:
    """A voiced stand-in: a tone at ``level`` of full scale (0.3 is about -13 dBFS)."""
    n = round(seconds * rate)
    t = np.arange(n) / rate
    return np.round(level * 32767 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def voice_pcm(seconds: float, rate: int = 16000, level: float = 0.3) -> np.ndarray:
    """A tone with syllable-like dips (50 ms at -30 dB every 250 ms), which real speech has
    and a steady tone lacks: the VAD's adaptive floor takes a steady tone for noise."""
    signal = tone_pcm(seconds, rate, level).astype(np.float64)
    t = np.arange(len(signal)) / rate
    signal[(t % 0.25) >= 0.2] *= 0.03
    return np.round(signal).astype(np.int16)


def silence_pcm(seconds: float, rate: int = 16000) -> np.ndarray:
    return np.zeros(round(seconds * rate), dtype=np.int16)
