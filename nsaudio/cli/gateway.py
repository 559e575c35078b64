"""``nsaudio gateway``: phone calls in (Twilio Media Streams, Asterisk AudioSocket), one
speech session per track, transcripts out; drains on SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import ipaddress
import logging
import os
import resource
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from ..detectors.base import DETECTORS
from ..errors import InputError
from ..formats import FORMATS
from ..neuralspace.protocol import StreamParams
from .options import milliseconds, positive_float, unit_interval, whole_number
from .service import add_service_options, service_endpoint
from .stream import _QueryParam, frame_ms

log = logging.getLogger("nsaudio.gateway")


def host_port(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6; port 0 picks a free one)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, not {text!r}")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def cidr(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a network like 10.0.0.0/8: {text!r}") from None


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "gateway",
        parents=[common],
        help="take phone calls (Twilio Media Streams, Asterisk AudioSocket) and transcribe them",
        description="Listen for phone calls' media streams, stream each call's tracks to the "
        "speech service (the built-in local server when NS_API_KEY is not set), and write "
        "each call's transcript as JSON Lines, post it to a webhook, or both. SIGTERM drains: "
        "readiness goes false, calls in progress finish (up to --drain-timeout), exit 0 when "
        "every one ended complete.",
    )
    ins = p.add_argument_group("calls in")
    ins.add_argument("--twilio", type=host_port, metavar="HOST:PORT",
                     help="listen for Twilio Media Streams (a WebSocket on any path)")  # fmt: skip
    ins.add_argument(
        "--twilio-auth-token-file", metavar="FILE",
        help="the account's Auth Token: upgrades without its X-Twilio-Signature are refused "
        "(403). Without it, --twilio must be a loopback address",
    )  # fmt: skip
    ins.add_argument(
        "--twilio-shared-key-file", metavar="FILE",
        help="a Webhooks rule's shared key, for upgrades signed with HMAC-SHA256",
    )  # fmt: skip
    ins.add_argument(
        "--public-url", metavar="URL",
        help="the URL base Twilio calls (wss://host[/prefix]) when a proxy or load balancer "
        "is in front; the request's path follows it in the signed URL",
    )  # fmt: skip
    ins.add_argument(
        "--insecure-no-signature", action="store_true",
        help="take unsigned Twilio upgrades on a public address (something in front must "
        "check them: anyone reaching the port opens sessions on your account)",
    )  # fmt: skip
    ins.add_argument("--audiosocket", type=host_port, metavar="HOST:PORT",
                     help="listen for Asterisk AudioSocket connections (TCP)")  # fmt: skip
    ins.add_argument(
        "--allow", type=cidr, action="append", default=[], metavar="CIDR",
        help="AudioSocket peers allowed (repeatable); without it only loopback, and "
        "--audiosocket must be a loopback address",
    )  # fmt: skip
    ins.add_argument("--max-calls", type=whole_number(1, 100_000), default=500, metavar="N",
                     help="calls at once per process; more are refused (default 500)")  # fmt: skip
    ins.add_argument("--handshake-timeout", type=positive_float, default=5.0, metavar="S",
                     help="a connection that has not said which call it is by then is closed "
                     "(default 5)")  # fmt: skip
    ins.add_argument("--idle-timeout", type=positive_float, default=10.0, metavar="S",
                     help="a call that sends nothing this long is ended (default 10)")  # fmt: skip
    ins.add_argument("--jitter-ms", type=milliseconds, default=60.0, metavar="MS",
                     help="how long a packet waits for a late one before its gap is kept "
                     "(default 60)")  # fmt: skip
    outs = p.add_argument_group("transcripts out")
    outs.add_argument("--out-dir", metavar="DIR",
                      help="write each call's final results to DIR/<call id>.jsonl")  # fmt: skip
    outs.add_argument("--webhook", metavar="URL",
                      help="POST each final result and each call's end (with its verdict) "
                      "as JSON to URL")  # fmt: skip
    ops = p.add_argument_group("operations")
    ops.add_argument("--ops", type=host_port, default=("127.0.0.1", 8081), metavar="HOST:PORT",
                     help="/healthz, /readyz and /metrics (default 127.0.0.1:8081)")  # fmt: skip
    ops.add_argument("--workers", type=whole_number(1, 256), default=1, metavar="N",
                     help="N processes on the same ports (SO_REUSEPORT) (default 1)")  # fmt: skip
    ops.add_argument("--drain-timeout", type=positive_float, default=30.0, metavar="S",
                     help="on SIGTERM, how long calls may go on before they are ended "
                     "(default 30)")  # fmt: skip
    ops.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    svc = p.add_argument_group("the speech service (as for nsaudio stream)")
    svc.add_argument("--language", default="en", help="language code (default en)")
    svc.add_argument("--format", default="pcm_8k", choices=list(FORMATS),
                     help="what the service gets (default pcm_8k: calls are 8 kHz)")  # fmt: skip
    svc.add_argument("--max-chunk-size", type=whole_number(1, 60, "seconds"), default=5,
                     metavar="S", help="seconds of speech after which the service finalises")  # fmt: skip
    svc.add_argument("--vad-threshold", type=positive_float, default=0.5, metavar="X",
                     help="the service's speech threshold (default 0.5)")  # fmt: skip
    svc.add_argument("--disable-partial", action="store_true", help="ask for full results only")
    svc.add_argument("--param", action=_QueryParam, default={}, metavar="KEY=VALUE",
                     help="another query parameter for the service (repeatable)")  # fmt: skip
    svc.add_argument("--frame-ms", type=frame_ms, default=100, metavar="MS",
                     help="audio per message to the service, 20 to 1000 ms (default 100)")  # fmt: skip
    svc.add_argument("--gate", action="store_true", help="send only what the gate hears as speech")
    svc.add_argument("--gate-vad", choices=DETECTORS, default="energy",
                     help="the gate's speech detector (default energy; silero: pip install "
                     "'nsaudio[vad]', about 0.6 ms of CPU per 100 ms of a track)")  # fmt: skip
    svc.add_argument("--gate-vad-model", metavar="FILE.onnx",
                     help="with --gate-vad silero: a Silero VAD ONNX model instead of the bundled one")  # fmt: skip
    svc.add_argument("--gate-threshold", type=unit_interval, default=0.5, metavar="X")
    svc.add_argument("--gate-pre-roll", type=milliseconds, default=300, metavar="MS")
    svc.add_argument("--gate-tail", type=milliseconds, default=700, metavar="MS")
    svc.add_argument("--session-drain-timeout", type=positive_float, default=30.0, metavar="S",
                     help="how long a track's end waits for its last result (default 30)")  # fmt: skip
    svc.add_argument("--ping-interval", type=positive_float, default=2.5, metavar="S")
    svc.add_argument("--ping-timeout", type=positive_float, default=7.0, metavar="S")
    svc.add_argument("--connect-timeout", type=positive_float, default=10.0, metavar="S")
    svc.add_argument("--local-engine", choices=("pocketsphinx", "cheap"), default="pocketsphinx",
                     help="the built-in server's recogniser when it is used (cheap: for load "
                     "tests)")  # fmt: skip
    add_service_options(p)
    p.set_defaults(run=run)


def _secret(path: str | None, what: str) -> str | None:
    if path is None:
        return None
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except OSError as err:
        raise InputError(f"{path}: cannot read the {what} file ({err.strerror})") from None
    if not text:
        raise InputError(f"{path}: the {what} file is empty")
    return text


def raise_fd_limit() -> int:
    """The open-files soft limit raised to the hard one (a flood of connections must not run
    the process out of descriptors before the timeouts close them); the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft


