from __future__ import annotations

import subprocess
import sys

import nsaudio.server


def test_importing_the_package_loads_no_server_dependency() -> None:
    code = (
        "import sys, nsaudio.server\n"
        "heavy = {'websockets', 'pocketsphinx', 'soxr'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_exported_name_resolves() -> None:
    for name in nsaudio.server.__all__:
        assert getattr(nsaudio.server, name) is not None, name


def test_no_test_only_hook_ships_as_api() -> None:
    import inspect

    import nsaudio.server.engines
    from nsaudio.server.app import LocalServer

    # The counting recogniser is the tests' (tests/server/counting_engine.py).
    assert "CountingEngine" not in nsaudio.server.__all__
    assert not hasattr(nsaudio.server.engines, "CountingEngine")
    # A fake clock goes into server.tokens; a tap on the audio is a subclass's received().
    parameters = inspect.signature(LocalServer).parameters
    assert "token_clock" not in parameters and "on_audio" not in parameters
