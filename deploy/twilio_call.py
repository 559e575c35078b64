"""One simulated Twilio call to a gateway: a signed Media Streams WebSocket, paced in real time.

    python deploy/twilio_call.py ws://127.0.0.1:8080/media --token-file TOKEN \\
        --wav fixtures/speech_8000_mono_ulaw.wav --repeat 3 --call-sid CA...

It speaks what Twilio sends (``connected``, ``start``, ``media`` every 20 ms with base64
µ-law, ``stop``), signs the upgrade as Twilio does (``X-Twilio-Signature``: base64 HMAC-SHA1
of the URL, keyed with the Auth Token), and waits for the gateway to close. The audio is a
µ-law 8 kHz mono WAV, sent ``--repeat`` times. It prints one line (the close code) and exits 0
when the gateway closed the call normally, 1 otherwise. Used by ``deploy/docker-smoke.sh``;
needs only the standard library and ``websockets``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import struct
import sys
import time
from pathlib import Path

PACKET = 160  # bytes of µ-law: 20 ms at 8 kHz, what Twilio sends
ULAW = 7  # WAVE_FORMAT_MULAW


def ulaw_payload(path: Path) -> bytes:
    """The data chunk of a µ-law 8 kHz mono WAV (the ``wave`` module reads PCM only)."""
    raw = path.read_bytes()
    if raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise ValueError(f"{path}: not a WAV file")
    pos, fmt, data = 12, None, None
    while pos + 8 <= len(raw):
        tag, size = raw[pos : pos + 4], struct.unpack("<I", raw[pos + 4 : pos + 8])[0]
        body = raw[pos + 8 : pos + 8 + size]
        if tag == b"fmt ":
            fmt = struct.unpack("<HHI", body[:8])
        elif tag == b"data":
            data = body
        pos += 8 + size + (size & 1)  # chunks are padded to even sizes
    if fmt != (ULAW, 1, 8000) or data is None:
        raise ValueError(f"{path}: not µ-law 8 kHz mono (format, channels, rate: {fmt})")
    return data


def sign(token: str, url: str) -> str:
    """Twilio's ``X-Twilio-Signature`` of a WebSocket upgrade to ``url`` (no form fields)."""
    return base64.b64encode(hmac.new(token.encode(), url.encode(), hashlib.sha1).digest()).decode()


def messages(call_sid: str, audio: bytes) -> list[str]:
    """The whole stream, as Twilio sends it for a one-track ``<Stream>``."""
    stream_sid = "MZ" + call_sid[2:]
    out = [
        json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}),
        json.dumps({
            "event": "start", "sequenceNumber": "1", "streamSid": stream_sid,
            "start": {
                "accountSid": "AC" + "0" * 32, "streamSid": stream_sid, "callSid": call_sid,
                "tracks": ["inbound"], "customParameters": {"source": "docker-smoke"},
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
        }),
    ]  # fmt: skip
    for k in range(len(audio) // PACKET):
        payload = base64.b64encode(audio[k * PACKET : (k + 1) * PACKET]).decode()
        out.append(json.dumps({
            "event": "media", "sequenceNumber": str(k + 2), "streamSid": stream_sid,
            "media": {"track": "inbound", "chunk": str(k + 1), "timestamp": str(k * 20),
                      "payload": payload},
        }))  # fmt: skip
    out.append(json.dumps({"event": "stop", "sequenceNumber": str(len(out)), "stop": {}}))
    return out


async def call(url: str, headers: dict[str, str], stream: list[str], timeout: float) -> int | None:
    """Send ``stream`` in real time; the close code the gateway gave (None: no close frame)."""
    from websockets.asyncio.client import connect

    async with connect(url, additional_headers=headers, open_timeout=10) as ws:
        start = time.monotonic()
        sent = 0
        for m in stream:
            await ws.send(m)
            if m.startswith('{"event": "media"'):
                sent += 1
                # Paced on the clock, not by sleeping 20 ms each: the call keeps real time.
                await asyncio.sleep(max(0.0, start + sent * 0.02 - time.monotonic()))
        try:
            await asyncio.wait_for(ws.wait_closed(), timeout)
        except asyncio.TimeoutError:
            return None
        return ws.close_code


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, make one call, print its close code; 0 when the gateway closed it 1000."""
    p = argparse.ArgumentParser(prog="twilio_call.py", description=__doc__.split("\n")[0])
    p.add_argument("url", help="the gateway's Media Streams URL (ws://host:port/path)")
    p.add_argument("--token-file", type=Path, help="the Auth Token the gateway checks")
    p.add_argument("--wav", type=Path, required=True, help="µ-law 8 kHz mono WAV to send")
    p.add_argument("--repeat", type=int, default=1, help="send the audio this many times")
    p.add_argument("--call-sid", default="CA" + "5" * 32)
    p.add_argument("--timeout", type=float, default=60, help="wait this long for the close")
    args = p.parse_args(argv)
    try:
        audio = ulaw_payload(args.wav) * max(1, args.repeat)
        headers = {}
        if args.token_file is not None:
            headers["X-Twilio-Signature"] = sign(args.token_file.read_text().strip(), args.url)
        code = asyncio.run(call(args.url, headers, messages(args.call_sid, audio), args.timeout))
    except (OSError, ValueError) as e:
        print(f"twilio_call.py: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # websockets' refusals (403, 503) end here: say which, not a traceback
        print(f"twilio_call.py: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(f"call {args.call_sid}: {len(audio) / 8000:.2f} s sent, close code {code}")
    return 0 if code == 1000 else 1


if __name__ == "__main__":
    sys.exit(main())