def run(args: argparse.Namespace) -> int:
    if not getattr(args, "quiet", False) and not getattr(args, "verbose", 0):
        log.setLevel(logging.INFO)  # one line per call start and end
    if args.twilio is None and args.audiosocket is None:
        raise InputError(
            "nothing to listen on: give --twilio HOST:PORT, --audiosocket HOST:PORT or both"
        )
    if args.out_dir is not None and not os.path.isdir(args.out_dir):
        raise InputError(f"{args.out_dir}: --out-dir is not a directory")
    from ..gateway import ServiceTarget

    # Every usage error (an unsafe bind above all) before anything starts or connects.
    config = _gateway_config(args, ServiceTarget("", "", None), **_config_args(args))
    config.check()
    limit = raise_fd_limit()
    log.debug("open files limit: %d", limit)
    if args.workers > 1 and not args.worker:
        return _supervise(args)
    with service_endpoint(args) as endpoint:
        if not args.worker:
            endpoint.check_language(args.language)
        target = ServiceTarget(endpoint.base_url, endpoint._api_key, endpoint.ca_file)
        return _serve(args, dataclasses.replace(config, service=target))


def _config_args(args: argparse.Namespace) -> dict[str, str | None]:
    token = _secret(args.twilio_auth_token_file, "Auth Token")
    shared = _secret(args.twilio_shared_key_file, "shared key")
    if args.insecure_no_signature and args.twilio is not None:
        log.warning(
            "--insecure-no-signature: Twilio upgrades are NOT checked; anyone who reaches "
            "%s:%d opens speech sessions on your account", *args.twilio,
        )  # fmt: skip
    return {"auth_token": token, "shared_key": shared}


