"""A web page that streams your microphone through nsaudio and shows the transcript live.

    python examples/browser/app.py [--host 127.0.0.1] [--port 8000]

then open the address it prints. The page captures the microphone (getUserMedia and an
AudioWorklet), sends float32 PCM at its own sample rate over a WebSocket to this app, which
streams it with ``nsaudio.connect()`` (to NeuralSpace when ``NS_API_KEY`` is set, else to
nsaudio's built-in offline server, started here) and sends every result back: the page
rewrites the partial in place and adds each final line.

One process, one event loop: the page's files and its WebSocket are served by ``websockets``
(already an nsaudio dependency), and every browser gets its own nsaudio stream. When a page
goes away, even mid-sentence, its stream ends as a stream should (the last audio flushed, the
last results awaited) and the app prints what was transcribed, and whether completely.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

import nsaudio
from nsaudio import NsAudioError, StreamParams

HERE = Path(__file__).resolve().parent
PAGES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/worklet.js": ("worklet.js", "text/javascript; charset=utf-8"),
}
#: The largest message the page may send: 20 ms at 192 kHz of float32 is 15 kB.
MAX_MESSAGE = 1 << 16


class Service:
    """Where streams go: NeuralSpace with ``NS_API_KEY``, else a local server of our own."""

    def __init__(self) -> None:
        key = os.environ.get("NS_API_KEY", "").strip()
        self.server: Any = None
        if key:
            self.url = os.environ.get("NS_BASE_URL", "").strip() or "https://voice.neuralspace.ai"
            self.key = key
            self.description = self.url
        else:
            self.server = nsaudio.ServerProcess().start()
            self.url, self.key = self.server.base_url, "local"
            self.description = "nsaudio's offline server (no NS_API_KEY set)"

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()


def page(connection: ServerConnection, request: Request) -> Response | None:
    """The page's files; None lets ``/ws`` become a WebSocket."""
    path = request.path.split("?", 1)[0]
    if path == "/ws":
        return None
    if path not in PAGES:
        return connection.respond(404, "not found\n")
    name, kind = PAGES[path]
    body = (HERE / name).read_bytes()
    headers = Headers(
        [("Content-Type", kind), ("Content-Length", str(len(body))), ("Cache-Control", "no-store")]
    )
    return Response(200, "OK", headers, body)


async def transcribe(ws: ServerConnection, service: Service) -> None:
    """One page: its audio to one nsaudio stream, the results back to it."""
    host, port = ws.remote_address[:2]
    who = f"{host}:{port}"
    finals: list[str] = []
    verdict = "complete"
    try:
        hello = json.loads(await ws.recv())  # {"rate": the page's AudioContext sample rate}
        rate = int(hello["rate"])
        params = StreamParams(language="en", format="pcm_16k")
        async with nsaudio.connect(
            service.url, service.key, params, rate=rate, channels=1, dtype="float32", live=True
        ) as stream:
            print(f"{who}: streaming {rate} Hz from the page", flush=True)
            audio = asyncio.create_task(_audio_in(ws, stream))
            async for result in stream:
                if result.full and result.text:
                    finals.append(result.text)
                with contextlib.suppress(ConnectionClosed):  # a page gone: its end still comes
                    await ws.send(json.dumps(result.to_dict()))
            if not audio.done():  # the stream failed while the page was still sending
                audio.cancel()
            await asyncio.wait([audio])
            if not audio.cancelled():
                audio.result()  # its error, if it had one
    except (NsAudioError, ValueError, KeyError) as err:
        verdict = f"error: {err}"
    except ConnectionClosed:
        verdict = "the page left before it said its sample rate"
    text = " / ".join(finals) or "(nothing)"
    print(f"{who}: transcribed: {text} [{verdict}]", flush=True)
    with contextlib.suppress(ConnectionClosed):
        await ws.send(json.dumps({"done": True, "verdict": verdict}))


async def _audio_in(ws: ServerConnection, stream: nsaudio.AsyncStream) -> None:
    """The page's audio into the stream until it says "stop" or goes away; then the end."""
    try:
        async for message in ws:
            if isinstance(message, bytes):
                await stream.send(message)
            elif message == "stop":
                break
    except ConnectionClosed:
        pass  # gone mid-sentence: what it sent is still transcribed
    await stream.end()


async def main(host: str, port: int) -> None:
    service = Service()
    try:

        async def handler(ws: ServerConnection) -> None:
            await transcribe(ws, service)

        async with serve(handler, host, port, process_request=page, max_size=MAX_MESSAGE) as app:
            bound = app.sockets[0].getsockname()
            print(f"open http://{host}:{bound[1]}/ (transcribing with {service.description})",
                  flush=True)  # fmt: skip
            await asyncio.get_running_loop().create_future()  # until interrupted
    finally:
        service.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="Stream a browser's microphone through nsaudio.")
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on")
    ap.add_argument("--port", type=int, default=8000, help="port (0: any free one)")
    args = ap.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(args.host, args.port))
    sys.exit(0)
