"""Headless Chromium driven over the DevTools protocol, with its microphone faked from a WAV.

Only what the browser tests need: start Chromium on a page, evaluate JavaScript in it, take a
screenshot, and kill it (as a user closing the tab would leave the page's sockets). The
protocol is JSON over a WebSocket, spoken here with ``websockets``' synchronous client, so
no driver package is needed.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

#: The flags that work on these machines (and in CI): no sandbox as root, no GPU, nothing
#: fetched from the network, the microphone allowed without asking and read from a file.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    "--window-size=900,560",
]


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Chromium:
    """One headless Chromium on ``url``, its fake microphone playing ``wav`` once."""

    def __init__(self, url: str, wav: Path, profile: Path, *, timeout: float = 30.0) -> None:
        exe = chromium_path()
        if exe is None:
            raise FileNotFoundError("chromium is not installed (apt-get install chromium)")
        profile.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [exe, *FLAGS, f"--use-file-for-fake-audio-capture={wav}%noloop",
             f"--user-data-dir={profile}", "--remote-debugging-port=0", url],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        self._id = 0
        self._stack = contextlib.ExitStack()
        self.ws: ClientConnection | None = None
        try:
            port = self._devtools_port(profile, timeout)
            url = self._page_socket(port, timeout)
            self.ws = self._stack.enter_context(connect(url, max_size=1 << 26))
        except BaseException:
            self.kill()
            raise

    def _devtools_port(self, profile: Path, timeout: float) -> int:
        marker = profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.proc.returncode}")
            lines = marker.read_text().splitlines() if marker.exists() else []
            if lines and lines[0].isdigit():
                return int(lines[0])
            time.sleep(0.1)
        raise TimeoutError("chromium did not open its DevTools port")

    def _page_socket(self, port: int, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
                pages = [t for t in json.load(r) if t.get("type") == "page"]
            if pages:
                return str(pages[0]["webSocketDebuggerUrl"])
            time.sleep(0.1)
        raise TimeoutError("chromium opened no page")

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """One protocol command and its result (events in between are skipped)."""
        assert self.ws is not None
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=30))
            if message.get("id") == self._id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float) -> Any:
        """Evaluate ``expression`` until it is truthy; its value, or None after ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.1)
        return None

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))

    def kill(self) -> None:
        """Gone at once, as a crashed or closed browser is: its sockets are cut, not closed."""
        self._stack.close()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
