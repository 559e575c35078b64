"""Opening WebSocket sessions: tokens, the handshake, and what each failure means.

The only module that opens connections with the WebSocket library (``websockets``, asyncio).
Sessions are opened on the event loop that will own them, and so are the token requests
(:mod:`.rest`, each bounded as a whole by ``connect_timeout``). Everything raised or logged
has the token redacted, and the library's own trace (``-vv``) goes through a redacting
filter.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from ..errors import AuthenticationError, ServiceError
from .http import network_error
from .protocol import StreamParams, redact, stream_url
from .rest import RestClient

__all__ = ["CLOSE_NORMAL", "MAX_MESSAGE", "Closed", "Connector", "classify_close", "describe_end"]

log = logging.getLogger("nsaudio.neuralspace")

CLOSE_NORMAL = 1000
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
MAX_MESSAGE = 1 << 20
#: How long a close handshake may take before the socket is cut.
CLOSE_TIMEOUT = 1.0


@dataclass(frozen=True)
class Closed:
    """The session ended (``code`` None: the connection broke; ``local``: we closed it)."""

    code: int | None
    reason: str
    local: bool = False


class _RedactingFilter(logging.Filter):
    """Hides tokens in the WebSocket library's own log lines (its trace shows the request)."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage(), *self.secrets)
        record.args = None
        return True


class Connector:
    """Fetches tokens (cached until near expiry) and opens sessions, mapping every failure.

    :meth:`open` raises :class:`AuthenticationError` (never retried) for a rejected key or a
    token refused even when fresh; :class:`ServiceError` with ``retryable`` otherwise.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        params: StreamParams,
        *,
        token_duration: int = 3600,
        connect_timeout: float = 10.0,
        ca_file: str | None = None,
    ) -> None:
        self.base_url = base_url
        self.params = params
        self.rest = RestClient(base_url, api_key, timeout=connect_timeout, ca_file=ca_file)
        self.token_duration = token_duration
        self.connect_timeout = connect_timeout
        self.ca_file = ca_file
        self._token: str | None = None
        self._token_expires = 0.0
        self._secrets: list[str] = [api_key] if api_key else []
        self._install_trace_filter()

    def __repr__(self) -> str:
        return f"Connector({self.base_url!r}, params={self.params!r})"

    def _install_trace_filter(self) -> None:
        wslog = logging.getLogger("websockets.client")  # where the client logs (filters
        # of a logger do not apply to its children's records)
        for f in wslog.filters:
            if isinstance(f, _RedactingFilter):
                f.secrets = self._secrets
                return
        wslog.addFilter(_RedactingFilter(self._secrets))

    async def token(self, fresh: bool = False) -> str:
        """A session token: the cached one, or (``fresh``, or near its expiry) a new one.

        Called on the loop that owns the sessions, so the cache needs no lock.
        """
        # Renew a little early so a session never starts on a token about to expire.
        if fresh or self._token is None or time.monotonic() > self._token_expires - 30:
            token = await self.rest.fetch_token(self.token_duration)
            self._token = token
            self._token_expires = time.monotonic() + self.token_duration
            self._secrets.append(token)
            if len(self._secrets) > 9:  # the key and the last few tokens: all that can show
                del self._secrets[1:-8]
        return self._token

    def redact(self, text: str) -> str:
        return redact(text, *self._secrets)

    async def open(self, token: str) -> tuple[Any, str]:
        """Open a session with ``token`` on the running loop: ``(connection, session id)``."""
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidHandshake, InvalidStatus

        from .pong_connection import PongConnection

        url = stream_url(self.base_url, token, self.params)
        session_id = url.rsplit("/", 1)[1].split("?", 1)[0]
        log.debug("connecting to %s", redact(url))
        try:
            ws = await connect(
                url,
                ssl=self.rest.ssl_context() if url.startswith("wss:") else None,
                open_timeout=self.connect_timeout,
                close_timeout=CLOSE_TIMEOUT,
                ping_interval=None,  # the session machine pings and judges liveness
                max_size=MAX_MESSAGE,
                compression=None,  # PCM does not deflate; it would only cost CPU
                proxy=None,
                create_connection=PongConnection,  # pongs read past websockets' parser
            )
        except InvalidStatus as err:
            status = err.response.status_code
            if status in (401, 403):
                raise AuthenticationError(
                    f"the service refused the session token (HTTP {status})",
                    status=status,
                    credential="token",
                ) from None
            raise ServiceError(
                f"the service refused the WebSocket (HTTP {status})",
                retryable=status >= 500 or status == 429,
                status=status,
            ) from None
        except InvalidHandshake as err:
            cause = err.__cause__
            if isinstance(cause, (OSError, asyncio.TimeoutError, EOFError)):
                raise network_error(cause, url, self.connect_timeout) from None
            raise ServiceError(
                f"the WebSocket handshake failed: {self.redact(f'{type(err).__name__}: {err}')}"
            ) from None
        except (OSError, asyncio.TimeoutError, EOFError) as err:
            raise network_error(err, url, self.connect_timeout) from None
        log.info("session %s open", session_id)
        return ws, session_id


def describe_end(ws: Any, error: BaseException | None) -> Closed:
    """How a websockets connection ended, as :class:`Closed`."""
    protocol = ws.protocol
    rcvd, sent = protocol.close_rcvd, protocol.close_sent
    if sent is not None and (rcvd is None or not protocol.close_rcvd_then_sent):
        reason = sent.reason
        if sent.code == CLOSE_TOO_BIG:
            reason = f"the service sent a message over the cap ({reason})"
        return Closed(sent.code, reason, local=True)
    if rcvd is not None:
        return Closed(rcvd.code, rcvd.reason)
    cause = error.__cause__ if error is not None and error.__cause__ is not None else error
    what = f"{type(cause).__name__}: {cause}" if cause is not None else "no close frame"
    return Closed(None, what)


def classify_close(closed: Closed, *, early: bool) -> ServiceError | None:
    """What a close means: None for a normal end, else the error to retry or raise.

    1008 right after connecting is the service refusing the session (token or parameters):
    not worth retrying. A 1008 later, 1011, 1001, 1006 or a broken socket are worth a retry.
    """
    if closed.code == CLOSE_NORMAL:
        return None
    reason = closed.reason or "no reason given"
    if closed.code == CLOSE_POLICY and early:
        if "token" in reason.lower() or "auth" in reason.lower():
            return AuthenticationError(
                f"the service refused the session: {reason}",
                status=CLOSE_POLICY,
                credential="token",
            )
        return ServiceError(
            f"the service refused the session: {reason}", retryable=False, status=CLOSE_POLICY
        )
    who = "nsaudio" if closed.local else "the service"
    what = (
        "the connection broke"
        if closed.code is None
        else f"{who} closed the session ({closed.code})"
    )
    return ServiceError(f"{what}: {reason}", retryable=True, status=closed.code)
