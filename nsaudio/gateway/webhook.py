"""``--webhook URL``: a JSON POST per final result and one per call end, never in audio's way.

Events go into a bounded queue (``post()`` never waits; a full queue is a counted, logged
failure) and a few sender tasks POST them, each retried with capped exponential backoff.
Several POSTs are in flight at once, so events may arrive out of order: each carries its
call's ``sequence`` number (results in the order they came, the call end last). A POST that
still fails is counted and logged with the URL's scheme and host only: a
webhook URL often carries a secret in its path or query.

The client is a small HTTP/1.1 one on asyncio streams (one connection per POST, TLS with
verification for ``https``), so the gateway needs no HTTP library on its loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from ..errors import InputError

__all__ = ["WebhookSender", "post_json"]

log = logging.getLogger("nsaudio.gateway")

#: The largest response head read back (status line and headers).
_MAX_HEAD = 16 * 1024


def _parse(url: str) -> tuple[str, str, int, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError("--webhook must be an http:// or https:// URL")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise InputError("--webhook has a port that is not a number") from None
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname, port, target


async def post_json(
    url: str, body: bytes, *, timeout: float, ssl_context: ssl.SSLContext | None = None
) -> int:
    """POST ``body`` (JSON) to ``url``; the response's status code. Raises ``OSError`` or
    ``TimeoutError`` when there is no answer."""
    return await asyncio.wait_for(_post(url, body, ssl_context), timeout)


async def _post(url: str, body: bytes, ssl_context: ssl.SSLContext | None) -> int:
    scheme, host, port, target = _parse(url)
    tls = (ssl_context or ssl.create_default_context()) if scheme == "https" else None
    reader, writer = await asyncio.open_connection(host, port, ssl=tls)  # one per POST
    try:
        head = (
            f"POST {target} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Content-Type: application/json\r\nUser-Agent: nsaudio-gateway\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        writer.write(head.encode("latin-1") + body)
        await writer.drain()
        line = await reader.readuntil(b"\r\n")
        if len(line) > _MAX_HEAD:
            raise OSError("an oversized response")
        parts = line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            raise OSError("not an HTTP response")
        return int(parts[1])
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


class WebhookSender:
    """Bounded, retried JSON POSTs to one URL.

    Args:
        url: where to POST (http or https).
        queue_size: events that may wait; beyond, ``post()`` refuses (counted).
        senders: POSTs in flight at once.
        attempts: tries per event (the first included).
        backoff: (first, largest) delay between tries, in seconds.
        timeout: seconds one POST may take.
        on_failure: called with each event that could not be delivered (for metrics).
        ssl_context: for ``https`` with a private CA.
    """

    def __init__(
        self,
        url: str,
        *,
        queue_size: int = 10_000,
        senders: int = 4,
        attempts: int = 5,
        backoff: tuple[float, float] = (0.5, 8.0),
        timeout: float = 10.0,
        on_failure: Callable[[dict[str, Any]], None] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        scheme, host, port, _ = _parse(url)
        self._url = url
        self.where = f"{scheme}://{host}:{port}"  # what logs may show
        self.attempts = attempts
        self.backoff = backoff
        self.timeout = timeout
        self.on_failure = on_failure
        self.ssl_context = ssl_context
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(queue_size)
        self.delivered = 0
        self.failed = 0
        self._senders = senders
        self._tasks: list[asyncio.Task[None]] = []

    def __repr__(self) -> str:
        return f"WebhookSender({self.where!r})"

    def start(self) -> None:
        self._tasks = [asyncio.ensure_future(self._send_loop()) for _ in range(self._senders)]

    def post(self, event: dict[str, Any]) -> bool:
        """Queue ``event``; False (counted as a failure) if the queue is full."""
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self._failed(event, "the queue is full")
            return False
        return True

    def _failed(self, event: dict[str, Any], why: str) -> None:
        self.failed += 1
        log.warning(
            "webhook %s: a %s event for call %s was not delivered: %s",
            self.where, event.get("event"), event.get("call_id"), why,
        )  # fmt: skip
        if self.on_failure is not None:
            self.on_failure(event)

    async def _send_loop(self) -> None:
        while True:
            event = await self.queue.get()
            try:
                await self._deliver(event)
            finally:
                self.queue.task_done()

    async def _deliver(self, event: dict[str, Any]) -> None:
        body = json.dumps(event, ensure_ascii=False).encode()
        delay, why = self.backoff[0], ""
        for attempt in range(self.attempts):
            if attempt:
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.backoff[1])
            try:
                status = await post_json(
                    self._url, body, timeout=self.timeout, ssl_context=self.ssl_context
                )
            except (
                OSError,
                asyncio.TimeoutError,
                asyncio.IncompleteReadError,
                asyncio.LimitOverrunError,
            ) as err:
                why = type(err).__name__
                continue
            if 200 <= status < 300:
                self.delivered += 1
                return
            why = f"HTTP {status}"
            if 400 <= status < 500 and status not in (408, 429):
                break  # the receiver refuses this event: trying again changes nothing
        self._failed(event, f"{why} after {attempt + 1} tries")

    async def close(self, timeout: float) -> bool:
        """Deliver what is queued for up to ``timeout`` seconds; True if nothing was left."""
        done = True
        try:
            await asyncio.wait_for(self.queue.join(), timeout)
        except asyncio.TimeoutError:
            done = False
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if not done:
            left = self.queue.qsize()
            while not self.queue.empty():
                self._failed(self.queue.get_nowait(), "the gateway stopped first")
            log.warning("webhook %s: %d events left undelivered at the end", self.where, left)
        return done
