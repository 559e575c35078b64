"""The repository stands alone: nothing tracked points outside it, and its docs' links hold."""

from __future__ import annotations

import re
import subprocess

import pytest

from .conftest import ROOT

# Spelled in pieces, so that this file does not cite them itself.
OUTSIDE = ["DESIGN" + ".md", "../" + "shared", "/" + "work/"]


def tracked() -> list[str]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=30
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [p for p in out.decode().split("\0") if p]


def test_nothing_tracked_cites_what_the_repository_does_not_hold():
    cited = []
    for path in tracked():
        try:
            text = (ROOT / path).read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue  # binary (fixtures, figures), or deleted in the work tree
        for needle in OUTSIDE:
            if needle in text:
                cited.append(f"{path}: {needle}")
    assert cited == []


def test_relative_links_in_the_docs_resolve():
    broken = []
    for path in [p for p in tracked() if p.endswith(".md")]:
        text = (ROOT / path).read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)#:\s]+)(?:#[^)]*)?\)", text):
            if not (ROOT / path).parent.joinpath(target).exists():
                broken.append(f"{path}: {target}")
    assert broken == []
    for page in ("architecture.md", "protocol.md", "facts.md"):
        assert f"]({page})" in (ROOT / "docs" / "README.md").read_text(), page
