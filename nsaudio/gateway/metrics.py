"""The gateway's Prometheus metrics, on a registry of its own (``prometheus_client``).

With ``--workers N`` each worker process writes its values where the supervisor's
``/metrics`` adds them up (``prometheus_client``'s multiprocess mode, enabled by the
``PROMETHEUS_MULTIPROC_DIR`` the supervisor sets); gauges are then summed over the live
workers. Labels carry protocols, tracks, reasons and verdicts, never an id or a secret.
"""

from __future__ import annotations

import os

__all__ = ["GatewayMetrics"]

PREFIX = "nsaudio_gateway_"


class GatewayMetrics:
    """Every metric the gateway keeps (see the README's list)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge

        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.active_calls = Gauge(
            PREFIX + "active_calls",
            "Calls in progress",
            ["protocol"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.connections = Gauge(
            PREFIX + "open_connections", "Connections open, calls or not yet", ["protocol"],
            registry=r, multiprocess_mode="livesum",
        )  # fmt: skip
        self.ready = Gauge(
            PREFIX + "ready", "1 while accepting calls, 0 while draining", registry=r,
            multiprocess_mode="livemin",
        )  # fmt: skip
        self.calls = Counter(
            PREFIX + "calls", "Calls ended, by verdict", ["protocol", "verdict"], registry=r
        )
        self.refused = Counter(
            PREFIX + "refused",
            "Connections refused before a call began (signature, not_allowed, max_calls, "
            "draining, bad_input, timeout)",
            ["protocol", "reason"],
            registry=r,
        )
        self.received_seconds = Counter(
            PREFIX + "audio_received_seconds", "Audio received from the platform",
            ["protocol"], registry=r,
        )  # fmt: skip
        self.sent_seconds = Counter(
            PREFIX + "audio_sent_seconds", "Audio sent to the speech service", ["protocol"],
            registry=r,
        )  # fmt: skip
        self.missing_seconds = Counter(
            PREFIX + "audio_missing_seconds",
            "Gaps in the platform's media (packets that never came, or came too late)",
            ["protocol"], registry=r,
        )  # fmt: skip
        self.dropped_seconds = Counter(
            PREFIX + "audio_dropped_seconds",
            "Audio received but dropped before it could be sent to the service",
            ["protocol"], registry=r,
        )  # fmt: skip
        self.reconnects = Counter(
            PREFIX + "reconnects", "Sessions to the service re-established", registry=r
        )
        self.results = Counter(PREFIX + "results", "Results from the service", ["kind"], registry=r)
        self.bad_messages = Counter(
            PREFIX + "bad_messages", "Calls ended by a malformed or out-of-place message",
            ["protocol"], registry=r,
        )  # fmt: skip
        self.unknown_events = Counter(
            PREFIX + "unknown_events", "Media events this version does not know, skipped",
            ["protocol"], registry=r,
        )  # fmt: skip
        self.webhook_failures = Counter(
            PREFIX + "webhook_failures", "Webhook events not delivered after retries",
            registry=r,
        )  # fmt: skip
        self.hook_failures = Counter(
            PREFIX + "hook_failures", "Python hooks (on_result, on_call_end) that raised",
            registry=r,
        )  # fmt: skip

    def render(self) -> bytes:
        """The text exposition of this registry."""
        from prometheus_client import generate_latest

        return bytes(generate_latest(self.registry))


def render_multiprocess(path: str) -> bytes:
    """The workers' metrics added up (the supervisor's ``/metrics``): ``path`` is the
    directory the workers write them to (their ``PROMETHEUS_MULTIPROC_DIR``; the supervisor
    has none of its own)."""
    from prometheus_client import CollectorRegistry, generate_latest, multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=path)
    return bytes(generate_latest(registry))
