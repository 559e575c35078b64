from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
import uuid

import numpy as np
import pytest
import websocket

from nsaudio.server.app import LocalServer
from nsaudio.server.tokens import TokenStore

from .counting_engine import CountingEngine
from .server_support import (
    API_KEY,
    StreamClient,
    expect_close,
    read_results,
    silence_pcm,
    voice_pcm,
    wait_until,
)

SID = str(uuid.uuid4())


def burst_pcm(seconds: float = 1.5) -> bytes:
    return np.concatenate([silence_pcm(0.5), voice_pcm(seconds), silence_pcm(1.0)]).tobytes()


def handshake_status(client: StreamClient, **kwargs: object) -> int:
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        client.connect(**kwargs)
    return info.value.status_code


def test_unknown_token_is_401(counting: StreamClient) -> None:
    assert handshake_status(counting, token="not-a-token") == 401


def test_expired_token_is_401() -> None:
    clock = {"now": 0.0}
    server = LocalServer(engine_factory=CountingEngine, prewarm=False)
    server.tokens = TokenStore(clock=lambda: clock["now"])
    with server:
        client = StreamClient(server)
        token = client.token(duration=5)
        client.connect(token=token).close()  # valid now, and more than once
        client.connect(token=token).close()
        clock["now"] = 5.0
        assert handshake_status(client, token=token) == 401


def test_malformed_stream_path_is_404(counting: StreamClient) -> None:
    url = (
        f"ws://127.0.0.1:{counting.server.port}/voice/stream/live/transcribe/en/{counting.token()}"
    )
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        websocket.create_connection(url, timeout=5)
    assert info.value.status_code == 404


@pytest.mark.parametrize(
    "kwargs,parameter",
    [
        ({"language": "hi"}, "language"),
        ({"session_id": "not-a-uuid"}, "session_id"),
        ({"format": "pcm_44k"}, "format"),
        ({"vad_threshold": "0"}, "vad_threshold"),
        ({"vad_threshold": "-1.5"}, "vad_threshold"),
        ({"max_chunk_size": "0"}, "max_chunk_size"),
        ({"max_chunk_size": "abc"}, "max_chunk_size"),
        ({"disable_partial": "maybe"}, "disable_partial"),
    ],
)
def test_bad_parameter_closes_1008(
    counting: StreamClient, kwargs: dict[str, str], parameter: str
) -> None:
    ws = counting.connect(**kwargs)
    code, reason = expect_close(ws)
    assert code == 1008
    assert parameter in reason
    ws.close()


def test_unknown_query_keys_and_text_messages_are_ignored(counting: StreamClient) -> None:
    ws = counting.connect(colour="blue", disable_partial="TRUE")
    ws.send("hello")  # text from the client is ignored
    ws.send_binary(burst_pcm())
    [full] = read_results(ws, expect_full=1, idle=0.3, timeout=10)
    assert full["full"] and full["text"].startswith("w")
    ws.close()


def test_max_message_size(counting: StreamClient) -> None:
    ws = counting.connect(disable_partial="true")
    ws.send_binary(bytes(2**20))  # exactly 1 MiB of silence is fine
    ws.send_binary(burst_pcm())
    assert len(read_results(ws, expect_full=1, idle=0.2, timeout=10)) == 1
    # The server may hang up before the client has written it all.
    hang_up = (BrokenPipeError, ConnectionResetError, websocket.WebSocketConnectionClosedException)
    with contextlib.suppress(*hang_up):
        ws.send_binary(bytes(2**20 + 2))
    code, _ = expect_close(ws)
    assert code == 1009
    ws.close()


def test_session_cap() -> None:
    with LocalServer(engine_factory=CountingEngine, max_sessions=2, prewarm=False) as server:
        client = StreamClient(server)
        first, second = client.connect(), client.connect()
        wait_until(lambda: server.active_sessions == 2)
        third = client.connect()
        code, reason = expect_close(third)
        assert code == 1013 and "try again later" in reason
        third.close()
        first.close()
        wait_until(lambda: server.active_sessions == 1)
        again = client.connect(disable_partial="true")
        again.send_binary(burst_pcm())
        assert len(read_results(again, expect_full=1, idle=0.2, timeout=10)) == 1
        again.close()
        second.close()


def test_stop_closes_sessions_with_1001() -> None:
    server = LocalServer(engine_factory=CountingEngine, prewarm=False).start()
    ws = StreamClient(server).connect()
    wait_until(lambda: server.active_sessions == 1)
    stopper = threading.Thread(target=server.stop)
    stopper.start()
    code, _ = expect_close(ws)
    stopper.join(5)
    assert code == 1001 and not stopper.is_alive()
    ws.close()


def test_results_stream_while_sending(counting: StreamClient) -> None:
    """Results come back during the stream, not only at its end; times and ids are ordered."""
    ws = counting.connect(max_chunk_size="2")
    pcm = np.concatenate(
        [silence_pcm(0.3), voice_pcm(4.5), silence_pcm(1.0), voice_pcm(1.0), silence_pcm(1.0)]
    ).tobytes()
    ws.send_binary(pcm[: len(pcm) // 2])
    early = read_results(ws, expect_full=1, idle=0.2, timeout=10)
    ws.send_binary(pcm[len(pcm) // 2 :])
    late = read_results(ws, expect_full=2, idle=0.3, timeout=10)
    ws.close()
    results = early + late
    fulls = [r for r in results if r["full"]]
    assert len(fulls) == 4  # 2 s + 2 s + 0.8 s (+ pre-roll and hangover), then the 1 s tone
    assert [r["chunk_id"] for r in fulls] == [0, 1, 2, 3]
    assert all(
        set(r) == {"full", "stream_id", "chunk_id", "start_time", "end_time", "send_time", "text"}
        for r in results
    )
    assert all(r["stream_id"] == results[0]["stream_id"] for r in results)
    for a, b in itertools.pairwise(fulls):
        assert a["end_time"] <= b["start_time"]
    assert fulls[-1]["end_time"] <= len(pcm) / 2 / 16000
    assert all(abs(r["send_time"] - time.time()) < 30 for r in results)


def test_no_secret_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with LocalServer(api_key=API_KEY, engine_factory=CountingEngine, prewarm=False) as server:
        client = StreamClient(server)
        token = client.token()
        ws = client.connect(token=token)
        ws.send_binary(burst_pcm())
        read_results(ws, expect_full=1, idle=0.2, timeout=10)
        ws.close()
        bad = client.connect(token=token, format="mp3")  # refused with 1008 after the handshake
        expect_close(bad)
        bad.close()
        url = f"ws://127.0.0.1:{server.port}/voice/stream/live/transcribe/{token}/{SID}"
        with pytest.raises(websocket.WebSocketBadStatusException):
            websocket.create_connection(url, timeout=5)  # malformed: the token in another place
        wait_until(lambda: server.active_sessions == 0)
    formatter = logging.Formatter("%(message)s")
    server_records = [r for r in caplog.records if r.name.startswith("nsaudio.server")]
    assert any("<redacted>" in r.getMessage() for r in server_records)
    for record in server_records:
        text = formatter.format(record)
        assert token not in text, text
        assert API_KEY not in text, text
