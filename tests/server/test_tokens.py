from __future__ import annotations

import re

import pytest

from nsaudio.server.tokens import TokenStore


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_is_url_safe_and_unique() -> None:
    store = TokenStore()
    tokens = {store.issue(60) for _ in range(100)}
    assert len(tokens) == 100
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{40,}", t) for t in tokens)


def test_token_expires() -> None:
    clock = FakeClock()
    store = TokenStore(clock=clock)
    token = store.issue(10)
    assert store.is_valid(token)
    clock.now += 9.99
    assert store.is_valid(token)  # and stays valid for several checks: sessions may reuse it
    assert store.is_valid(token)
    clock.now += 0.01
    assert not store.is_valid(token)
    assert len(store) == 0


def test_unknown_and_revoked() -> None:
    store = TokenStore()
    token = store.issue(60)
    assert not store.is_valid("nope")
    assert not store.is_valid("")
    store.revoke(token)
    assert not store.is_valid(token)
    assert token not in repr(store)


def test_capacity_forgets_oldest() -> None:
    store = TokenStore(capacity=3)
    tokens = [store.issue(60) for _ in range(4)]
    assert [store.is_valid(t) for t in tokens] == [False, True, True, True]


def test_expired_are_purged_on_issue() -> None:
    clock = FakeClock()
    store = TokenStore(clock=clock, capacity=2)
    old = store.issue(1)
    keep = store.issue(100)
    clock.now += 5
    new = store.issue(100)
    assert not store.is_valid(old)
    assert store.is_valid(keep) and store.is_valid(new)


@pytest.mark.parametrize("duration", [0, -1, float("nan")])
def test_bad_duration(duration: float) -> None:
    with pytest.raises(ValueError):
        TokenStore().issue(duration)


def test_bad_capacity() -> None:
    with pytest.raises(ValueError):
        TokenStore(capacity=0)
