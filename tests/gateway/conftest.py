"""Fixtures for the gateway tests: slot-coded call audio at 8 kHz, fault servers, gateways."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from nsaudio.gateway import GatewayConfig, ServiceTarget, TrackSettings
from nsaudio.neuralspace.protocol import StreamParams

from ..faults.server import FaultServer
from ..faults.slots import SlotAudio, make_speech
from .support import GatewayThread


@pytest.fixture(scope="session")
def call_audio() -> SlotAudio:
    """6 s of slot-coded speech at 8 kHz mono (2.5 s voiced, 0.5 s silent, twice)."""
    return make_speech(6, rate=8000, channels=1)


def config_for(server: FaultServer, **kw: object) -> GatewayConfig:
    track = kw.pop("track", None) or TrackSettings(
        params=StreamParams(format="pcm_8k"), drain_timeout=20, ping_interval=1, ping_timeout=4
    )
    base: dict[str, object] = {
        "service": ServiceTarget(server.base_url, server.api_key),
        "track": track,
        "twilio": ("127.0.0.1", 0),
        "audiosocket": ("127.0.0.1", 0),
        "ops": ("127.0.0.1", 0),
    }
    base.update(kw)
    return GatewayConfig(**base)  # type: ignore[arg-type]


@pytest.fixture
def gateway(fault_server) -> Iterator[Callable[..., GatewayThread]]:
    """``gateway(server=None, **config)``: a started gateway (and a fault server if none given)."""
    running: list[GatewayThread] = []

    def start(server: FaultServer | None = None, **kw: object) -> GatewayThread:
        server = server or fault_server()
        gw = GatewayThread(config_for(server, **kw)).__enter__()
        gw.service = server  # type: ignore[attr-defined]
        running.append(gw)
        return gw

    yield start
    for gw in running:
        gw.__exit__(None, None, None)
