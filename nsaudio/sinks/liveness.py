"""What the open session has provably read, whether it is alive, and how much may go out.

Pure, one session at a time (``reset`` when a new one opens). A ping follows every piece of
audio written (pings are a few bytes, and a WebSocket server answers one as soon as it
reads it, before it hands the audio before it to its recogniser), so the pong of the ping
that followed byte ``n`` proves the service has read everything up to ``n``: ``acked``.
That is the only fact a client has about what a service heard, and the session machine
counts a full result only up to it (a result cannot be about audio the service never
read); because each ping's pong comes before any result about the audio before it, an
honest service's results are confirmed by the time they arrive.

With nothing to send, a ping goes out every ``ping_interval`` to keep the connection
alive. The oldest unanswered ping older than ``ping_timeout``, with no message since, and
the connection is dead: a half-open connection is noticed within the sum; a service busy
with a backlog still sends results, so it is not. At most ``window`` bytes go out
unconfirmed: a fast sender (a file at ``--pace 0``, a re-send) never queues so much ahead of
the service that its pongs come too late, and a service that stops reading stops the sender
within a window.
"""

from __future__ import annotations

import collections

__all__ = ["Liveness"]


class Liveness:
    """Pings with their byte marks, pongs, the pong deadline and the window; see the module
    docstring. With ``ping_interval`` 0 nothing is pinged, nothing is ever dead, every byte
    counts as read and the window never closes."""

    def __init__(self, ping_interval: float, ping_timeout: float, window_bytes: int) -> None:
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.window = window_bytes
        self.reset(0.0)

    def reset(self, now: float) -> None:
        self.last_ping = now
        self.pending: collections.deque[tuple[float, int]] = collections.deque()  # (sent, mark)
        self.sent = 0  # bytes written on this session
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

    def pong(self, mark: int) -> bool:
        """The ping sent after byte ``mark`` was answered; True if that proved more read."""
        pending = self.pending
        while pending and pending[0][1] <= mark:
            pending.popleft()
        if mark <= self.acked:
            return False
        self.acked = mark
        return True

    def ping_due(self, now: float) -> bool:
        """A ping should go out now: audio was written since the last one, or it is time."""
        if not self.pinging:
            return False
        if self.pending and self.pending[-1][1] >= self.sent:
            return False  # one is out for everything written
        return self.sent > self.acked or now - self.last_ping >= self.ping_interval

    def pinged(self, now: float) -> int:
        """A ping goes out now; its mark (the bytes written before it)."""
        self.last_ping = now
        self.pending.append((now, self.sent))
        return self.sent

    def silent_for(self, now: float) -> float | None:
        """Seconds since the oldest unanswered ping, if past the timeout with no message."""
        if not self.pending:
            return None
        oldest = self.pending[0][0]
        waited = now - max(oldest, self.last_message)
        return now - oldest if waited > self.ping_timeout else None
