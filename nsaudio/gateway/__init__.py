"""``nsaudio gateway``: phone calls in, one speech session per track, transcripts out.

Modules, from the wire inwards:

- :mod:`.twilio`, :mod:`.audiosocket`, :mod:`.signature`: the platforms' protocols and
  Twilio's request signature, pure (no sockets);
- :mod:`.jitter`: a track's packets put in media-time order, gaps left as gaps (pure);
- :mod:`.twilio_listener`, :mod:`.audiosocket_listener`: the listeners;
- :mod:`.call`, :mod:`.track`: a call's sessions (one per track), its transcript file,
  webhook events and verdict;
- :mod:`.webhook`, :mod:`.ops`, :mod:`.metrics`: outputs and operations;
- :mod:`.server`: :class:`Gateway`, which ties them together on one asyncio loop;
  :mod:`.workers`: N of them on one port.
"""

from __future__ import annotations

from .call import CallEnd
from .server import Gateway, GatewayConfig
from .track import ServiceTarget, TrackSettings

__all__ = ["CallEnd", "Gateway", "GatewayConfig", "ServiceTarget", "TrackSettings"]
