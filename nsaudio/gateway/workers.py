"""``--workers N``: N gateway processes on the same ports (SO_REUSEPORT), one supervisor.

The kernel spreads new connections over the N listening sockets, so the machine's cores all
carry calls. The supervisor serves ``/healthz``, ``/readyz`` and ``/metrics`` (the workers'
metrics added up through ``prometheus_client``'s multiprocess mode), forwards SIGTERM to
every worker and exits 0 only if every worker drained cleanly (exit 0). A worker that dies
is started again (after a second) unless a drain has begun.

Workers are ``nsaudio gateway`` itself with ``--worker``: the same options, the ops port and
the local server left to the supervisor, the API key passed in the environment (never on a
command line, where ``ps`` would show it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence

from .metrics import render_multiprocess
from .ops import OpsServer

__all__ = ["Supervisor"]

log = logging.getLogger("nsaudio.gateway")


class Supervisor:
    """Runs ``n`` workers with ``argv`` (the worker's command line after ``nsaudio``).

    Args:
        n: how many workers.
        argv: each worker's arguments (``gateway ... --worker``).
        env: extra environment for the workers (the API key, the service URL).
        ops: ``(host, port)`` for the supervisor's health and metrics, or None.
        drain_timeout: how long the workers may drain after SIGTERM (plus a margin for
            their exit).
    """

    def __init__(
        self,
        n: int,
        argv: Sequence[str],
        env: dict[str, str],
        ops: tuple[str, int] | None,
        drain_timeout: float,
    ) -> None:
        self.n = n
        self.argv = list(argv)
        self.env = env
        self.ops_address = ops
        self.drain_timeout = drain_timeout
        self.draining = False
        self.procs: list[asyncio.subprocess.Process | None] = [None] * n
        self._ready = [False] * n
        self._dir = tempfile.mkdtemp(prefix="nsaudio-gateway-metrics-")

    @property
    def ready(self) -> bool:
        return not self.draining and all(self._ready)

    async def run(self) -> int:
        """Until SIGTERM or SIGINT and the workers' drain; the exit status."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        ops = None
        if self.ops_address is not None:
            ops = OpsServer(*self.ops_address, ready=lambda: self.ready, metrics=self._metrics)
            await ops.start()
        watchers = [asyncio.ensure_future(self._keep(i)) for i in range(self.n)]
        try:
            await stop.wait()
            self.draining = True
            log.info("draining %d workers", self.n)
            for proc in self.procs:
                if proc is not None and proc.returncode is None:
                    proc.send_signal(signal.SIGTERM)
            done, _ = await asyncio.wait(watchers, timeout=self.drain_timeout + 10)
            statuses = [t.result() for t in done]
            for proc in self.procs:
                if proc is not None and proc.returncode is None:
                    proc.kill()
            ok = len(statuses) == self.n and all(s == 0 for s in statuses)
            return 0 if ok else 1
        finally:
            for t in watchers:
                t.cancel()
            if ops is not None:
                await ops.stop()
            shutil.rmtree(self._dir, ignore_errors=True)

    def _metrics(self) -> bytes:
        return render_multiprocess(self._dir)

    async def _keep(self, i: int) -> int:
        """Worker ``i``, started again if it dies before a drain; its last exit status."""
        env = {**os.environ, **self.env, "PROMETHEUS_MULTIPROC_DIR": self._dir}
        while True:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "nsaudio", *self.argv, env=env,
                stdout=subprocess.PIPE,
            )  # fmt: skip
            self.procs[i] = proc
            assert proc.stdout is not None
            line = await proc.stdout.readline()  # "ready" once it listens
            self._ready[i] = line.strip() == b"ready"
            with contextlib.suppress(Exception):
                await proc.stdout.read()
            status = await proc.wait()
            self._ready[i] = False
            if self.draining:
                return status
            log.warning("worker %d exited with status %d; starting it again", i, status)
            await asyncio.sleep(1.0)
