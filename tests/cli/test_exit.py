"""The command's exit: the interpreter's teardown skipped, nothing else."""

from __future__ import annotations

import subprocess
import sys


def exit_with(body: str, status: int = 3) -> subprocess.CompletedProcess:
    code = f"import atexit, sys, threading, time\nfrom nsaudio.cli.main import exit_now\n{body}\nexit_now({status})\n"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_status_buffered_output_and_atexit_hooks_survive(tmp_path):
    mark = tmp_path / "hook"
    proc = exit_with(
        f"atexit.register(lambda: open({str(mark)!r}, 'w').write('ran'))\n"
        "sys.stdout.write('unflushed out')\nsys.stderr.write('unflushed err')"
    )
    assert proc.returncode == 3
    assert (proc.stdout, proc.stderr) == ("unflushed out", "unflushed err")
    assert mark.read_text() == "ran"


def test_a_thread_still_running_is_waited_for(tmp_path):
    mark = tmp_path / "thread"
    proc = exit_with(
        "def late():\n"
        "    time.sleep(0.3)\n"
        f"    open({str(mark)!r}, 'w').write('done')\n"
        "threading.Thread(target=late).start()",
        status=0,
    )
    assert proc.returncode == 0
    assert mark.read_text() == "done"


def test_an_unfinished_output_is_still_removed(tmp_path):
    target = tmp_path / "out.raw"
    proc = exit_with(
        "from nsaudio.sinks.files import PendingFile\n"
        f"pending = PendingFile({str(target)!r})\n"
        "open(pending.name, 'wb').write(b'half')"
    )
    assert proc.returncode == 3
    assert list(tmp_path.iterdir()) == []


def test_the_sessions_loop_is_stopped_first_and_the_teardown_still_skipped():
    # A loop left running under the teardown is how `stream` died of SIGSEGV on uvloop.
    proc = exit_with(
        "from nsaudio.sinks.loop import SocketLoop\n"
        "sockets = SocketLoop.get()\n"
        "sockets.call(sockets.every_tick, 1, lambda: None)\n"
        "atexit.register(lambda: print(threading.active_count(), sockets.loop.is_closed()))\n"
        "sys.modules['gc'].callbacks.append(lambda *_: print('teardown'))  # the full exit's"
    )
    assert proc.returncode == 3
    assert proc.stdout == "1 True\n", proc.stderr
