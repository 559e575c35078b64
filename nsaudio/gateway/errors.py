"""The one error a caller's bad input raises in the gateway."""

from __future__ import annotations

from ..errors import InputError

__all__ = ["CallProtocolError"]


class CallProtocolError(InputError):
    """A telephony platform (or whoever poses as one) broke its media protocol: malformed
    JSON, audio before the call started, invalid base64, a frame cut short... The call it
    concerns ends with one log line and its verdict; every other call goes on.

    The message names what was wrong, never the bytes themselves beyond a short excerpt.
    """
