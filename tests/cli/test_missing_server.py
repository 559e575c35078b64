"""Without the server extra (``pip install .``, no ``[server]``): ``stream`` and ``serve``
fail at once with one line naming ``pip install 'nsaudio[server]'`` and exit 2, before any
server starts.

pocketsphinx is hidden from the child processes for real: a ``sitecustomize`` on their path
sets ``sys.modules["pocketsphinx"] = None``, which is what makes ``import`` (and
``importlib.util.find_spec``) find nothing, as on a machine where it was never installed.
A second case puts a broken ``pocketsphinx`` package first on the path (its import raises
ImportError, as a missing shared library does): found, but not importable, which only the
server's own process can tell.
"""

from __future__ import annotations

import sys
import time

import pytest

from nsaudio.errors import InputError, MissingExtraError

from ..conftest import assert_one_line_error, fixture_path, run_cli

SPEECH = str(fixture_path("speech_16000_mono_int16.wav"))
INSTALL = "pip install 'nsaudio[server]'"


@pytest.fixture
def hidden(tmp_path):
    """PYTHONPATH on which pocketsphinx cannot be imported."""
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['pocketsphinx'] = None\n")
    return {"PYTHONPATH": str(tmp_path)}


@pytest.fixture
def broken(tmp_path):
    """PYTHONPATH on which pocketsphinx is found but its import fails."""
    package = tmp_path / "pocketsphinx"
    package.mkdir()
    (package / "__init__.py").write_text(
        'raise ImportError("libpocketsphinx.so.5: cannot open shared object file")\n'
    )
    return {"PYTHONPATH": str(tmp_path)}


def timed(*args, env):
    t0 = time.monotonic()
    proc = run_cli(*args, env=env, timeout=60)
    return proc, time.monotonic() - t0


@pytest.mark.parametrize(
    "args",
    [
        ("stream", SPEECH),
        ("stream", "--local", SPEECH),
        ("stream", "--local", "--gate", "-o", "never.txt", SPEECH),
        ("languages",),
        ("serve", "--port", "0"),
    ],
    ids=["stream", "stream-local", "stream-outputs", "languages", "serve"],
)
def test_without_pocketsphinx_one_line_and_exit_2(args, hidden, tmp_path):
    proc, seconds = timed(*args, env=hidden)
    line = assert_one_line_error(proc, 2)
    assert INSTALL in line
    # Not a session retried for a minute, nor a server left serving: it ends at once (the
    # bound is generous for a loaded machine; it takes about 0.2 s here).
    assert seconds < 10, seconds
    assert "serving" not in proc.stderr.decode()
    assert not (tmp_path / "never.txt").exists()


def test_without_a_key_the_line_also_offers_the_service(hidden):
    proc, _ = timed("stream", SPEECH, env=hidden)
    assert "NS_API_KEY" in assert_one_line_error(proc, 2)


@pytest.mark.parametrize("args", [("stream", SPEECH), ("serve", "--port", "0")])
def test_a_broken_pocketsphinx_is_one_line_too(args, broken):
    proc, seconds = timed(*args, env=broken)
    line = assert_one_line_error(proc, 2)
    assert "cannot be imported (ImportError: libpocketsphinx.so.5" in line
    assert INSTALL in line
    assert seconds < 10, seconds


def test_the_service_needs_no_pocketsphinx(hidden):
    # With a base URL nothing local is wanted: the run goes on to contact it (nothing
    # listens there, so it fails with a network error, not the install hint).
    proc = run_cli(
        "stream", SPEECH, "--base-url", "http://127.0.0.1:9", "--connect-timeout", "1",
        env=hidden,
    )  # fmt: skip
    assert INSTALL not in proc.stderr.decode()
    assert proc.returncode == 1, proc.stderr.decode()


def test_python_api_raises_at_once(monkeypatch):
    from nsaudio.server import LocalServer, ServerProcess

    monkeypatch.setitem(sys.modules, "pocketsphinx", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'nsaudio\[server\]'"):
        LocalServer()
    with pytest.raises(MissingExtraError, match=r"pip install 'nsaudio\[server\]'"):
        ServerProcess().start()
    # The cheap recogniser needs no pocketsphinx.
    with ServerProcess(engine="cheap") as server:
        assert server.base_url.startswith("http://127.0.0.1:")


def test_server_process_raises_the_childs_reason(broken, monkeypatch):
    from nsaudio.server import ServerProcess

    monkeypatch.setenv("PYTHONPATH", broken["PYTHONPATH"])
    with pytest.raises(InputError, match="cannot be imported") as caught:
        ServerProcess().start()
    assert INSTALL in str(caught.value)
