"""A public endpoint spends the operator's account: signatures, bind rules, secrets."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import urllib.request

import pytest

from nsaudio.errors import InputError
from nsaudio.gateway import GatewayConfig, ServiceTarget
from nsaudio.gateway.signature import signature

from ..conftest import ROOT
from .support import twilio_call, twilio_messages

TOKEN = "twilio-auth-token-5f3a9c"


def _upgrade(url: str, headers: dict[str, str] | None) -> int:
    """The HTTP status a WebSocket upgrade gets (101 when accepted)."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus

    async def go() -> int:
        try:
            async with connect(url, additional_headers=headers):
                return 101
        except InvalidStatus as err:
            return err.response.status_code

    return asyncio.run(go())


def test_a_wrong_or_missing_signature_is_refused_before_any_session(gateway, call_audio):
    gw = gateway(auth_token=TOKEN)
    service = gw.service
    url = gw.twilio_url + "/media"
    host = url.removeprefix("ws://").split("/")[0]
    assert _upgrade(url, None) == 403
    assert _upgrade(url, {"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"}) == 403
    assert (
        _upgrade(url, {"X-Twilio-Signature": signature("other-token", f"wss://{host}/media")})
        == 403
    )
    assert _upgrade(url, {"X-Twilio-Signature": signature(TOKEN, f"wss://{host}/elsewhere")}) == 403
    # Counted at the service: not one token fetched, not one session opened.
    assert service.rest_calls == [] and service.attempts == 0
    assert gw.gateway.metrics.refused.labels("twilio", "signature")._value.get() == 4
    # The same gateway takes a signed call.
    good = {"X-Twilio-Signature": signature(TOKEN, f"wss://{host}/media")}
    msgs = twilio_messages("CA" + "5" * 32, {"inbound": call_audio.data[:, 0]})
    asyncio.run(twilio_call(url, msgs, headers=good))
    assert gw.wait_ends(1)[0].verdict == "complete"
    assert service.attempts == 1


def _config(**kw: object) -> GatewayConfig:
    return GatewayConfig(service=ServiceTarget("http://127.0.0.1:9", "k"), **kw)  # type: ignore[arg-type]


def test_public_binds_need_a_token_or_an_allow_list():
    with pytest.raises(InputError, match="twilio-auth-token-file"):
        _config(twilio=("0.0.0.0", 0)).check()
    _config(twilio=("0.0.0.0", 0), auth_token="t").check()
    _config(twilio=("0.0.0.0", 0), insecure_no_signature=True).check()
    _config(twilio=("127.0.0.1", 0)).check()
    _config(twilio=("::1", 0)).check()
    with pytest.raises(InputError, match="--allow"):
        _config(audiosocket=("0.0.0.0", 0)).check()
    import ipaddress

    _config(audiosocket=("0.0.0.0", 0), allow=(ipaddress.ip_network("10.0.0.0/8"),)).check()


def _cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 30
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nsaudio", "gateway", *args], cwd=ROOT, capture_output=True,
        timeout=timeout, env={"PATH": "/usr/bin:/bin", **(env or {})},
    )  # fmt: skip


def test_the_command_refuses_unsafe_binds_with_one_line():
    for args, says in (
        (["--twilio", "0.0.0.0:0"], b"--twilio-auth-token-file"),
        (["--audiosocket", "0.0.0.0:0"], b"--allow"),
        ([], b"nothing to listen on"),
        (["--twilio", "nonsense"], b"HOST:PORT"),
    ):
        proc = _cli(*args, "--base-url", "http://127.0.0.1:9", env={"NS_API_KEY": "k"})
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(b"nsaudio: error: ") and says in lines[0]


def test_a_bad_detector_is_one_line_before_anything_starts(tmp_path):
    damaged = tmp_path / "vad.onnx"
    damaged.write_bytes(b"not a model")
    for args, says in (
        (["--gate-vad-model", str(damaged)], b"--gate-vad-model is for --gate-vad silero"),
        (["--gate-vad", "silero", "--gate-vad-model", str(damaged)], str(damaged).encode()),
        (["--gate-vad", "silero", "--gate-vad-model", str(tmp_path / "none.onnx")], b"none.onnx"),
    ):
        proc = _cli("--audiosocket", "127.0.0.1:0", "--base-url", "http://127.0.0.1:9", *args,
                    env={"NS_API_KEY": "k"})  # fmt: skip
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(b"nsaudio: error: ") and says in lines[0]


def test_secrets_never_show_in_logs_or_metrics(fault_server, tmp_path, call_audio):
    """At -vv, with a refused upgrade and a real call, neither the Auth Token nor the API key
    appears on stderr or in /metrics."""
    import signal
    import socket

    server = fault_server()
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    ports = []
    for _ in range(2):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        ports.append(s.getsockname()[1])
        s.close()
    proc = subprocess.Popen(
        [sys.executable, "-m", "nsaudio", "-vv", "gateway", "--twilio", f"127.0.0.1:{ports[0]}",
         "--ops", f"127.0.0.1:{ports[1]}", "--twilio-auth-token-file", str(token_file),
         "--base-url", server.base_url, "--format", "pcm_8k"],
        cwd=ROOT, stderr=subprocess.PIPE, env={"PATH": "/usr/bin:/bin", "NS_API_KEY": server.api_key},
    )  # fmt: skip
    try:
        url = f"ws://127.0.0.1:{ports[0]}/media"
        for _ in range(100):
            try:
                metrics = urllib.request.urlopen(
                    f"http://127.0.0.1:{ports[1]}/metrics", timeout=2
                ).read()
                break
            except OSError:
                asyncio.run(asyncio.sleep(0.1))
        assert _upgrade(url, {"X-Twilio-Signature": "AAAA"}) == 403
        good = {"X-Twilio-Signature": signature(TOKEN, f"wss://127.0.0.1:{ports[0]}/media")}
        msgs = twilio_messages("CA" + "6" * 32, {"inbound": call_audio.data[:8000, 0]})
        asyncio.run(twilio_call(url, msgs, headers=good))
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{ports[1]}/metrics", timeout=5).read()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    for secret in (TOKEN.encode(), server.api_key.encode(), *[t.encode() for t in server.tokens]):
        assert secret not in err and secret not in metrics
    assert b"refused a media stream" in err and b"call CA" + b"6" * 32 + b" ended" in err
    assert b'nsaudio_gateway_refused_total{protocol="twilio",reason="signature"} 1.0' in metrics