def _gateway_config(args: argparse.Namespace, target: Any, **secrets: str | None) -> Any:
    """The gateway's configuration from the command line (``target``: the service;
    ``secrets``: ``auth_token``, ``shared_key``)."""
    from ..gateway import GatewayConfig, TrackSettings

    params = StreamParams(
        language=args.language, format=args.format, max_chunk_size=args.max_chunk_size,
        vad_threshold=args.vad_threshold, disable_partial=args.disable_partial, extra=args.param,
    )  # fmt: skip
    track = TrackSettings(
        params=params, frame_ms=args.frame_ms, gate=args.gate,
        gate_threshold=args.gate_threshold, gate_pre_roll_ms=args.gate_pre_roll,
        gate_tail_ms=args.gate_tail, gate_vad=args.gate_vad, gate_vad_model=args.gate_vad_model,
        drain_timeout=args.session_drain_timeout,
        ping_interval=args.ping_interval, ping_timeout=args.ping_timeout,
        connect_timeout=args.connect_timeout,
    )  # fmt: skip
    return GatewayConfig(
        service=target, track=track, twilio=args.twilio,
        audiosocket=args.audiosocket, ops=None if args.worker else args.ops,
        auth_token=secrets["auth_token"], shared_key=secrets["shared_key"],
        public_url=args.public_url, insecure_no_signature=args.insecure_no_signature,
        allow=tuple(args.allow), max_calls=args.max_calls, out_dir=args.out_dir,
        webhook=args.webhook, drain_timeout=args.drain_timeout,
        handshake_timeout=args.handshake_timeout, idle_timeout=args.idle_timeout,
        jitter_ms=args.jitter_ms, reuse_port=args.worker,
    )  # fmt: skip


def _serve(args: argparse.Namespace, config: Any) -> int:
    from ..gateway import Gateway
    from ..gateway.server import engine_loop

    auth_token = config.auth_token
    loop = engine_loop()  # one thread parses the calls and drives their sessions
    gateway = Gateway(config)
    asyncio.run_coroutine_threadsafe(gateway.start(), loop).result()
    where = ", ".join(
        f"{name} {host}:{port}" for name, host, port in (
            ("twilio", args.twilio and args.twilio[0], gateway.twilio_port),
            ("audiosocket", args.audiosocket and args.audiosocket[0], gateway.audiosocket_port),
            ("ops", args.ops[0] if not args.worker else None, gateway.ops_port),
        ) if port is not None
    )  # fmt: skip
    log.info("listening: %s%s", where, "" if auth_token else " (Twilio upgrades unsigned)")
    if args.worker:
        sys.stdout.write("ready\n")
        sys.stdout.flush()
    stop = threading.Event()

    def on_signal(*_: Any) -> None:
        gateway.stop_taking_calls()  # readiness false at once, the drain follows
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    while not stop.wait(0.5):  # in slices: signals reach the main thread between them
        pass
    ok = asyncio.run_coroutine_threadsafe(gateway.drain(), loop).result()
    return 0 if ok else 1


_PARENT_ONLY = {"--workers": 1, "--ops": 1, "--local": 0, "--api-key-file": 1, "--base-url": 1,
                "--ca-file": 1, "--local-engine": 1}  # fmt: skip


def _supervise(args: argparse.Namespace) -> int:
    from ..gateway.workers import Supervisor

    argv = sys.argv[1:]
    worker_argv: list[str] = []
    skip = 0
    for word in argv:
        if skip:
            skip -= 1
            continue
        name = word.split("=", 1)[0]
        if name in _PARENT_ONLY:
            skip = _PARENT_ONLY[name] if "=" not in word else 0
            continue
        worker_argv.append(word)
    with service_endpoint(args) as endpoint:
        endpoint.check_language(args.language)
        worker_argv += ["--base-url", endpoint.base_url, "--worker"]
        if endpoint.ca_file:
            worker_argv += ["--ca-file", endpoint.ca_file]
        env = {"NS_API_KEY": endpoint._api_key}
        sup = Supervisor(args.workers, worker_argv, env, args.ops, args.drain_timeout)
        return asyncio.run(sup.run())
