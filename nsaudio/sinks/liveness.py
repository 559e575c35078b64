"""Is the open session alive, and how much audio may go out before it proves it read it?

Pure, one session at a time (``reset`` when a new one opens). A ping goes out every
``ping_interval``; neither its pong nor any message within ``ping_timeout`` and the
connection is dead (a half-open connection is noticed within the sum; a service busy with a
backlog still sends results, so it is not). A pong also proves the service has read
everything sent before its ping, so at most ``window`` bytes go out unconfirmed, and a ping
goes out early once half of that awaits confirmation: a fast sender (a file at ``--pace 0``,
a re-send) never queues so much ahead of a ping that a live service's pong comes too late,
and a service that stops reading stops the sender within a window.
"""

from __future__ import annotations

__all__ = ["Liveness"]


class Liveness:
    """Ping schedule, pong deadline and the unconfirmed-audio window; see the module docstring.

    With ``ping_interval`` 0 nothing is pinged, nothing is ever dead, every byte counts as
    read and the window never closes.
    """

    def __init__(self, ping_interval: float, ping_timeout: float, window_bytes: int) -> None:
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.window = window_bytes
        self.reset(0.0)

    def reset(self, now: float) -> None:
        self.last_ping = now
        self.ping_sent: float | None = None
        self.sent = 0  # bytes written on this session
        self.ping_bytes = 0  # written before the ping that is out
        self.acked = 0  # read by the service, as a pong proved
        self.last_message = now

    @property
    def pinging(self) -> bool:
        return self.ping_interval > 0

    @property
    def unacked(self) -> int:
        return self.sent - self.acked

    @property
    def window_open(self) -> bool:
        return not self.pinging or self.unacked < self.window

    @property
    def read_all(self) -> bool:
        """The service has read every byte written (a pong answered a ping sent after it)."""
        return not self.pinging or self.unacked == 0

    def wrote(self, nbytes: int) -> None:
        self.sent += nbytes

    def message(self, now: float) -> None:
        self.last_message = now

    def pong(self) -> None:
        self.ping_sent = None
        self.acked = self.ping_bytes

    def ping_due(self, now: float, *, soon: bool = False) -> bool:
        """A ping should go out now: it is time, half the window awaits confirmation, or
        (``soon``) anything does."""
        if not self.pinging or self.ping_sent is not None:
            return False
        return (
            now - self.last_ping >= self.ping_interval
            or self.unacked >= self.window // 2
            or (soon and self.unacked > 0)
        )

    def pinged(self, now: float) -> None:
        self.ping_sent = self.last_ping = now
        self.ping_bytes = self.sent

    def silent_for(self, now: float) -> float | None:
        """Seconds since a ping that got neither a pong nor any message, if past the timeout."""
        if self.ping_sent is None:
            return None
        waited = now - max(self.ping_sent, self.last_message)
        return now - self.ping_sent if waited > self.ping_timeout else None
