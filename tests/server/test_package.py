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
