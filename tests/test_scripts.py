"""``scripts/test.sh`` (and the ``scripts/pulse.sh`` it runs) on a machine that is someone's
own: a desktop's PulseAudio keeps its default sink and source and its daemons, nothing the
run started is left running, and no package is installed unasked.

The desktop is a real PulseAudio, started the usual way (``pulseaudio --start``, with the
system's ``default.pa``) for a user whose HOME and runtime directory are this test's own, so
that clients of that user find it by default, as on a desktop, while the machine's other
daemons are left alone.
"""

from __future__ import annotations

import glob
import os
import shutil
import stat
import subprocess
import sys
import time

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.device

#: What the run must not carry in from this session's environment.
PULSE_ENV = ("PULSE_SERVER", "PULSE_SINK", "PULSE_SOURCE", "NSAUDIO_PULSE_DIR", "ALSA_CONFIG_PATH")


def _require(*tools: str) -> None:
    for tool in tools:
        if shutil.which(tool) is None:
            if os.environ.get("NSAUDIO_REQUIRE_DEVICE") == "1":
                pytest.fail(f"{tool} is required here (NSAUDIO_REQUIRE_DEVICE=1)")
            pytest.skip(f"{tool} is not installed")


def pulseaudio_pids() -> set[int]:
    """Every PulseAudio daemon running on the machine (zombies are gone already)."""
    import psutil

    found = set()
    for proc in psutil.process_iter(["name", "status"]):
        if proc.info["name"] == "pulseaudio" and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.add(proc.pid)
    return found


def private_daemon_dirs() -> set[str]:
    root = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"nsaudio-pulse-{os.getuid()}")
    return set(glob.glob(os.path.join(root, "private.*")))


class Desktop:
    """A user's PulseAudio and the environment its clients run in."""

    def __init__(self, base) -> None:
        home, run = base / "home", base / "run"
        home.mkdir()
        run.mkdir(mode=0o700)
        self.env = {k: v for k, v in os.environ.items() if k not in PULSE_ENV}
        self.env.update(HOME=str(home), XDG_RUNTIME_DIR=str(run))
        self.log = base / "daemon.log"
        self.pid_file = run / "pulse" / "pid"

    def pactl(self, *args: str) -> str:
        return subprocess.run(
            ["pactl", *args], env=self.env, capture_output=True, text=True, check=True, timeout=20
        ).stdout

    def defaults(self) -> tuple[str, str]:
        info = dict(line.split(": ", 1) for line in self.pactl("info").splitlines() if ": " in line)
        return info["Default Sink"], info["Default Source"]


@pytest.fixture
def desktop(tmp_path):
    _require("pulseaudio", "pactl")
    d = Desktop(tmp_path)
    subprocess.run(
        ["pulseaudio", "--start", "--exit-idle-time=-1", f"--log-target=file:{d.log}"],
        env=d.env, check=True, timeout=30,
    )  # fmt: skip
    try:
        # A desktop's own choice of output and input, which a test run must not change.
        d.pactl("load-module", "module-null-sink", "sink_name=desk_speakers")
        d.pactl("set-default-sink", "desk_speakers")
        d.pactl("set-default-source", "desk_speakers.monitor")
        yield d
    finally:
        pid = int(d.pid_file.read_text()) if d.pid_file.exists() else None
        if pid is not None:
            os.kill(pid, 15)
            for _ in range(100):
                if pid not in pulseaudio_pids():
                    break
                time.sleep(0.05)


def run_test_sh(env: dict[str, str], *pytest_args: str, path_prefix: str | None = None):
    env = {
        **env,
        "NSAUDIO_NO_INSTALL": "1",  # this venv as it is: nothing installed into it
        "NSAUDIO_VENV": sys.prefix,
    }
    if path_prefix:
        env["PATH"] = f"{path_prefix}:{env['PATH']}"
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "test.sh"), "-p", "no:cacheprovider", *pytest_args],
        env=env, capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip


def test_a_desktops_pulseaudio_keeps_its_defaults_and_daemons(desktop):
    before = desktop.defaults()
    assert before == ("desk_speakers", "desk_speakers.monitor")
    daemons, privates = pulseaudio_pids(), private_daemon_dirs()
    # A real device test: it plays speech into the private daemon's sink and checks that
    # `nsaudio check mic:` hears it, so the run really used a daemon.
    proc = run_test_sh(
        desktop.env, "-q", "tests/device/test_cli.py::test_check_mic_is_audible_while_speech_plays"
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout, proc.stdout
    assert "started a private PulseAudio" in proc.stderr
    assert desktop.defaults() == before  # the desktop's sink and source
    assert pulseaudio_pids() == daemons  # the desktop's daemon runs on; nothing else does
    assert private_daemon_dirs() == privates  # the private daemon's files are gone too


def test_pulse_sh_reuses_the_daemon_its_caller_names_and_kill_stops_it(desktop):
    first = subprocess.run(
        ["bash", str(ROOT / "scripts" / "pulse.sh")],
        env=desktop.env, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    exports = dict(
        line.split(" ", 1)[1].split("=", 1)
        for line in first.stdout.splitlines()
        if line.startswith("export ")
    )
    assert "# started" in first.stdout.splitlines()
    directory = exports["NSAUDIO_PULSE_DIR"]
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    again = subprocess.run(
        ["bash", str(ROOT / "scripts" / "pulse.sh")],
        env={**desktop.env, **exports}, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert "# started" not in again.stdout and f"NSAUDIO_PULSE_DIR={directory}" in again.stdout
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "pulse.sh"), "--kill", directory],
        env=desktop.env, capture_output=True, check=True, timeout=60,
    )  # fmt: skip
    assert not os.path.exists(directory)
    assert desktop.defaults() == ("desk_speakers", "desk_speakers.monitor")


def test_missing_packages_are_named_not_installed_unasked(tmp_path):
    # A machine where none of the packages is installed, simulated on PATH: `dpkg -s` knows
    # none, and `apt-get` and `sudo` only write down that they were called.
    shims = tmp_path / "bin"
    shims.mkdir()
    calls = tmp_path / "calls"
    (shims / "dpkg").write_text("#!/bin/sh\nexit 1\n")
    for tool in ("apt-get", "sudo"):
        (shims / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> {calls}\nexit 1\n')
    for shim in shims.iterdir():
        shim.chmod(0o755)
    # This session may itself run under test.sh: none of its settings may reach the run.
    env = {k: v for k, v in os.environ.items() if k not in PULSE_ENV}
    for key in ("NSAUDIO_INSTALL_PACKAGES", "NSAUDIO_NO_INSTALL", "NSAUDIO_VENV"):
        env.pop(key, None)
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "test.sh")],
        env={**env, "PATH": f"{shims}:{env['PATH']}"}, capture_output=True, text=True,
        timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "missing Debian packages: sox libsox-fmt-all flite" in proc.stderr
    assert "apt-get install sox libsox-fmt-all flite" in proc.stderr
    assert not calls.exists()  # nothing was installed, nor tried
    # Asked (as CI asks): it installs.
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "test.sh")],
        env={**env, "PATH": f"{shims}:{env['PATH']}", "NSAUDIO_INSTALL_PACKAGES": "1"},
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode != 0  # the recording apt-get fails, which stops the script
    assert "apt-get update" in calls.read_text()
