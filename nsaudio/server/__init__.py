"""The offline, NeuralSpace-compatible local server (``nsaudio serve``).

Modules, from the wire inwards:

- ``app``: :class:`LocalServer`, the websockets server, its lifecycle and the session handler;
- ``rest``: the REST calls and the token check before a stream's handshake;
- ``logs``: the server's loggers and the filter that redacts tokens and keys;
- ``params``: pure parsing and validation of stream paths and query strings;
- ``tokens``: the expiring token store;
- ``transcriber``: one session's bytes in, result messages out (segments, partials, chunk ids);
- ``vad``: the speech segmenter (its detector: ``nsaudio.detectors``, energy by default);
- ``engines``: recognisers (pocketsphinx, and a placeholder for load tests) and their pool;
- ``child``: the server in a child process, for ``nsaudio stream``.

Importing this package loads nothing: websockets and pocketsphinx (the ``server`` extra) are
imported with the modules that need them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS = {
    "LocalServer": ".app",
    "ServerStartError": ".app",
    "Transcriber": ".transcriber",
    "SessionParams": ".params",
    "Engine": ".engines",
    "EnginePool": ".engines",
    "PocketSphinxEngine": ".engines",
    "TokenStore": ".tokens",
    "ServerProcess": ".child",
}

__all__ = [
    "Engine",
    "EnginePool",
    "LocalServer",
    "PocketSphinxEngine",
    "ServerProcess",
    "ServerStartError",
    "SessionParams",
    "TokenStore",
    "Transcriber",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)


if TYPE_CHECKING:  # pragma: no cover
    from .app import LocalServer, ServerStartError
    from .child import ServerProcess
    from .engines import Engine, EnginePool, PocketSphinxEngine
    from .params import SessionParams
    from .tokens import TokenStore
    from .transcriber import Transcriber
