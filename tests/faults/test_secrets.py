"""No API key and no token in any output, log line, exception message or repr.

The key is known; the tokens are every one the fault server issued during the run.
"""

from __future__ import annotations

import asyncio
import io
import logging

import pytest

from nsaudio.cli.service import Endpoint
from nsaudio.errors import AuthenticationError, ServiceError
from nsaudio.neuralspace.connection import Connector
from nsaudio.neuralspace.protocol import StreamParams
from nsaudio.neuralspace.rest import RestClient
from nsaudio.runner import Pipeline, standard_stages
from nsaudio.sinks.neuralspace import NeuralSpaceSink
from nsaudio.sources import open_source

from .server import Plan
from .support import RATE, stream

KEY = "sk-live-7f3a9c2e5b1d4e8f"


def _assert_hidden(text: str, server, key: str = KEY) -> None:
    assert key not in text
    for token in server.tokens:
        assert token not in text


def _chain(err: BaseException):
    while err is not None:
        yield err
        err = err.__cause__ or err.__context__


PLANS = {
    "normal": ({}, 0),
    "reconnect": ({0: Plan(at_bytes=100_000, action="cut"),
                   1: Plan(at_bytes=50_000, action="close", code=1011)}, 0),
    "token refused": ((lambda attempt: Plan(action="close", code=1008, reason="invalid token")), 3),
    "handshake 401": ((lambda attempt: Plan(refuse=401)), 3),
}  # fmt: skip


@pytest.mark.parametrize("case", list(PLANS))
def test_nothing_secret_in_the_output_at_vv(speech20, fault_server, case):
    plans, status = PLANS[case]
    server = fault_server(plans, api_key=KEY)
    run = stream(server, speech20.path, "-vv")
    assert run.proc.returncode == status, run.stderr
    assert server.tokens  # there was something to leak
    _assert_hidden(run.proc.stdout.decode() + run.stderr, server)
    assert "<token>" in run.stderr  # -vv shows the URL, redacted
    if status == 0 or case == "token refused":
        assert "> GET /voice/stream/live/transcribe/en/<token>/" in run.stderr  # the trace was on


def test_nothing_secret_in_the_output_when_the_key_is_rejected(speech20, fault_server):
    server = fault_server(api_key="the-right-key")
    run = stream(server, speech20.path, "-vv", key=KEY)
    assert run.proc.returncode == 3
    _assert_hidden(run.proc.stdout.decode() + run.stderr, server)


@pytest.fixture
def trace():
    """The WebSocket library's own trace (what -vv turns on), captured with nsaudio's logs."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    loggers = [logging.getLogger("websockets.client"), logging.getLogger("nsaudio")]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.addHandler(handler)
        log.setLevel(logging.DEBUG)
    try:
        yield out
    finally:
        for log, level in zip(loggers, levels, strict=True):
            log.removeHandler(handler)
            log.setLevel(level)


def _pipeline(server, path, **options):
    source = open_source(path)
    sink = NeuralSpaceSink(server.base_url, KEY, **options)
    return Pipeline(source, standard_stages(source, "pcm_16k"), sink, rate=RATE), sink


def test_websocket_trace_and_exceptions_hide_tokens(speech20, fault_server, trace):
    server = fault_server({0: Plan(at_bytes=100_000, action="cut")}
                          | {i: Plan(action="close", code=1008, reason="invalid token")
                             for i in (1, 2)}, api_key=KEY)  # fmt: skip
    pipeline, _ = _pipeline(server, speech20.path)
    with pytest.raises(AuthenticationError) as caught:
        pipeline.run()
    text = trace.getvalue()
    assert "> GET /voice/stream/live/transcribe/en/<token>/" in text  # the trace was on
    _assert_hidden(text, server)
    for err in _chain(caught.value):
        _assert_hidden(f"{err} {err!r}", server)
    assert len(server.tokens) == 2


def test_reconnect_budget_exhausted_hides_tokens(speech20, fault_server):
    server = fault_server(
        lambda i: Plan(at_bytes=64_000, action="cut") if i == 0 else Plan(refuse=503),
        api_key=KEY,
    )
    pipeline, _ = _pipeline(server, speech20.path, reconnect_timeout=1.0, backoff=(0.1, 0.2))
    with pytest.raises(ServiceError) as caught:
        pipeline.run()
    assert "gave up reconnecting" in str(caught.value)
    for err in _chain(caught.value):
        _assert_hidden(f"{err} {err!r}", server)


def test_rest_errors_hide_the_key(fault_server):
    server = fault_server(api_key="the-right-key")
    with pytest.raises(AuthenticationError) as caught:
        RestClient(server.base_url, KEY).token()
    for err in _chain(caught.value):
        _assert_hidden(f"{err} {err!r}", server)


def test_reprs_hide_the_key_and_tokens(fault_server):
    server = fault_server(api_key=KEY)
    connector = Connector(server.base_url, KEY, StreamParams())

    async def check() -> None:
        conn, session_id = await connector.open(await connector.token())
        try:
            sink = NeuralSpaceSink(server.base_url, KEY, connector=connector)
            objects = [connector, conn, session_id, connector.rest,
                       RestClient(server.base_url, KEY), sink,
                       Endpoint(server.base_url, KEY, ca_file=None, local=False)]  # fmt: skip
            for obj in objects:
                _assert_hidden(repr(obj), server)
                _assert_hidden(str(obj), server)
        finally:
            await conn.close()

    asyncio.run(check())
    assert len(server.tokens) == 1
