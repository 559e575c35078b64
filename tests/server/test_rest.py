from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from nsaudio.server.app import LocalServer
from nsaudio.server.tokens import TokenStore

from .counting_engine import CountingEngine
from .server_support import API_KEY, StreamClient


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def keyed() -> Iterator[StreamClient]:
    with LocalServer(api_key=API_KEY, engine_factory=CountingEngine, prewarm=False) as server:
        yield StreamClient(server)


def test_languages(counting: StreamClient) -> None:
    response = counting.get("/api/v2/languages?type=stream")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"data": {"languages": ["en"]}}


def test_token(counting: StreamClient) -> None:
    response = counting.get("/api/v2/token?duration=30")
    assert response.status_code == 200
    token = response.json()["data"]["token"]
    assert counting.server.tokens.is_valid(token)
    assert counting.get("/api/v2/token").status_code == 200  # duration defaults to an hour


@pytest.mark.parametrize("path", ["/api/v2/languages?type=stream", "/api/v2/token?duration=5"])
def test_missing_key_is_401(counting: StreamClient, path: str) -> None:
    response = requests.get(counting.server.base_url + path, timeout=5)
    assert response.status_code == 401
    assert "Authorization" in response.json()["error"]["message"]
    assert counting.get(path, Authorization="").status_code == 401


def test_any_key_without_configured_key(counting: StreamClient) -> None:
    assert counting.get("/api/v2/languages", Authorization="whatever").status_code == 200


@pytest.mark.parametrize("path", ["/api/v2/languages?type=stream", "/api/v2/token?duration=5"])
def test_configured_key(keyed: StreamClient, path: str) -> None:
    assert keyed.get(path).status_code == 200
    wrong = keyed.get(path, Authorization=API_KEY + "x")
    assert wrong.status_code == 401
    assert wrong.json() == {"error": {"status": 401, "message": "API key rejected"}}
    assert requests.get(keyed.server.base_url + path, timeout=5).status_code == 401


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/api/v2/language",
        "/api/v2/languages/x",
        "/api/v1/token",
        "/voice/stream/live/transcribe/en/tok",
    ],
)
def test_unknown_path_is_404(counting: StreamClient, path: str) -> None:
    response = counting.get(path)
    assert response.status_code == 404
    assert response.json()["error"]["status"] == 404


@pytest.mark.parametrize("duration", ["0", "-1", "abc", "", "inf", "nan"])
def test_bad_duration_is_400(counting: StreamClient, duration: str) -> None:
    response = counting.get(f"/api/v2/token?duration={duration}")
    assert response.status_code == 400
    assert "duration" in response.json()["error"]["message"]


def test_token_expires_after_duration() -> None:
    clock = FakeClock()
    server = LocalServer(engine_factory=CountingEngine, prewarm=False)
    server.tokens = TokenStore(clock=clock)
    with server:
        client = StreamClient(server)
        token = client.token(duration=10)
        clock.now = 9.5
        assert server.tokens.is_valid(token)
        clock.now = 10.0
        assert not server.tokens.is_valid(token)


def test_start_stop_and_errors() -> None:
    server = LocalServer(engine_factory=CountingEngine, prewarm=False)
    with pytest.raises(RuntimeError):
        _ = server.port
    server.start()
    try:
        assert server.base_url == f"http://127.0.0.1:{server.port}"
        with pytest.raises(RuntimeError):
            server.start()
        with pytest.raises(OSError):
            LocalServer(port=server.port, engine_factory=CountingEngine).start()
    finally:
        server.stop()
    server.stop()  # twice is fine
    with pytest.raises(requests.ConnectionError):
        requests.get(server.base_url + "/api/v2/languages", timeout=2)
    for kwargs in ({"port": -1}, {"max_sessions": 0}, {"api_key": ""}):
        with pytest.raises(ValueError):
            LocalServer(**kwargs)  # type: ignore[arg-type]
