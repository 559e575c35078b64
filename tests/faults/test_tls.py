"""TLS is always verified: a private CA works with --ca-file and fails, clearly, without it."""

from __future__ import annotations

import asyncio

import pytest

from nsaudio.errors import ServiceError
from nsaudio.neuralspace.connection import Connector
from nsaudio.neuralspace.protocol import StreamParams

from ..conftest import assert_one_line_error
from .support import check_times, stream


@pytest.fixture
def tls_server(fault_server, private_ca):
    return fault_server(ssl_context=private_ca.server_context())


def test_a_private_ca_is_trusted_with_ca_file(speech20, tls_server, private_ca):
    assert tls_server.base_url.startswith("https://")
    run = stream(tls_server, speech20.path, "--ca-file", str(private_ca.ca_pem))
    assert run.proc.returncode == 0, run.stderr
    assert run.words == speech20.audio.words
    check_times(run.results)
    # The WebSocket went over wss:// with the same CA (the server speaks nothing else). One
    # CI run of many saw a second session here, recovered without loss; its cause is not
    # known yet (suspect: websocket-client reading and writing one SSL socket from two
    # threads), so the stderr is kept for the next one who sees it.
    assert len(tls_server.sessions) >= 1, run.stderr


def test_without_ca_file_the_run_fails_in_one_line_naming_ca_file(speech20, tls_server):
    run = stream(tls_server, speech20.path)
    line = assert_one_line_error(run.proc, status=1)
    assert "--ca-file" in line and "TLS" in line
    assert tls_server.attempts == 0  # never got as far as a token, let alone a session


def test_the_websocket_half_verifies_too(tls_server):
    # REST and WebSocket verify separately: give the connector a token so that only the
    # wss:// handshake is left to fail.
    connector = Connector(
        tls_server.base_url, tls_server.api_key, StreamParams(), connect_timeout=5
    )
    connector._token, connector._token_expires = "made-up-token", float("inf")
    with pytest.raises(ServiceError) as caught:
        asyncio.run(connector.open("made-up-token"))
    assert not caught.value.retryable
    assert "--ca-file" in str(caught.value) and "made-up-token" not in str(caught.value)
