"""Webhook (retried, bounded), /healthz, /readyz and /metrics, and the Python hooks."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
import uuid

from .support import WebhookReceiver, audiosocket_call, audiosocket_frames


def _get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_the_webhook_gets_every_final_result_and_the_call_end_despite_failures(gateway, call_audio):
    with WebhookReceiver(fail_first=2) as hook:
        gw = gateway(webhook=hook.url)
        cid = uuid.uuid4()
        asyncio.run(
            audiosocket_call(gw.audiosocket_port, audiosocket_frames(cid, call_audio.data[:, 0]))
        )
        gw.wait_ends(1)
        assert gw.drain()
    results = sorted(
        (e for e in hook.events if e["event"] == "result"), key=lambda e: e["sequence"]
    )
    assert [e["sequence"] for e in results] == list(range(1, len(results) + 1))
    assert hook.ends()[0]["sequence"] == len(results) + 1
    assert " ".join(e["text"] for e in results).split() == call_audio.words
    assert all(e["call_id"] == str(cid) and e["track"] == "caller" and e["full"] for e in results)
    (end,) = hook.ends()
    assert end["verdict"] == "complete" and end["reason"] == "hangup"
    assert end["tracks"]["caller"]["ok"] and end["tracks"]["caller"]["sent_s"] > 6
    assert hook.requests == len(hook.events) + 2  # two refused, then retried


def test_an_unreachable_webhook_is_counted_not_blocking(gateway, call_audio, caplog):
    gw = gateway(webhook="http://127.0.0.1:9/hook?key=hook-secret-77")
    gw.gateway.webhook.attempts = 2
    gw.gateway.webhook.backoff = (0.5, 0.5)  # still trying when the drain begins
    cid = uuid.uuid4()
    asyncio.run(
        audiosocket_call(gw.audiosocket_port, audiosocket_frames(cid, call_audio.data[:, 0]))
    )
    assert gw.wait_ends(1)[0].verdict == "complete"  # the audio never waited for the webhook
    assert not gw.drain()  # the events were not delivered: the drain says so
    assert gw.gateway.metrics.webhook_failures._value.get() >= 1
    assert "hook-secret-77" not in caplog.text and "127.0.0.1:9" in caplog.text


def test_health_readiness_and_metrics(gateway, call_audio):
    gw = gateway()
    port = gw.gateway.ops_port
    assert _get(port, "/healthz") == (200, b"ok\n")
    assert _get(port, "/readyz") == (200, b"ready\n")
    assert _get(port, "/nope")[0] == 404
    cid = uuid.uuid4()
    asyncio.run(
        audiosocket_call(gw.audiosocket_port, audiosocket_frames(cid, call_audio.data[:, 0]))
    )
    gw.wait_ends(1)
    status, text = _get(port, "/metrics")
    assert status == 200
    for line in (
        b'nsaudio_gateway_calls_total{protocol="audiosocket",verdict="complete"} 1.0',
        b'nsaudio_gateway_active_calls{protocol="audiosocket"} 0.0',
        b"nsaudio_gateway_reconnects_total 0.0",
        b'nsaudio_gateway_audio_dropped_seconds_total{protocol="audiosocket"} 0.0',
    ):
        assert line in text, line
    received = float(
        text.split(b'nsaudio_gateway_audio_received_seconds_total{protocol="audiosocket"} ')[
            1
        ].split()[0]
    )
    assert received == 6.0
    assert b'nsaudio_gateway_results_total{kind="full"}' in text
    # What the command's SIGTERM handler calls, on its own thread: not ready from then on,
    # before the loop gets to the drain.
    gw.gateway.stop_taking_calls()
    assert _get(port, "/readyz") == (503, b"draining\n")
    assert not gw.gateway.draining and _get(port, "/healthz") == (200, b"ok\n")


def test_a_raising_hook_is_counted_and_the_call_goes_on(gateway, call_audio):
    gw = gateway()
    gw.gateway.on_result = lambda *a: 1 / 0
    cid = uuid.uuid4()
    asyncio.run(
        audiosocket_call(gw.audiosocket_port, audiosocket_frames(cid, call_audio.data[:, 0]))
    )
    assert gw.wait_ends(1)[0].verdict == "complete"
    assert gw.gateway.metrics.hook_failures._value.get() > 0
