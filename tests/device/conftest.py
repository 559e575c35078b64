"""A real capture path for tests: PulseAudio, a null sink of this session's own, paplay.

The ``pulse`` fixture (session scope) runs ``scripts/pulse.sh`` (a private daemon of
nsaudio's own, ALSA routed to it; the one ``PULSE_SERVER`` names when scripts/test.sh or an
``eval "$(bash scripts/pulse.sh)"`` started it, and then stopped at the end of the session
only if this session started it), then loads a null sink named for this test session and points PulseAudio's default
source *for this process and its children* at that sink's monitor (``PULSE_SOURCE``), so
``mic:``, ``mic:pulse`` and ``mic:default`` all record exactly what ``pulse.play()`` plays,
and test sessions running at the same time on one machine cannot hear each other.

It skips, saying why, where PulseAudio, paplay, PortAudio or sounddevice is missing; with
``NSAUDIO_REQUIRE_DEVICE=1`` (CI that has them) a missing piece fails instead.

Use it in tests marked ``@pytest.mark.device``::

    def test_x(pulse):
        with pulse.playing(FIXTURES / "speech_16000_mono_int16.wav"):
            ...capture...
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from ..conftest import ROOT

PULSE_SH = ROOT / "scripts" / "pulse.sh"
#: The silent sink pulse.sh makes; this session's keeper loopback plays into it.
DRAIN_SINK = "nsaudio_drain"


@dataclass
class Pulse:
    """This session's null sink; ``play`` puts audio into it, ``mic:`` records its monitor."""

    sink: str
    env: dict[str, str]
    modules: list[str] = field(default_factory=list)

    @property
    def source(self) -> str:
        return f"{self.sink}.monitor"

    def play(self, path: str | os.PathLike[str]) -> subprocess.Popen:
        """Start ``paplay`` of ``path`` into the sink, in the background.

        Its stderr is a pipe: finish with ``proc.communicate()`` (which closes it).
        """
        return subprocess.Popen(
            ["paplay", f"--device={self.sink}", os.fspath(path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    @contextlib.contextmanager
    def playing(self, path: str | os.PathLike[str], *, loop: bool = True) -> Iterator[None]:
        """Play ``path`` (over and over with ``loop``) until the block ends."""
        stopped = False
        lock = threading.Lock()  # no new paplay may start after the block ends
        current: list[subprocess.Popen] = []

        def run() -> None:
            while True:
                with lock:
                    if stopped:
                        return
                    proc = self.play(path)
                    current[:] = [proc]
                proc.communicate()
                if not loop:
                    return

        thread = threading.Thread(target=run, name="paplay-loop", daemon=True)
        thread.start()
        try:
            yield
        finally:
            with lock:
                stopped = True
                for proc in current:
                    if proc.poll() is None:
                        proc.terminate()
            thread.join(10)


#: The session's Pulse, for the module-level ``play()``.
_SESSION: Pulse | None = None


def play(path: str | os.PathLike[str]) -> subprocess.Popen:
    """``paplay`` ``path`` into the session's null sink in the background (``pulse`` must be
    active: request the fixture in the test)."""
    if _SESSION is None:
        raise RuntimeError("play() needs the pulse fixture: add `pulse` to the test's arguments")
    return _SESSION.play(path)


def _unavailable_reason() -> str | None:
    for tool, package in (("pulseaudio", "pulseaudio"), ("pactl", "pulseaudio-utils"), ("paplay", "pulseaudio-utils")):  # fmt: skip
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt install {package})"
    try:
        import sounddevice  # noqa: F401
    except OSError:
        return "PortAudio is not installed (apt install libportaudio2)"
    except ImportError:
        return "sounddevice is not installed (pip install 'nsaudio[mic]')"
    except Exception as err:  # PortAudio failed to initialise
        return f"PortAudio does not start: {err}"
    return None


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("NSAUDIO_REQUIRE_DEVICE") == "1":
        pytest.fail(f"device tests required (NSAUDIO_REQUIRE_DEVICE=1), but {reason}")
    pytest.skip(reason)


def _pactl(*args: str) -> str:
    return subprocess.run(
        ["pactl", *args], check=True, capture_output=True, text=True, timeout=20
    ).stdout.strip()


def _start_daemon() -> tuple[dict[str, str], bool]:
    """Run pulse.sh: the ``export K=V`` lines it prints, as a dict, and whether it started
    the daemon (then this session stops it)."""
    proc = subprocess.run(
        ["bash", str(PULSE_SH)], capture_output=True, text=True, timeout=60, check=False
    )
    if proc.returncode != 0:
        _skip_or_fail(f"scripts/pulse.sh failed: {proc.stderr.strip()}")
    env = {}
    for line in proc.stdout.splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            key, value = words[1].split("=", 1)
            env[key] = value
    return env, "# started" in proc.stdout.splitlines()


def _stop_daemon(directory: str) -> None:
    subprocess.run(
        ["bash", str(PULSE_SH), "--kill", directory], capture_output=True, timeout=60, check=False
    )


@pytest.fixture(scope="session")
def pulse() -> Iterator[Pulse]:
    global _SESSION
    # PortAudio reads the ALSA configuration once, when sounddevice is first imported: the
    # daemon and the environment must be in place before the import in the check below.
    for tool in ("pulseaudio", "pactl"):
        if shutil.which(tool) is None:
            _skip_or_fail(f"{tool} is not installed (apt install pulseaudio pulseaudio-utils)")
    saved = dict(os.environ)
    env, started = _start_daemon()
    sink = f"nsaudio_test_{os.getpid()}"
    env.update(PULSE_SOURCE=f"{sink}.monitor", PULSE_SINK=sink)
    os.environ.update(env)
    state = Pulse(sink=sink, env=env)
    try:
        state.modules.append(
            _pactl(
                "load-module",
                "module-null-sink",
                f"sink_name={sink}",
                f"sink_properties=device.description={sink}",
            )
        )
        # Keeps the sink's clock ticking in small blocks, as pulse.sh does for its own sink:
        # otherwise each recording waits up to 2 s for its first audio.
        state.modules.append(
            _pactl(
                "load-module",
                "module-loopback",
                f"source={sink}.monitor",
                f"sink={DRAIN_SINK}",
                "latency_msec=20",
                "source_dont_move=true",
                "sink_dont_move=true",
            )
        )
        reason = _unavailable_reason()
        if reason:
            _skip_or_fail(reason)
        from nsaudio.sources.mic import input_devices

        if not input_devices():
            _skip_or_fail("PortAudio sees no input device although PulseAudio runs")
        _SESSION = state
        yield state
    finally:
        _SESSION = None
        for module in reversed(state.modules):
            with contextlib.suppress(Exception):
                _pactl("unload-module", module)
        os.environ.clear()
        os.environ.update(saved)
        if started:
            _stop_daemon(env["NSAUDIO_PULSE_DIR"])


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
