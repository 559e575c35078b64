"""Twilio's ``X-Twilio-Signature`` on a media stream's WebSocket upgrade, as pure functions.

Twilio signs every request it makes, the WebSocket upgrade of a media stream included, with
the base64 HMAC-SHA1 of the full URL it called, keyed with the account's Auth Token; for a
POST the sorted form parameters follow the URL (a WebSocket upgrade has none). When a
Webhooks rule applies, it signs with that rule's shared key and algorithm instead (HMAC-
SHA256) and says so in ``X-Twilio-Webhooks-Signature-Settings: key=...,algorithm=...``.

The URL is the one Twilio was told to call: the ``<Stream url>`` of the TwiML, which takes no
query string (custom values travel as ``<Parameter>``), so a request that carries one was
signed over it too or was not signed by Twilio. Behind a proxy or load balancer, the URL the
gateway sees is not Twilio's: ``public_url`` (``--public-url``) gives the scheme, host and
any path prefix Twilio used, and the request's own path and query follow it. Without it,
the URL is rebuilt from the ``Host`` header, as ``wss://`` (Twilio connects only over TLS,
so a TLS terminator is in front) or ``ws://``. Like Twilio's own helper libraries, the
check accepts the URL with and without the scheme's default port (443, 80).

The signature proves who made the request, not when: Twilio adds no timestamp, so whoever
captured one upgrade could replay it. TLS between Twilio and the gateway is what keeps it
secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "SETTINGS_HEADER",
    "SIGNATURE_HEADER",
    "SignatureChecker",
    "signature",
    "url_variants",
]

SIGNATURE_HEADER = "X-Twilio-Signature"
SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"
_DEFAULT_PORTS = {"https": 443, "wss": 443, "http": 80, "ws": 80}
_ALGORITHMS = {"HMAC_SHA1": hashlib.sha1, "HMAC_SHA256": hashlib.sha256}


def signature(
    key: str, url: str, params: Mapping[str, str] | None = None, algorithm: str = "HMAC_SHA1"
) -> str:
    """Twilio's signature of a request to ``url`` (``params``: a POST's form fields)."""
    fields = params or {}
    data = url + "".join(k + fields[k] for k in sorted(fields))
    digest = hmac.new(key.encode(), data.encode(), _ALGORITHMS[algorithm]).digest()
    return base64.b64encode(digest).decode()


def url_variants(url: str) -> list[str]:
    """``url`` as given, and with the scheme's default port added or taken away."""
    parts = urlsplit(url)
    default = _DEFAULT_PORTS.get(parts.scheme)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        return [url]
    out = [url]
    if default is not None and port in (None, default):
        for netloc in (host, f"{host}:{default}"):
            other = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
            if other not in out:
                out.append(other)
    return out


def _settings(value: str | None) -> tuple[str | None, str]:
    """``key=...,algorithm=...`` to (key name, algorithm); (None, HMAC_SHA1) when absent."""
    if value is None:
        return None, "HMAC_SHA1"
    fields = dict(part.strip().partition("=")[::2] for part in value.split(","))
    return fields.get("key") or "", fields.get("algorithm", "").strip().upper()


class SignatureChecker:
    """Checks upgrades against an Auth Token (and a Webhooks rule's shared key, if given).

    Args:
        auth_token: the account's Auth Token (HMAC-SHA1).
        public_url: the URL base Twilio calls (``wss://host[:port][/prefix]``), or None to
            rebuild it from the ``Host`` header.
        shared_key: a Webhooks rule's shared key, for upgrades that say they are signed
            with one (None: such upgrades are refused).

    The secrets are kept in attributes whose repr hides them.
    """

    def __init__(
        self, auth_token: str, public_url: str | None = None, shared_key: str | None = None
    ) -> None:
        if not auth_token:
            raise ValueError("the Auth Token is empty")
        self._token = auth_token
        self._shared_key = shared_key or None
        self.public_url = public_url.rstrip("/") if public_url else None

    def __repr__(self) -> str:
        return f"SignatureChecker(public_url={self.public_url!r})"

    def urls(self, target: str, host: str | None) -> list[str]:
        """The URLs Twilio may have signed for a request to ``target`` (path and query)."""
        if self.public_url is not None:
            bases = [self.public_url]
        elif host:
            bases = [f"wss://{host}", f"ws://{host}"]
        else:
            return []
        out: list[str] = []
        for base in bases:
            for url in url_variants(base + target):
                if url not in out:
                    out.append(url)
        return out

    def check(self, target: str, headers: Mapping[str, str]) -> bool:
        """True if ``headers`` carry a valid signature for a request to ``target``.

        ``headers``: a case-insensitive mapping (what the WebSocket server gives).
        """
        given = headers.get(SIGNATURE_HEADER)
        if not given:
            return False
        key_name, algorithm = _settings(headers.get(SETTINGS_HEADER))
        if algorithm not in _ALGORITHMS:
            return False
        if key_name is None:
            key = self._token
        elif self._shared_key is None:
            return False
        else:
            key = self._shared_key
        ok = False
        for url in self.urls(target, headers.get("Host")):
            # Every variant is computed: the time taken says nothing about which one matched.
            ok |= hmac.compare_digest(signature(key, url, None, algorithm), given)
        return ok
