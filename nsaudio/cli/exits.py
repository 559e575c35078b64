"""The exit statuses of the ``nsaudio`` command, and which one an error gets.

The library's errors say what went wrong; what a shell sees is the command line's business,
decided here from the error's class alone:

====  ===========================================================================
0     success (every result delivered, the results for all the speech sent arrived)
1     failure at run time: the service or network after retries, audio untranscribed
2     usage or input: a bad argument, unreadable audio, an unknown device, a missing extra
3     authentication: the API key or a token was rejected
130   interrupted (Ctrl-C or SIGTERM), after a clean shutdown
141   the reader of the output went away (``| head``), as a writer killed by SIGPIPE
====  ===========================================================================
"""

from __future__ import annotations

from ..errors import AuthenticationError, InputError, NsAudioError, ServiceError

__all__ = [
    "EXIT_AUTH",
    "EXIT_BROKEN_PIPE",
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "exit_status",
]

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a writer killed by it


def exit_status(err: BaseException) -> int:
    """The status for a run that ended with ``err``: 3 for a rejected key or token, 2 for
    bad input (:class:`~nsaudio.errors.InputError` and its kinds), else 1. A service error
    that another caused (``__cause__``: speech left untranscribed because a token was
    refused) takes its cause's status."""
    if isinstance(err, AuthenticationError):
        return EXIT_AUTH
    if isinstance(err, InputError):
        return EXIT_USAGE
    if isinstance(err, ServiceError) and isinstance(err.__cause__, NsAudioError):
        return exit_status(err.__cause__)
    return EXIT_FAILURE
