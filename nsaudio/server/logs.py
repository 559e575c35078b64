"""The local server's loggers, and the filter that keeps secrets out of their records.

Tokens travel in the stream URL path and API keys in the Authorization header; websockets logs
both at debug level (request lines and headers). The server gives websockets its own logger,
``nsaudio.server.websockets``, and every record of that logger and of ``nsaudio.server`` passes
through :class:`RedactSecrets` before any handler sees it.

``nsaudio.server.sessions`` (``session_log``) carries one line per session as it opens (or is
refused) and one as it closes, with its seconds of audio and results: ``nsaudio serve`` shows
these at its default verbosity, the rest of the server's info lines only with ``-v``.
"""

from __future__ import annotations

import logging

from .params import redact_path

__all__ = ["RedactSecrets", "log", "session_log", "ws_log"]

log = logging.getLogger("nsaudio.server")
ws_log = logging.getLogger("nsaudio.server.websockets")
session_log = logging.getLogger("nsaudio.server.sessions")


class RedactSecrets(logging.Filter):
    """Rewrites a record so that no stream token or Authorization value can be printed."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to the handler to complain
            return True
        redacted = redact_path(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_path(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_path(record.stack_info)
        return True


# Filters act only on records logged to the logger they are attached to, hence both.
for _logger in (log, ws_log, session_log):
    if not any(isinstance(f, RedactSecrets) for f in _logger.filters):
        _logger.addFilter(RedactSecrets())
