"""The REST half of the service: the language list and short-lived tokens.

The API key goes into the ``Authorization`` header of these calls and nowhere else; errors
name the URL path, never the key or a token.
"""

from __future__ import annotations

import logging
from typing import Any

from ..errors import AuthenticationError, ProtocolError, ServiceError
from .protocol import rest_base

__all__ = ["RestClient"]

log = logging.getLogger("nsaudio.neuralspace")


class RestClient:
    """``languages()`` and ``token(duration)`` against ``base_url``, with timeouts."""

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
        self.verify: str | bool = ca_file or True

    def __repr__(self) -> str:
        return f"RestClient({self.base_url!r}, api_key=<redacted>)"

    def _get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        import requests  # lazy: `import nsaudio` and `convert` never pay for it

        url = self.base_url + path
        try:
            resp = requests.get(
                url,
                params=params,
                headers={"Authorization": self._api_key},
                timeout=self.timeout,
                verify=self.verify,
            )
        except requests.exceptions.SSLError as err:
            raise ServiceError(
                f"TLS verification failed for {self.base_url} ({type(err).__name__}); "
                "use --ca-file to trust a private CA",
                retryable=False,
            ) from None
        except requests.exceptions.RequestException as err:
            raise ServiceError(f"cannot reach {self.base_url}: {type(err).__name__}") from None
        if resp.status_code in (401, 403):
            raise AuthenticationError(
                f"the service rejected the API key (HTTP {resp.status_code} on {path}): "
                "check NS_API_KEY or --api-key-file",
                status=resp.status_code,
            )
        if resp.status_code >= 500:
            raise ServiceError(
                f"the service failed (HTTP {resp.status_code} on {path})", status=resp.status_code
            )
        if resp.status_code != 200:
            raise ServiceError(
                f"unexpected HTTP {resp.status_code} on {path}",
                retryable=False,
                status=resp.status_code,
            )
        try:
            body = resp.json()
        except ValueError:
            raise ProtocolError(f"{path} did not answer JSON") from None
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise ProtocolError(f"{path} answered JSON without a 'data' object")
        return data

    def languages(self) -> list[str]:
        """The languages the service streams, as it lists them."""
        data = self._get("/api/v2/languages", {"type": "stream"})
        langs = data.get("languages")
        if not isinstance(langs, list) or not all(isinstance(x, str) for x in langs):
            raise ProtocolError("/api/v2/languages answered without a list of languages")
        return langs

    def token(self, duration: int = 3600) -> str:
        """A short-lived token valid for ``duration`` seconds."""
        data = self._get("/api/v2/token", {"duration": int(duration)})
        token = data.get("token")
        if not isinstance(token, str) or not token:
            raise ProtocolError("/api/v2/token answered without a token")
        log.debug("got a token valid for %d s", duration)
        return token
