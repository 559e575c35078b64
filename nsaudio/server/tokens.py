"""Short-lived stream tokens, as issued by ``GET /api/v2/token``."""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["TokenStore"]


class TokenStore:
    """Issues random URL-safe tokens and tells whether one is still valid.

    A token stays valid, for any number of sessions, until ``duration`` seconds after it was
    issued. The store is bounded: past ``capacity`` live tokens the oldest is forgotten.
    ``clock`` is injectable so tests can move time; it must be monotonic.
    Thread-safe, because REST handlers and tests may call it from different threads.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, capacity: int = 10_000) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self._clock = clock
        self._capacity = capacity
        self._expiry: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TokenStore(live={len(self)})"

    def __len__(self) -> int:
        with self._lock:
            self._purge(self._clock())
            return len(self._expiry)

    def issue(self, duration: float) -> str:
        """Return a new token valid for ``duration`` seconds (> 0)."""
        if not duration > 0:
            raise ValueError(f"duration must be positive, got {duration!r}")
        token = secrets.token_urlsafe(32)
        with self._lock:
            now = self._clock()
            self._purge(now)
            while len(self._expiry) >= self._capacity:
                self._expiry.popitem(last=False)
            self._expiry[token] = now + duration
        return token

    def is_valid(self, token: str) -> bool:
        with self._lock:
            expiry = self._expiry.get(token)
            if expiry is None:
                return False
            if self._clock() >= expiry:
                del self._expiry[token]
                return False
            return True

    def revoke(self, token: str) -> None:
        with self._lock:
            self._expiry.pop(token, None)

    def _purge(self, now: float) -> None:
        # Insertion order is not expiry order (durations differ), so scan; the store is small.
        expired = [t for t, e in self._expiry.items() if now >= e]
        for token in expired:
            del self._expiry[token]
