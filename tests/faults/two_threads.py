"""The two-thread pattern on one wss:// socket: the race the TLS harness must catch.

Run as a script (the race can corrupt the heap and kill the process, so the test runs it in
a subprocess and counts a crash as a catch)::

    python tests/faults/two_threads.py BASE_URL CA_PEM API_KEY [--sessions N] [--seconds S]
        [--budget S] [--until-error] [--frame-bytes N] [--gap S] [--timeout S]

For each session: a token over REST, then ``websocket.create_connection(wss_url,
sslopt={"ca_certs": CA_PEM}, enable_multithread=True)``, ``ws.settimeout(20)``, one thread
reading frames in a loop while this thread sends 3,200-byte binary frames for ``--seconds``,
with a ``--gap`` sleep (default 50 us) after each; then a close 1000. This is what
``NeuralSpaceSink`` did before the session engine (and what the service's guide advises).

The gap matters: flat out, the sender holds the GIL most of the time and the reader rarely
runs, so the race is rare (0 of 30 one-second sessions broke at load 8-10 on the 2 cores
here); sleeping 50 us after each send broke 23 of 30 and 25 of 30 at that load (100 us: 15,
200 us: 10, 1 ms: 2 of 30; sleep(0): 6 of 30).

One JSON line per session on stdout: ``{"session": i, "ok": bool, "error": str | null}``;
``ok`` is false when a send or a receive failed before the close, when the reader did not
end after it, or when the server's close never came. Over plain ws:// (an ``http://`` base)
or with ``--timeout 0`` (a blocking socket) no session failed in the measurements here. With ``--until-error`` it stops at the
first failed session (``--sessions`` and ``--budget`` still bound it).
"""

from __future__ import annotations

import argparse
import json
import ssl
import sys
import threading
import time
import urllib.request
import uuid

import websocket

PATTERN = bytes(range(256)) * 64


def token(base: str, ctx: ssl.SSLContext, key: str) -> str:
    req = urllib.request.Request(
        f"{base}/api/v2/token?duration=600", headers={"Authorization": key}
    )
    with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
        return json.loads(resp.read())["data"]["token"]


def one_session(
    base: str,
    ca: str,
    key: str,
    seconds: float,
    timeout: float | None,
    frame: bytes,
    gap: float,
) -> str | None:
    """One session; None if it ran and closed cleanly, else what went wrong."""
    ctx = ssl.create_default_context(cafile=ca)
    wss = base.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
    url = f"{wss}/voice/stream/live/transcribe/en/{token(base, ctx, key)}/{uuid.uuid4()}"
    ws = websocket.create_connection(url, sslopt={"ca_certs": ca}, enable_multithread=True)
    ws.settimeout(timeout)
    errors: list[str] = []
    got_close = threading.Event()

    def reader() -> None:
        try:
            while True:
                # Raw frames: recv_data_frame() would answer the server's close with a second
                # close of ours, which may meet a socket the server already shut.
                if ws.recv_frame().opcode == websocket.ABNF.OPCODE_CLOSE:
                    got_close.set()
                    return
        except Exception as err:
            errors.append(f"recv: {type(err).__name__}: {err}")

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline and not errors:
            ws.send_binary(frame)
            if gap > 0:
                time.sleep(gap)
        if not errors:
            ws.send_close(1000)
    except Exception as err:
        errors.append(f"send: {type(err).__name__}: {err}")
    thread.join(5)
    if thread.is_alive():
        errors.append("the reader was still blocked 5 s after the close")
    elif not got_close.is_set() and not errors:
        errors.append("the server's close never came")
    try:
        ws.shutdown()
    except Exception as err:  # pragma: no cover - nothing left to save
        errors.append(f"shutdown: {type(err).__name__}: {err}")
    return "; ".join(errors) or None


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("base_url")
    p.add_argument("ca_file")
    p.add_argument("api_key")
    p.add_argument("--sessions", type=int, default=20)
    p.add_argument("--seconds", type=float, default=1.0)
    p.add_argument("--budget", type=float, default=60.0, help="stop starting sessions after this")
    p.add_argument("--until-error", action="store_true")
    p.add_argument(
        "--frame-bytes", type=int, default=3200, help="bytes per send (3200: 100 ms of 16 kHz)"
    )
    p.add_argument("--gap", type=float, default=5e-5, help="sleep S after each send (0: none)")
    p.add_argument(
        "--timeout", type=float, default=20.0, help="the socket timeout (0: none, blocking)"
    )
    args = p.parse_args()
    frame = (PATTERN * (1 + args.frame_bytes // len(PATTERN)))[: args.frame_bytes]
    stop_at = time.monotonic() + args.budget
    for i in range(args.sessions):
        if time.monotonic() >= stop_at:
            break
        try:
            error = one_session(
                args.base_url,
                args.ca_file,
                args.api_key,
                args.seconds,
                args.timeout or None,
                frame,
                args.gap,
            )
        except Exception as err:
            error = f"session: {type(err).__name__}: {err}"
        print(json.dumps({"session": i, "ok": error is None, "error": error}), flush=True)
        if error is not None and args.until_error:
            break
    return 0


if __name__ == "__main__":
    sys.exit(main())
