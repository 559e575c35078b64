"""The local, offline, NeuralSpace-compatible server: REST and WebSocket on one loopback port.

``LocalServer`` runs a ``websockets`` asyncio server, either in a background daemon thread
(``start()``/``stop()``, or as a context manager: what ``nsaudio stream`` embeds and what tests
use) or in the calling thread (``serve_forever()``, for ``nsaudio serve``).

Endpoints (REST calls need ``Authorization: <API key>``):

* ``GET /api/v2/languages?type=stream`` -> ``{"data": {"languages": ["en"]}}``
* ``GET /api/v2/token?duration=S`` -> ``{"data": {"token": "..."}}``, valid S seconds (default 3600)
* WebSocket ``/voice/stream/live/transcribe/{language}/{token}/{session_id}?max_chunk_size=
  &vad_threshold=&disable_partial=&format=``, other query keys (the service's ``min_chunk_size``)
  accepted and not used: an unknown or expired token is refused with HTTP 401; any other
  invalid parameter is accepted and then closed with 1008 and a reason;
  messages over 1 MiB are closed with 1009 (by websockets); sessions beyond ``max_sessions``
  are closed with 1013. Errors from REST calls are ``{"error": {"status": N, "message": "..."}}``.

Each session's audio is transcribed by a :class:`~nsaudio.server.transcriber.Transcriber` in a
worker thread (on the event loop itself for an engine marked ``inline``, such as the cheap
placeholder engine for load tests); the handler awaits it before reading the next message,
so a client sending faster than the engine decodes is slowed by TCP backpressure instead of
filling a queue.

Secrets: tokens travel in the URL path, so every log record of this server, including those of
websockets (which logs to ``nsaudio.server.websockets``), passes through :class:`RedactSecrets`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from ..detectors.base import DETECTORS
from ..errors import ServerError
from ..extras import require_extra
from ..worker import Worker
from .engines import ENGINE_RATE, EngineFactory, EnginePool, PocketSphinxEngine, PoolExhausted
from .logs import RedactSecrets, log, session_log, ws_log
from .params import (
    SessionParams,
    StreamParamError,
    parse_stream_params,
    redact_path,
    split_stream_path,
)
from .rest import RestApi
from .tokens import TokenStore
from .transcriber import Transcriber
from .vad import VadConfig

__all__ = ["LocalServer", "RedactSecrets", "ServerStartError"]

MAX_MESSAGE_BYTES = 2**20
CLOSE_TRY_AGAIN_LATER = 1013
CLOSE_POLICY_VIOLATION = 1008
CLOSE_INTERNAL_ERROR = 1011


class ServerStartError(ServerError, OSError):
    """The server could not start listening (for example, the port is taken)."""


def _log_prewarm_failure(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("cannot create a recogniser", exc_info=future.exception())


def _peer(ws: ServerConnection) -> str:
    """``host:port`` of a session's client, for the server's log."""
    try:
        host, port = ws.remote_address[:2]
    except (TypeError, ValueError):  # a Unix socket, or already gone
        return "?"
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


class LocalServer:
    """An offline server speaking the NeuralSpace VoiceAI streaming protocol on loopback.

    ``api_key``: if given, REST calls must present exactly this key; otherwise any non-empty
    key is accepted. ``engine_factory`` builds a recognition engine (default
    :class:`~nsaudio.server.engines.PocketSphinxEngine`); at most ``max_sessions`` sessions
    are open at once (default 16: pocketsphinx decodes about 2.5 real-time streams per core),
    and as many engines exist, reused across sessions. ``host`` and ``port`` (0: a free
    one) say where to listen; ``prewarm``: build one recogniser as soon as it listens, so
    the first session does not wait for it (pocketsphinx takes about 0.4 s). ``vad`` names
    the speech detector each session's segmenter uses (``"energy"``, or ``"silero"``: needs
    the ``vad`` extra; each session scores its own frames, not batched).

    ``tokens`` is the :class:`~nsaudio.server.tokens.TokenStore` that issues and checks the
    stream tokens (replace it before ``start()`` to give it another clock). A subclass may
    override :meth:`received` to see every audio message a session receives.

    After ``start()``, ``port`` is the bound port and ``base_url`` is ``http://host:port``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        engine_factory: EngineFactory | None = None,
        max_sessions: int = 16,
        *,
        prewarm: bool = True,
        vad: str = "energy",
    ) -> None:
        if vad not in DETECTORS:
            raise ValueError(f"vad must be one of {', '.join(DETECTORS)}, got {vad!r}")
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {port}")
        if max_sessions < 1:
            raise ValueError(f"max_sessions must be at least 1, got {max_sessions}")
        if api_key is not None and not api_key.strip():
            raise ValueError("api_key must not be empty; pass None to accept any key")
        if engine_factory is None:  # not a traceback per session later: say it now
            require_extra("pocketsphinx", "server", "LocalServer's default recogniser")
        self.host = host
        self.max_sessions = max_sessions
        self.tokens = TokenStore()
        self._requested_port = port
        self._port: int | None = None
        self._api_key = api_key
        self._pool = EnginePool(engine_factory or PocketSphinxEngine, max_sessions)
        self._prewarm = prewarm
        self.vad = vad
        self._active = 0
        self._thread: threading.Thread | None = None
        self._background = False
        self._stop_requested = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._stopped_by: int | None = None
        self._executor: ThreadPoolExecutor | None = None

    def __repr__(self) -> str:
        where = self.base_url if self._port is not None else "not started"
        return f"LocalServer({where}, sessions={self._active}/{self.max_sessions})"

    def received(self, session_id: str, pcm: bytes) -> None:
        """Called on the server's loop with every audio message a session receives, as it
        arrives (nothing by default); keep it quick."""

    @property
    def port(self) -> int:
        """The port it listens on (after ``start()``)."""
        if self._port is None:
            raise RuntimeError("the server is not listening; call start() first")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://host:port``: what a client's ``--base-url`` is (after ``start()``)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def active_sessions(self) -> int:
        """Sessions open now."""
        return self._active

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> LocalServer:
        """Serve in a background daemon thread; returns once listening."""
        if self._thread is not None:
            raise RuntimeError("the server is already running")
        ready = threading.Event()
        listening = threading.Event()  # set once it listens: a later failure is only logged

        def failed(err: BaseException) -> None:
            if listening.is_set():
                log.error("local server failed", exc_info=err)
            ready.set()  # start() raises it

        def run() -> None:
            asyncio.run(self._main(ready, install_signals=False))

        worker = Worker(run, "nsaudio-server", on_error=failed)
        self._thread = worker.thread
        self._background = True
        self._stop_requested = False
        worker.start()
        ready.wait()
        if worker.error is not None and not listening.is_set():
            worker.join()
            self._thread = None
            worker.raise_error()
        listening.set()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Close every session (code 1001) and stop listening; safe to call twice, and from
        any thread. After ``start()`` it waits for the server thread to end; while another
        thread is in ``serve_forever()`` it only asks it to return."""
        thread, loop, event = self._thread, self._loop, self._stop_event
        if thread is None:
            return
        self._stop_requested = True  # in case the loop is not running yet
        if loop is not None and event is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(event.set)
        if not self._background or thread is threading.current_thread():
            return
        thread.join(timeout)
        if thread.is_alive():
            log.warning("local server did not stop within %.1f s", timeout)
        self._thread = None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def serve_forever(self, on_ready: Callable[[LocalServer], None] | None = None) -> int | None:
        """Serve in the calling thread until SIGINT or SIGTERM (or ``stop()`` from another thread).

        ``on_ready`` is called once listening. Returns the signal number that stopped the
        server, or None. Raises :class:`ServerStartError` if it cannot listen.
        """
        if self._thread is not None:
            raise RuntimeError("the server is already running")
        ready = threading.Event()
        self._thread = threading.current_thread()
        self._background = False
        self._stop_requested = False
        try:
            asyncio.run(self._main(ready, install_signals=True, on_ready=on_ready))
        finally:
            self._thread = None
        return self._stopped_by

    async def _main(
        self,
        ready: threading.Event,
        *,
        install_signals: bool,
        on_ready: Callable[[LocalServer], None] | None = None,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        if self._stop_requested:
            self._stop_event.set()
        self._stopped_by = None
        self._executor = ThreadPoolExecutor(self.max_sessions, thread_name_prefix="nsaudio-decode")
        try:
            try:
                server = await serve(
                    self._handle_stream,
                    self.host,
                    self._requested_port,
                    process_request=RestApi(self.tokens, self._api_key),
                    server_header="nsaudio-local",
                    max_size=MAX_MESSAGE_BYTES,
                    # Frames of up to 1 MiB each bound memory per session (32 MiB); enough of
                    # them that reading (and so answering pings) goes on while a decode is
                    # busy: a client keeps up to 2 s unconfirmed, 20 frames of 100 ms.
                    max_queue=32,
                    ping_interval=None,  # loopback: a dead peer shows as a TCP close
                    close_timeout=2,
                    logger=ws_log,
                )
            except OSError as exc:
                raise ServerStartError(
                    exc.errno,
                    f"cannot listen on {self.host}:{self._requested_port}: {exc.strerror}",
                ) from exc
            self._port = server.sockets[0].getsockname()[1]
            if install_signals:
                self._install_signal_handlers(self._loop, self._stop_event)
            log.info("local server listening on %s", self.base_url)
            ready.set()
            if on_ready is not None:
                on_ready(self)
            if self._prewarm:
                warming = self._loop.run_in_executor(self._executor, self._pool.prewarm, 1)
                warming.add_done_callback(_log_prewarm_failure)
            await self._stop_event.wait()
            server.close()
            await server.wait_closed()
            log.info("local server stopped")
        finally:
            self._executor.shutdown(wait=True)
            self._loop = None

    def _install_signal_handlers(
        self, loop: asyncio.AbstractEventLoop, event: asyncio.Event
    ) -> None:
        def on_signal(signum: int) -> None:
            log.info("received %s, stopping", signal.Signals(signum).name)
            self._stopped_by = signum
            event.set()

        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(signum, on_signal, signum)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
                log.debug("cannot handle %s here", signal.Signals(signum).name)

    # -- WebSocket sessions ------------------------------------------------------------------

    async def _handle_stream(self, ws: ServerConnection) -> None:
        if ws.request is None:  # cannot happen once the handshake succeeded
            return
        shown = redact_path(ws.request.path)
        path = split_stream_path(ws.request.path)  # valid: _process_request checked it
        try:
            params = parse_stream_params(path.language, path.session_id, path.query)
        except StreamParamError as exc:
            session_log.info("refused %s: %s", shown, exc.reason)
            await ws.close(CLOSE_POLICY_VIOLATION, exc.reason)
            return
        if self._active >= self.max_sessions:
            session_log.warning("refused %s: %d sessions already open", shown, self._active)
            await ws.close(
                CLOSE_TRY_AGAIN_LATER,
                f"try again later: this server takes {self.max_sessions} sessions at once",
            )
            return
        self._active += 1
        try:
            await self._run_session(ws, params, shown)
        finally:
            self._active -= 1

    async def _run_session(self, ws: ServerConnection, params: SessionParams, shown: str) -> None:
        loop = asyncio.get_running_loop()
        executor = self._executor
        try:
            engine = await loop.run_in_executor(executor, self._pool.acquire)
        except PoolExhausted:
            await ws.close(CLOSE_TRY_AGAIN_LATER, "try again later: no recogniser free")
            return
        except Exception:
            log.error("cannot create a recogniser", exc_info=True)
            await ws.close(CLOSE_INTERNAL_ERROR, "recogniser unavailable")
            return
        log.debug("session %s path: %s", params.session_id, shown)
        session_log.info(
            "session %s open from %s: %s %s max_chunk_size=%d vad_threshold=%g "
            "disable_partial=%s%s",
            params.session_id,
            _peer(ws),
            params.language,
            params.format,
            params.max_chunk_size,
            params.vad_threshold,
            params.disable_partial,
            f" (not used here: {', '.join(map(repr, params.ignored[:8]))})"
            if params.ignored
            else "",
        )
        vad_config = VadConfig(threshold=params.vad_threshold, rate=ENGINE_RATE, detector=self.vad)
        transcriber = Transcriber(params, engine, vad_config=vad_config)
        # A cheap engine is fed here, on the loop, 250 ms of audio at a time: what it costs
        # is the VAD and, for pcm_8k, the upsampling, mostly per call (measured for pcm_8k:
        # 0.9-1.5 ms of CPU per second of audio fed 100 ms at a time, 0.4-0.5 fed 250 ms at a
        # time), which a worker thread's hand-off would only add to. Results come up to
        # 250 ms later (the last utterance needs 0.85 s of trailing silence, not 0.6); full
        # results do not depend on the cuts.
        batch = params.sample_rate // 2 if getattr(engine, "inline", False) else 0
        pending = bytearray()
        healthy = True
        try:
            async for message in ws:
                if isinstance(message, str):
                    log.debug("session %s: ignoring a text message", params.session_id)
                    continue
                self.received(params.session_id, message)
                if batch:
                    pending += message
                    if len(pending) < batch:
                        continue
                    results = transcriber.feed(bytes(pending))
                    pending.clear()
                else:
                    results = await loop.run_in_executor(executor, transcriber.feed, message)
                for result in results:
                    result["send_time"] = time.time()
                    await ws.send(json.dumps(result))
        except ConnectionClosed:
            pass
        except Exception:
            healthy = False
            log.error("session %s failed", params.session_id, exc_info=True)
            await ws.close(CLOSE_INTERNAL_ERROR, "internal error in the local server")
        finally:
            try:
                await loop.run_in_executor(executor, transcriber.close)
            except Exception:
                healthy = False
                log.error(
                    "session %s: recogniser failed to close", params.session_id, exc_info=True
                )
            if healthy:
                self._pool.release(engine)
            else:
                self._pool.discard(engine)
        seconds = transcriber.position / ENGINE_RATE
        session_log.info(
            "session %s closed (code %s): %.2f s of audio, %d results",
            params.session_id,
            ws.close_code,
            seconds,
            transcriber.results_made,
        )
