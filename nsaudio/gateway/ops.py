"""``/healthz``, ``/readyz`` and ``/metrics`` on a port of their own (``--ops HOST:PORT``).

A few lines of HTTP/1.1 on asyncio streams: GET only, one request per connection, the
request head bounded and read within a few seconds, so a probe or a scraper costs nothing
and a stray client cannot hold a connection.

- ``/healthz``: 200 while the process runs its loop (liveness).
- ``/readyz``: 200 while it takes new calls, 503 from the moment a drain begins (SIGTERM),
  so a load balancer stops sending calls at once.
- ``/metrics``: the Prometheus text exposition.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

__all__ = ["OpsServer"]

log = logging.getLogger("nsaudio.gateway")

_MAX_HEAD = 8 * 1024
_READ_TIMEOUT = 5.0


class OpsServer:
    """Serves the three paths; ``ready()`` and ``metrics()`` are asked on every request.

    Args:
        host, port: where to listen (port 0: any free one; see ``port`` once started).
        ready: whether new calls are taken now.
        metrics: the exposition text.
    """

    def __init__(
        self, host: str, port: int, ready: Callable[[], bool], metrics: Callable[[], bytes]
    ) -> None:
        self.host = host
        self.port = port
        self.ready = ready
        self.metrics = metrics
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _READ_TIMEOUT)
            status, ctype, body = self._answer(head)
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            status, ctype, body = 400, "text/plain", b"bad request\n"
        except ConnectionError:
            writer.close()
            return
        except Exception:  # ours (the metrics could not be read...): answered, logged
            log.exception("the ops endpoint failed to answer")
            status, ctype, body = 500, "text/plain", b"internal error\n"
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
                  500: "Internal Server Error", 503: "Service Unavailable"}[status]  # fmt: skip
        writer.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        with contextlib.suppress(Exception):
            await writer.drain()
        writer.close()

    def _answer(self, head: bytes) -> tuple[int, str, bytes]:
        if len(head) > _MAX_HEAD:
            return 400, "text/plain", b"bad request\n"
        parts = head.split(b"\r\n", 1)[0].split(b" ")
        if len(parts) != 3:
            return 400, "text/plain", b"bad request\n"
        method, target = parts[0], parts[1].split(b"?", 1)[0]
        if method not in (b"GET", b"HEAD"):
            return 405, "text/plain", b"GET only\n"
        if target == b"/healthz":
            return 200, "text/plain", b"ok\n"
        if target == b"/readyz":
            return (200, "text/plain", b"ready\n") if self.ready() else (
                503, "text/plain", b"draining\n",
            )  # fmt: skip
        if target == b"/metrics":
            return 200, "text/plain; version=0.0.4; charset=utf-8", self.metrics()
        return 404, "text/plain", b"not found\n"
