"""The local server in a child process, for ``nsaudio stream`` without a key.

Not a thread of the streaming process: pocketsphinx holds the GIL while it decodes (measured
here: 0.47 s without a break for 6.8 s of audio), which would stall live capture and
sending for as long. The child announces its URL on stdout when it listens, and exits when
its stdin closes, so it never outlives the parent, however the parent ends. A child that
cannot start says why on that same line (``error: <message>``) and exits: the parent raises
it as its own one-line error, with the child's exit status deciding the class (2: input or
installation, such as pocketsphinx missing; otherwise a service error).
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time

from ..errors import InputError, ServiceError
from ..extras import require_extra

__all__ = ["CHILD_ERROR", "ServerProcess"]

#: How the child's first line starts when it could not start (the rest is the message).
CHILD_ERROR = "error: "


class ServerProcess:
    """``nsaudio serve --child`` on a free loopback port; ``base_url`` once started.

    ``start_timeout``: seconds to wait for it to listen.

    ``engine`` names the recogniser (``"pocketsphinx"``, or ``"cheap"`` for load tests: see
    ``nsaudio serve --help``) and ``max_sessions`` caps the sessions open at once (None: the
    serve command's default for that engine).
    """

    def __init__(
        self,
        *,
        start_timeout: float = 30.0,
        engine: str = "pocketsphinx",
        max_sessions: int | None = None,
    ) -> None:
        from .engines import ENGINES

        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
        if max_sessions is not None and max_sessions < 1:
            raise ValueError(f"max_sessions must be at least 1, got {max_sessions}")
        self.start_timeout = start_timeout
        self.engine = engine
        self.max_sessions = max_sessions
        self.base_url = ""
        self._proc: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"ServerProcess({self.base_url or 'not started'!r})"

    def start(self) -> ServerProcess:
        """Start the child and wait until it listens (``start_timeout``); raises
        :class:`~nsaudio.errors.MissingExtraError` at once when pocketsphinx is not
        installed, and the child's own reason when it could not start."""
        if self.engine == "pocketsphinx":
            require_extra("pocketsphinx", "server", "the built-in offline server")
        cmd = [sys.executable, "-m", "nsaudio", "-q", "serve", "--port", "0", "--child"]
        cmd += ["--engine", self.engine]
        if self.max_sessions is not None:
            cmd += ["--max-sessions", str(self.max_sessions)]
        # A session of its own: Ctrl-C at the terminal is for the parent, which then drains
        # the last results from this server before closing its stdin.
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True
        )
        assert self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        deadline = time.monotonic() + self.start_timeout
        line = b""
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(0.0, remaining))
            chunk = os.read(fd, 256) if ready else b""
            if not chunk:
                self.stop()
                raise ServiceError("the built-in local server did not start", retryable=False)
            line += chunk
        text = line.decode(errors="replace").strip()
        if text.startswith(CHILD_ERROR):
            status = self._exit_status()
            self.stop()
            message = text[len(CHILD_ERROR) :]
            if status == 2:
                raise InputError(message)
            raise ServiceError(
                f"the built-in local server did not start: {message}", retryable=False
            )
        self.base_url = text
        return self

    def _exit_status(self) -> int | None:
        """The child's exit status once it has ended (it does right after an error line)."""
        assert self._proc is not None
        try:
            return self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        """Stop the child (it drains its sessions) and wait for it; safe to call again."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()  # the child's signal to stop
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
