"""A network failure says its cause in one line, at once (issue 19, item 2).

Before: ``--base-url http://no-such-host.invalid`` took 6 s and 7 retries to say "cannot reach
...: ConnectionError"; nothing listening took 8-10 s with the same words; ``https://``
against a plain-HTTP server advised ``--ca-file``. Now each names what happened (a name that
does not resolve, a refused connection, a server that does not speak TLS, or one that
answers TLS to plain HTTP, a certificate not trusted), and only what may pass is retried.
"""

from __future__ import annotations

import socket
import time

import pytest

from ..conftest import assert_one_line_error
from .support import stream


def _timed(base: str, path, *args: str):
    t0 = time.monotonic()
    run = stream(base, path, *args)
    return run, time.monotonic() - t0


def test_a_name_that_does_not_resolve_is_said_at_once(speech20):
    run, seconds = _timed("http://no-such-host.invalid", speech20.path)
    line = assert_one_line_error(run.proc, status=1)
    assert "the host name no-such-host.invalid does not resolve" in line, line
    assert seconds < 5, seconds  # no retries: it will not resolve in a second either


def test_nothing_listening_is_said_as_a_refused_connection(speech20):
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens on it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run, seconds = _timed(f"http://127.0.0.1:{port}", speech20.path)
    line = assert_one_line_error(run.proc, status=1)
    assert f"connection refused by 127.0.0.1:{port}: nothing is listening there" in line, line
    assert seconds < 5, seconds


def test_https_to_a_plain_http_server_says_it_did_not_speak_tls(speech20, fault_server):
    server = fault_server()
    run, seconds = _timed(server.base_url.replace("http://", "https://"), speech20.path)
    line = assert_one_line_error(run.proc, status=1)
    assert "did not speak TLS: is it an http:// server?" in line, line
    assert "--ca-file" not in line  # the old, wrong advice
    assert seconds < 5, seconds


def test_http_to_a_tls_server_says_it_did_not_answer_http(speech20, fault_server, private_ca):
    server = fault_server(ssl_context=private_ca.server_context())
    base = server.base_url.replace("https://", "http://")
    run, seconds = _timed(base, speech20.path, "--connect-timeout", "3")
    line = assert_one_line_error(run.proc, status=1)
    assert (
        "did not answer HTTP (a TLS server? try https://)" in line
        or "closed the connection" in line
    ), line
    assert seconds < 8, seconds


@pytest.mark.parametrize("kind", ["untrusted"])
def test_a_certificate_not_trusted_names_ca_file(speech20, fault_server, private_ca, kind):
    server = fault_server(ssl_context=private_ca.server_context())
    run, _ = _timed(server.base_url, speech20.path)
    line = assert_one_line_error(run.proc, status=1)
    assert "the TLS certificate of 127.0.0.1 is not trusted" in line and "--ca-file" in line, line
