"""One HTTP GET with a deadline on the whole request, and what a network failure was.

The REST calls (a token, the language list) are small JSON answers, but a client must not
hang on them: ``requests`` bounds each read, not the request, so a server that sends a byte
every two seconds held a token request for minutes. Here the whole exchange (name lookup,
connect, TLS, request, headers, body) runs under one ``asyncio`` deadline, on whichever loop
asks (the engine loop for tokens; a fresh one for a command's language check).

:func:`network_error` turns what the socket layer raised into a :class:`ServiceError` whose
message names the cause a user can act on (a name that does not resolve, a refused
connection, a timeout, a server that does not speak TLS, a certificate not trusted) and
whose ``retryable`` says whether trying again can help.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..errors import ServiceError

__all__ = ["Response", "get", "network_error"]

#: Bounds on what a REST answer may be (the service's are a few hundred bytes).
MAX_LINE = 16 * 1024
MAX_HEADERS = 100
MAX_BODY = 1 << 20


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes


class _NotHttp(Exception):
    """The server answered something that is not HTTP/1.x."""


class _NotTls(Exception):
    """The TLS handshake met something that is not TLS (a reset, a plain-HTTP answer)."""


def _where(url: str) -> tuple[str, int, bool]:
    parts = urlsplit(url)
    tls = parts.scheme == "https" or parts.scheme == "wss"
    return parts.hostname or "", parts.port or (443 if tls else 80), tls


def network_error(err: BaseException, url: str, timeout: float) -> ServiceError:
    """What ``err`` (raised while reaching ``url``) means, as one line and a retry verdict."""
    host, port, tls = _where(url)
    if isinstance(err, socket.gaierror):
        if err.errno == socket.EAI_AGAIN:
            return ServiceError(f"cannot resolve {host} right now (temporary DNS failure)")
        return ServiceError(f"the host name {host} does not resolve", retryable=False)
    if isinstance(err, ConnectionRefusedError):
        return ServiceError(f"connection refused by {host}:{port}: nothing is listening there")
    if isinstance(err, (asyncio.TimeoutError, TimeoutError)):
        return ServiceError(f"no answer from {host}:{port} within {timeout:g} s (timed out)")
    if isinstance(err, ssl.SSLCertVerificationError):
        why = err.verify_message or err.reason or "verification failed"
        return ServiceError(
            f"the TLS certificate of {host} is not trusted ({why}): if it is signed by a "
            "private CA, give that CA with --ca-file",
            retryable=False,
        )
    if isinstance(err, ssl.SSLError):
        reason = (err.reason or str(err)).lower()
        if any(
            k in reason
            for k in (
                "wrong version",
                "record layer",
                "packet length",
                "http request",
                "unexpected eof",
            )
        ):
            return ServiceError(
                f"{host}:{port} did not speak TLS: is it an http:// server?", retryable=False
            )
        return ServiceError(f"TLS with {host}:{port} failed: {err.reason or err}", retryable=False)
    if isinstance(err, _NotTls):
        return ServiceError(
            f"{host}:{port} did not speak TLS: is it an http:// server?", retryable=False
        )
    if isinstance(err, _NotHttp):
        hint = "" if tls else " (a TLS server? try https://)"
        return ServiceError(f"{host}:{port} did not answer HTTP{hint}", retryable=False)
    if isinstance(err, ConnectionResetError):
        return ServiceError(f"{host}:{port} reset the connection")
    if isinstance(err, (asyncio.IncompleteReadError, EOFError)):
        return ServiceError(f"{host}:{port} closed the connection before answering")
    if isinstance(err, OSError):
        return ServiceError(f"cannot reach {host}:{port}: {err.strerror or err}")
    return ServiceError(f"cannot reach {host}:{port}: {type(err).__name__}")


async def get(
    url: str,
    headers: dict[str, str],
    *,
    timeout: float,
    ssl_context: ssl.SSLContext | None = None,
) -> Response:
    """GET ``url``; the whole request ends within ``timeout`` seconds or raises
    :class:`ServiceError` (see :func:`network_error`)."""
    try:
        return await asyncio.wait_for(_get(url, headers, ssl_context), timeout)
    except ServiceError:
        raise
    except (
        OSError,
        asyncio.TimeoutError,
        asyncio.IncompleteReadError,
        EOFError,
        _NotHttp,
        _NotTls,
        ValueError,
    ) as err:
        raise network_error(err, url, timeout) from None


async def _get(url: str, headers: dict[str, str], ssl_context: ssl.SSLContext | None) -> Response:
    parts = urlsplit(url)
    host, port, tls = _where(url)
    if tls and ssl_context is None:
        ssl_context = ssl.create_default_context()
    try:
        reader, writer = await asyncio.open_connection(
            host, port, ssl=ssl_context if tls else None, limit=MAX_LINE
        )
    except (ConnectionResetError, EOFError, ssl.SSLError) as err:
        if not tls or isinstance(err, ssl.SSLCertVerificationError):
            raise
        raise _NotTls() from err  # the connection was made: the handshake met no TLS
    try:
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        netloc = parts.netloc.rsplit("@", 1)[-1]
        lines = [f"GET {target} HTTP/1.1", f"Host: {netloc}", "Connection: close",
                 "Accept: application/json", "User-Agent: nsaudio"]  # fmt: skip
        lines += [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        await writer.drain()
        status_line = await _line(reader)
        fields = status_line.split(" ", 2)
        if len(fields) < 2 or not fields[0].startswith("HTTP/1.") or not fields[1].isdigit():
            raise _NotHttp(status_line[:40])
        status = int(fields[1])
        got: dict[str, str] = {}
        for _ in range(MAX_HEADERS + 1):
            line = await _line(reader)
            if not line:
                break
            name, sep, value = line.partition(":")
            if not sep:
                raise _NotHttp(line[:40])
            got[name.strip().lower()] = value.strip()
        else:
            raise _NotHttp("too many header lines")
        return Response(status, got, await _body(reader, got))
    finally:
        writer.transport.abort()


async def _line(reader: asyncio.StreamReader) -> str:
    try:
        raw = await reader.readuntil(b"\n")
    except asyncio.LimitOverrunError:
        raise _NotHttp("a line too long") from None
    return raw.rstrip(b"\r\n").decode("latin-1")


async def _body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        out = bytearray()
        while True:
            size_line = (await _line(reader)).split(";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise _NotHttp("a bad chunk size") from None
            if size == 0:
                return bytes(out)
            if len(out) + size > MAX_BODY:
                raise _NotHttp("a body over 1 MiB")
            out += await reader.readexactly(size)
            await reader.readexactly(2)
    length = headers.get("content-length")
    if length is not None:
        if not length.isdigit() or int(length) > MAX_BODY:
            raise _NotHttp(f"a bad Content-Length ({length[:20]})")
        return await reader.readexactly(int(length))
    body = await reader.read(MAX_BODY + 1)
    rest = body
    while rest and len(body) <= MAX_BODY:
        rest = await reader.read(MAX_BODY + 1 - len(body))
        body += rest
    if len(body) > MAX_BODY:
        raise _NotHttp("a body over 1 MiB")
    return body
