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
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import InputError, NsAudioError
from ..neuralspace.protocol import DEFAULT_BASE_URL, LANGUAGES, StreamParams, rest_base
from ..neuralspace.rest import RestClient

__all__ = ["Endpoint", "add_service_options", "service_endpoint"]

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
        lang = language.strip().lower()
        try:
            known = self.languages()
        except NsAudioError as err:
            # A rejected key, or no HTTP answer at all (the cause is named; the sessions
            # would meet it too): stop now. An HTTP error on this one path: fall back.
            if getattr(err, "exit_status", 1) == 3 or getattr(err, "status", 0) is None:
                raise
            log.info(
                "cannot fetch the language list (%s); checking against the documented one", err
            )
            known = list(LANGUAGES)
        if lang not in known:
            where = "the local server" if self.local else "the service"
            raise InputError(
                f"language {language!r} is not streamed by {where}: choose one of {', '.join(known)}"
            )
        return lang

    def sink(self, params: StreamParams, config: Any, **options: Any) -> Any:
        """A :class:`~nsaudio.sinks.NeuralSpaceSink` to this service with ``config`` (a
        ``SessionConfig``); ``options``: ``on_result``, ``log_sends``."""
        from ..sinks.neuralspace import NeuralSpaceSink

        return NeuralSpaceSink(
            self.base_url, self._api_key, params, config, ca_file=self.ca_file, **options
        )


@contextlib.contextmanager
def service_endpoint(args: argparse.Namespace) -> Iterator[Endpoint]:
    key = read_api_key(getattr(args, "api_key_file", None))
    base = getattr(args, "base_url", None) or os.environ.get("NS_BASE_URL", "").strip() or None
    if getattr(args, "local", False) or (key is None and base is None):
        from ..server.child import ServerProcess

        engine = getattr(args, "local_engine", None) or "pocketsphinx"  # gateway's option
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
    yield Endpoint(
        base, key, ca_file=getattr(args, "ca_file", None), local=_is_loopback(base),
        timeout=getattr(args, "connect_timeout", 10.0),
    )  # fmt: skip
