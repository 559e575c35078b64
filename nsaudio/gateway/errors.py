"""The one error a caller's bad input raises in the gateway."""

from __future__ import annotations

import logging

from ..errors import InputError

__all__ = ["CallProtocolError", "internal_error"]

log = logging.getLogger("nsaudio.gateway")


class CallProtocolError(InputError):
    """A telephony platform (or whoever poses as one) broke its media protocol: malformed
    JSON, audio before the call started, invalid base64, a frame cut short... The call it
    concerns ends with one log line and its verdict; every other call goes on.

    The message names what was wrong, never the bytes themselves beyond a short excerpt.
    """


def internal_error(err: Exception) -> tuple[str, str]:
    """A listener's own failure on one call, as that call's end reason and detail (the
    call's end line says it; the traceback is logged at debug level)."""
    log.debug("a call's handler failed", exc_info=err)
    return "internal_error", f"internal error: {type(err).__name__}: {err}"
