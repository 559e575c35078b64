"""Which service a command talks to: NeuralSpace with a key, or the built-in local server.

The API key comes from ``NS_API_KEY`` or ``--api-key-file``, never from the command line.
With neither a key nor a base URL (or with ``--local``), the local server is started
in a child process on a free loopback port (pocketsphinx holds the GIL while it decodes:
in our process it would stall capture and sending), and stderr says so once.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..errors import AuthenticationError, InputError, MissingExtraError, NsAudioError
from ..extras import require_extra
from ..neuralspace.protocol import DEFAULT_BASE_URL, LANGUAGES, StreamParams, rest_base
from ..neuralspace.rest import RestClient

__all__ = [
    "Endpoint",
    "add_service_options",
    "check_before_start",
    "require_local_server",
    "service_endpoint",
    "uses_local_server",
]

log = logging.getLogger("nsaudio.service")

LOCAL_KEY = "nsaudio-local"


def add_service_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--base-url",
        metavar="URL",
        help=f"service REST base (default $NS_BASE_URL or {DEFAULT_BASE_URL})",
    )
    p.add_argument(
        "--local",
        action="store_true",
        help="use the built-in offline server even if NS_API_KEY is set",
    )
    p.add_argument(
        "--api-key-file", metavar="FILE", help="read the API key from FILE instead of $NS_API_KEY"
    )
    p.add_argument(
        "--ca-file", metavar="PEM", help="trust this CA for TLS (verification is always on)"
    )


def read_api_key(path: str | None) -> str | None:
    if path:
        try:
            key = Path(path).read_text(encoding="utf-8").strip()
        except OSError as err:
            raise InputError(f"{path}: cannot read the API key file ({err.strerror})") from None
        if not key:
            raise InputError(f"{path}: the API key file is empty")
        return key
    return os.environ.get("NS_API_KEY", "").strip() or None


def shown_url(url: str) -> str:
    """``url`` fit for a log line: a user name or password in it (``https://u:p@host``) is
    left out, as is any query or fragment; the key never travels in the URL."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:  # not a number: shown as it was given, without the user part
        port = None
    netloc = host if port is None else f"{host}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


class Endpoint:
    """A resolved service: its URL and key, and the local server when one was started."""

    def __init__(
        self, base_url: str, api_key: str, *, ca_file: str | None, local: bool,
        timeout: float = 10.0,
    ) -> None:  # fmt: skip
        self.base_url = base_url
        self._api_key = api_key
        self.ca_file = ca_file
        self.local = local
        self.timeout = timeout  # each REST call, as a whole

    def __repr__(self) -> str:
        return f"Endpoint({self.base_url!r}, local={self.local})"

    def rest(self) -> RestClient:
        return RestClient(self.base_url, self._api_key, timeout=self.timeout, ca_file=self.ca_file)

    def languages(self) -> list[str]:
        return self.rest().languages()

    def check_language(self, language: str) -> str:
        """``language`` if the service lists it (or, when the list cannot be had, the guide does)."""
        try:
            known = self.languages()
        except NsAudioError as err:
            # A rejected key, or no HTTP answer at all (the cause is named; the sessions
            # would meet it too): stop now, unless the language is wrong anyway, which is
            # the first thing to fix. An HTTP error on this one path: fall back.
            if isinstance(err, AuthenticationError) or getattr(err, "status", 0) is None:
                if language.strip().lower() not in LANGUAGES:
                    raise InputError(
                        f"language {language!r} is not one the service documents: choose one "
                        f"of {', '.join(LANGUAGES)}"
                    ) from None
                raise
            log.info(
                "cannot fetch the language list (%s); checking against the documented one", err
            )
            known = list(LANGUAGES)
        return _known_language(language, known, "the local server" if self.local else "the service")

    def sink(self, params: StreamParams, config: Any, **options: Any) -> Any:
        """A :class:`~nsaudio.sinks.NeuralSpaceSink` to this service with ``config`` (a
        ``SessionConfig``); ``options``: ``on_result``, ``log_sends``."""
        from ..sinks.neuralspace import NeuralSpaceSink

        return NeuralSpaceSink(
            self.base_url, self._api_key, params, config, ca_file=self.ca_file, **options
        )


def uses_local_server(args: argparse.Namespace) -> bool:
    """True when ``args`` make :func:`service_endpoint` start the built-in server: ``--local``,
    or neither a key nor a base URL."""
    return _wants_local(args, read_api_key(getattr(args, "api_key_file", None)), _base_url(args))


def _base_url(args: argparse.Namespace) -> str | None:
    return getattr(args, "base_url", None) or os.environ.get("NS_BASE_URL", "").strip() or None


def _wants_local(args: argparse.Namespace, key: str | None, base: str | None) -> bool:
    return bool(getattr(args, "local", False)) or (key is None and base is None)


def _known_language(language: str, known: Sequence[str], where: str) -> str:
    lang = language.strip().lower()
    if lang not in known:
        raise InputError(
            f"language {language!r} is not streamed by {where}: choose one of {', '.join(known)}"
        )
    return lang


def check_before_start(args: argparse.Namespace) -> None:
    """What can be refused about the built-in server before anything starts, when it is the
    one to be used: pocketsphinx missing, a ``--language`` it does not stream (its languages
    are known without asking it). A service's languages are asked for when it is reached;
    nothing is started for that."""
    if uses_local_server(args):
        require_local_server(args)
        from ..server.params import LANGUAGES as LOCAL_LANGUAGES

        _known_language(args.language, LOCAL_LANGUAGES, "the local server")


def require_local_server(args: argparse.Namespace) -> None:
    """Raise :class:`~nsaudio.errors.MissingExtraError` (exit 2) when the built-in server is
    wanted and pocketsphinx is not installed: before anything starts, in one line."""
    try:
        require_extra("pocketsphinx", "server", "the built-in offline server")
    except MissingExtraError as err:
        if getattr(args, "local", False):
            raise
        raise MissingExtraError(
            f"NS_API_KEY is not set, and {err} (or export NS_API_KEY to use the service)"
        ) from None


@contextlib.contextmanager
def service_endpoint(args: argparse.Namespace) -> Iterator[Endpoint]:
    key = read_api_key(getattr(args, "api_key_file", None))
    base = _base_url(args)
    if _wants_local(args, key, base):
        from ..server.child import ServerProcess

        engine = getattr(args, "local_engine", None) or "pocketsphinx"  # gateway's option
        if engine == "pocketsphinx":
            require_local_server(args)
        server = ServerProcess(engine=engine).start()
        if not getattr(args, "quiet", False):  # -q: only errors
            why = "--local" if getattr(args, "local", False) else "no NS_API_KEY set"
            sys.stderr.write(
                f"nsaudio: {why}: using the built-in offline server "
                f"(English, {engine}) at {server.base_url}\n"
            )
        try:
            yield Endpoint(server.base_url, LOCAL_KEY, ca_file=None, local=True)
        finally:
            server.stop()
        return
    base = rest_base(base or DEFAULT_BASE_URL)
    if key is None:
        if not _is_loopback(base):
            raise InputError(
                "NS_API_KEY is not set: export it, or give --api-key-file, or use --local"
            )
        key = LOCAL_KEY  # a local `nsaudio serve` takes any key
    log.info("service: %s", shown_url(base))
    yield Endpoint(
        base, key, ca_file=getattr(args, "ca_file", None), local=_is_loopback(base),
        timeout=getattr(args, "connect_timeout", 10.0),
    )  # fmt: skip
