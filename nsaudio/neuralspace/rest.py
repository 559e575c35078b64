"""The REST half of the service: the language list and short-lived tokens.

The API key goes into the ``Authorization`` header of these calls and nowhere else; errors
name the URL path, never the key or a token. Each call is one HTTP GET bounded as a whole by
``timeout`` (see :mod:`.http`): the async methods run on the caller's loop, the plain ones
on a loop of their own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import ssl
from collections.abc import Coroutine
from typing import Any, TypeVar

from ..errors import AuthenticationError, ProtocolError, ServiceError
from . import http
from .protocol import rest_base

__all__ = ["RestClient"]

log = logging.getLogger("nsaudio.neuralspace")

T = TypeVar("T")


def run_blocking(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to its end from plain code, on a loop of its own (in a worker thread if
    this thread already runs one)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


class RestClient:
    """``languages()`` and ``token(duration)`` against ``base_url``; each call as a whole
    within ``timeout`` seconds. ``ca_file``: a CA to trust besides the system's."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 10.0,
        ca_file: str | None = None,
    ) -> None:
        self.base_url = rest_base(base_url)
        self._api_key = api_key
        self.timeout = timeout
        self.ca_file = ca_file
        self._ssl: ssl.SSLContext | None = None

    def __repr__(self) -> str:
        return f"RestClient({self.base_url!r}, api_key=<redacted>)"

    def ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context(cafile=self.ca_file)
        return self._ssl

    async def _get(self, path: str, query: str) -> dict[str, Any]:
        url = f"{self.base_url}{path}?{query}"
        ctx = self.ssl_context() if url.startswith("https:") else None
        try:
            resp = await http.get(
                url, {"Authorization": self._api_key}, timeout=self.timeout, ssl_context=ctx
            )
        except ServiceError as err:
            raise ServiceError(
                f"cannot reach {self.base_url}: {err}", retryable=err.retryable
            ) from None
        if resp.status in (401, 403):
            raise AuthenticationError(
                f"the service rejected the API key (HTTP {resp.status} on {path}): "
                "check NS_API_KEY or --api-key-file",
                status=resp.status,
                credential="key",
            )
        if resp.status >= 500 or resp.status == 429:
            raise ServiceError(
                f"the service failed (HTTP {resp.status} on {path})", status=resp.status
            )
        if resp.status != 200:
            raise ServiceError(
                f"unexpected HTTP {resp.status} on {path}", retryable=False, status=resp.status
            )
        try:
            body = json.loads(resp.body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise ProtocolError(f"{path} did not answer JSON") from None
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise ProtocolError(f"{path} answered JSON without a 'data' object")
        return data

    async def fetch_languages(self) -> list[str]:
        """The languages the service streams, as it lists them."""
        data = await self._get("/api/v2/languages", "type=stream")
        langs = data.get("languages")
        if not isinstance(langs, list) or not all(isinstance(x, str) for x in langs):
            raise ProtocolError("/api/v2/languages answered without a list of languages")
        return langs

    async def fetch_token(self, duration: int = 3600) -> str:
        """A short-lived token valid for ``duration`` seconds."""
        data = await self._get("/api/v2/token", f"duration={int(duration)}")
        token = data.get("token")
        if not isinstance(token, str) or not token:
            raise ProtocolError("/api/v2/token answered without a token")
        log.debug("got a token valid for %d s", duration)
        return token

    def languages(self) -> list[str]:
        """:meth:`fetch_languages`, blocking."""
        return run_blocking(self.fetch_languages())

    def token(self, duration: int = 3600) -> str:
        """:meth:`fetch_token`, blocking."""
        return run_blocking(self.fetch_token(duration))
