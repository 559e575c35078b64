"""The local server's plain HTTP side: the two REST calls, and the token check that runs
before a stream's WebSocket handshake (``process_request`` of the websockets server).

Errors are JSON, ``{"error": {"status": N, "message": "..."}}``: 401 for a missing or rejected
key and for an unknown or expired stream token, 400 for a bad ``duration``, 404 elsewhere.
"""

from __future__ import annotations

import hmac
import http
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from .logs import log
from .params import (
    LANGUAGES,
    STREAM_PREFIX,
    NotAStreamPath,
    RestParamError,
    parse_token_duration,
    redact_path,
    split_stream_path,
)
from .tokens import TokenStore

__all__ = ["RestApi"]


def _json_response(
    connection: ServerConnection, status: http.HTTPStatus, body: dict[str, Any]
) -> Response:
    response = connection.respond(status, json.dumps(body) + "\n")
    del response.headers["Content-Type"]
    response.headers["Content-Type"] = "application/json"
    return response


def _error(connection: ServerConnection, status: http.HTTPStatus, message: str) -> Response:
    return _json_response(
        connection, status, {"error": {"status": int(status), "message": message}}
    )


class RestApi:
    """``process_request`` for the websockets server: answers REST calls, refuses stream
    requests with a bad path (404) or token (401), and lets valid ones on to the handshake.

    ``api_key``: the one key accepted, or None to accept any non-empty key.
    """

    def __init__(self, tokens: TokenStore, api_key: str | None) -> None:
        self.tokens = tokens
        self._api_key = api_key

    def __call__(self, connection: ServerConnection, request: Request) -> Response | None:
        parts = urlsplit(request.path)
        if parts.path.startswith(STREAM_PREFIX):
            return self._check_stream_request(connection, request)
        if parts.path == "/api/v2/languages":
            response = self._authorize(connection, request) or _json_response(
                connection, http.HTTPStatus.OK, {"data": {"languages": list(LANGUAGES)}}
            )
        elif parts.path == "/api/v2/token":
            response = self._authorize(connection, request) or self._issue(connection, parts.query)
        else:
            response = _error(connection, http.HTTPStatus.NOT_FOUND, "unknown path")
        log.info("GET %s -> %d", redact_path(parts.path), response.status_code)
        return response

    def _authorize(self, connection: ServerConnection, request: Request) -> Response | None:
        values = request.headers.get_all("Authorization")
        if len(values) != 1 or not values[0].strip():
            return _error(
                connection,
                http.HTTPStatus.UNAUTHORIZED,
                "missing Authorization header: send your API key in it",
            )
        if self._api_key is not None and not hmac.compare_digest(
            values[0].strip().encode(), self._api_key.strip().encode()
        ):
            return _error(connection, http.HTTPStatus.UNAUTHORIZED, "API key rejected")
        return None

    def _issue(self, connection: ServerConnection, query: str) -> Response:
        try:
            duration = parse_token_duration(parse_qs(query, keep_blank_values=True))
        except RestParamError as exc:
            return _error(connection, http.HTTPStatus.BAD_REQUEST, exc.reason)
        token = self.tokens.issue(duration)
        return _json_response(connection, http.HTTPStatus.OK, {"data": {"token": token}})

    def _check_stream_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        try:
            path = split_stream_path(request.path)
        except NotAStreamPath as exc:
            log.info("GET %s -> 404 (%s)", redact_path(request.path), exc.reason)
            return _error(connection, http.HTTPStatus.NOT_FOUND, exc.reason)
        if not self.tokens.is_valid(path.token):
            log.info("GET %s -> 401 (unknown or expired token)", redact_path(request.path))
            return _error(
                connection,
                http.HTTPStatus.UNAUTHORIZED,
                "unknown or expired token: get a new one from /api/v2/token",
            )
        return None
