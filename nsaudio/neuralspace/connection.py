"""Opening WebSocket sessions: tokens, the handshake, and what each failure means.

The only module that touches websocket-client. Everything it raises or logs has the token
redacted, and websocket-client's own trace (``-vv``) goes through a redacting filter.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any

from ..errors import AuthenticationError, ServiceError
from .protocol import StreamParams, redact, stream_url
from .rest import RestClient

__all__ = ["CLOSE_NORMAL", "Closed", "Connection", "Connector"]

log = logging.getLogger("nsaudio.neuralspace")

CLOSE_NORMAL = 1000
CLOSE_POLICY = 1008
MAX_MESSAGE = 1 << 20


@dataclass(frozen=True)
class Closed:
    """The session ended (``code`` None: the connection broke; ``local``: we closed it)."""

    code: int | None
    reason: str
    local: bool = False


class _RedactingFilter(logging.Filter):
    """Hides tokens in websocket-client's own log lines (its trace shows the request line)."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage(), *self.secrets)
        record.args = None
        return True


class Connection:
    """One open session: ``send(pcm)``, ``recv() -> str | bytes | Closed``, ``ping()``."""

    def __init__(self, ws: Any, session_id: str, secrets: list[str]) -> None:
        self._ws = ws
        self.session_id = session_id
        self._secrets = secrets
        self.last_pong = time.monotonic()
        self._closed = False

    def __repr__(self) -> str:
        return f"Connection(session_id={self.session_id!r})"

    def send(self, pcm: bytes) -> None:
        import websocket

        try:
            self._ws.send_bytes(pcm) if hasattr(self._ws, "send_bytes") else self._ws.send(
                pcm, websocket.ABNF.OPCODE_BINARY
            )
        except (OSError, websocket.WebSocketException) as err:
            raise ServiceError(f"connection lost while sending: {self._describe(err)}") from None

    def settimeout(self, seconds: float | None) -> None:
        """Bound every blocking send: a peer that stops reading fails the send after this long.

        A receive that waits this long just waits again; liveness is judged by pongs.
        """
        self._ws.settimeout(seconds)

    def ping(self) -> None:
        import websocket

        try:
            self._ws.ping()
        except (OSError, websocket.WebSocketException) as err:
            raise ServiceError(f"connection lost while pinging: {self._describe(err)}") from None

    def recv(self) -> str | bytes | Closed:
        """The next data message, or :class:`Closed` when the session ends either way."""
        import websocket

        ABNF = websocket.ABNF
        while True:
            try:
                opcode, frame = self._ws.recv_data_frame(True)
            except websocket.WebSocketTimeoutException:
                if self._closed:
                    return Closed(None, "the session was closed")
                continue  # nothing yet (websocket-client keeps a partial frame for the next try)
            except (OSError, websocket.WebSocketException, AttributeError, ValueError) as err:
                # AttributeError/ValueError: websocket-client's socket was shut down under us.
                return Closed(None, self._describe(err))
            if opcode == ABNF.OPCODE_PONG:
                self.last_pong = time.monotonic()
                continue
            if opcode == ABNF.OPCODE_CLOSE:
                data = frame.data or b""
                code = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
                return Closed(code, data[2:].decode("utf-8", "replace"))
            if opcode in (ABNF.OPCODE_TEXT, ABNF.OPCODE_BINARY):
                if len(frame.data) > MAX_MESSAGE:
                    self.close(1009, "message too big")
                    return Closed(
                        1009,
                        f"the service sent a message of {len(frame.data)} bytes (cap {MAX_MESSAGE})",
                        local=True,
                    )
                if opcode == ABNF.OPCODE_TEXT:
                    return frame.data.decode("utf-8", "replace")
                return bytes(frame.data)

    def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None:
        if self._closed:
            return
        self._closed = True
        try:
            # websocket-client bounds only the wait for the reply, not the send of our close
            # frame: a peer that stopped reading would block it for good.
            self._ws.settimeout(1)
            self._ws.close(status=code, reason=reason.encode(), timeout=1)
        except Exception:  # closing a broken socket: nothing left to save
            self.abort()

    def abort(self) -> None:
        """Cut the socket at once; a blocked ``recv()`` returns :class:`Closed`."""
        self._closed = True
        # close() alone does not wake a thread blocked in recv() or send() on Linux;
        # shutdown() does.
        with contextlib.suppress(Exception):
            self._ws.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(Exception):
            self._ws.shutdown()

    def _describe(self, err: BaseException) -> str:
        return redact(f"{type(err).__name__}: {err}", *self._secrets)


class Connector:
    """Fetches tokens (cached until near expiry) and opens sessions, mapping every failure.

    ``connect()`` raises :class:`AuthenticationError` (never retried) for a rejected key or a
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
        self._api_key = api_key
        self._token: str | None = None
        self._token_expires = 0.0
        self._secrets: list[str] = [api_key] if api_key else []
        self._lock = threading.Lock()
        self._install_trace_filter()

    def __repr__(self) -> str:
        return f"Connector({self.base_url!r}, params={self.params!r})"

    def _install_trace_filter(self) -> None:
        wslog = logging.getLogger("websocket")
        for f in wslog.filters:
            if isinstance(f, _RedactingFilter):
                f.secrets = self._secrets
                return
        wslog.addFilter(_RedactingFilter(self._secrets))

    def token(self, fresh: bool = False) -> str:
        with self._lock:
            # Renew a little early so a session never starts on a token about to expire.
            if fresh or self._token is None or time.monotonic() > self._token_expires - 30:
                token = self.rest.token(self.token_duration)
                self._token = token
                self._token_expires = time.monotonic() + self.token_duration
                self._secrets.append(token)
            return self._token

    def connect(self) -> Connection:
        """Open a session; a refused token is retried once with a fresh one."""
        token = self.token()  # a rejected API key raises here, and is not retried
        try:
            return self._open(token)
        except AuthenticationError:
            log.info("the service refused the token; trying a fresh one")
            return self._open(self.token(fresh=True))

    def _open(self, token: str) -> Connection:
        import websocket

        url = stream_url(self.base_url, token, self.params)
        session_id = url.rsplit("/", 1)[1].split("?", 1)[0]
        sslopt: dict[str, Any] = {"cert_reqs": ssl.CERT_REQUIRED}
        if self.ca_file:
            sslopt["ca_certs"] = self.ca_file
        log.debug("connecting to %s", redact(url))
        try:
            ws = websocket.create_connection(
                url, timeout=self.connect_timeout, sslopt=sslopt, enable_multithread=True
            )
        except websocket.WebSocketBadStatusException as err:
            status = getattr(err, "status_code", None)
            if status in (401, 403):
                raise AuthenticationError(
                    f"the service refused the session token (HTTP {status})", status=status
                ) from None
            raise ServiceError(
                f"the service refused the WebSocket (HTTP {status})",
                retryable=status is None or status >= 500 or status == 429,
                status=status,
            ) from None
        except ssl.SSLError as err:
            raise ServiceError(
                f"TLS verification failed ({redact(str(err), token)}); use --ca-file to trust a private CA",
                retryable=False,
            ) from None
        except (OSError, websocket.WebSocketException) as err:
            raise ServiceError(
                f"cannot open the WebSocket: {redact(f'{type(err).__name__}: {err}', token, *self._secrets)}"
            ) from None
        ws.settimeout(None)
        conn = Connection(ws, session_id, self._secrets)
        log.info("session %s open", session_id)
        return conn


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
                f"the service refused the session: {reason}", status=CLOSE_POLICY
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
