"""The command line itself: help, version, and where usage errors point."""

from __future__ import annotations

import re

import pytest

from nsaudio import __version__

from ..conftest import ROOT, assert_one_line_error, run_cli


def test_nsaudio_alone_prints_help():
    proc = run_cli()
    assert proc.returncode == 0, proc.stderr.decode()
    out = proc.stdout.decode()
    assert out.startswith("usage: nsaudio")
    for name in ("stream", "convert", "serve", "languages", "devices", "check"):
        assert f"    {name} " in out, name
    assert proc.stderr == b""


def test_version_is_the_packages():
    proc = run_cli("--version")
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode() == f"nsaudio {__version__}\n"
    declared = re.search(r'^version = "(.+)"$', (ROOT / "pyproject.toml").read_text(), re.M)
    assert declared is not None and declared.group(1) == __version__


@pytest.mark.parametrize(
    "args, help_of",
    [
        (["stream", "x.wav", "--bogus"], "nsaudio stream"),
        (["stream", "--bogus", "x.wav", "--also"], "nsaudio stream"),
        (["convert", "a.wav", "b.raw", "--gate"], "nsaudio convert"),
        (["serve", "--bogus"], "nsaudio serve"),
        (["check", "--nope", "x.wav"], "nsaudio check"),
        (["bogus"], "nsaudio"),
    ],
)
def test_a_flag_typo_points_to_its_commands_help(args, help_of):
    line = assert_one_line_error(run_cli(*args))
    assert line.endswith(f"(see '{help_of} --help')"), line
