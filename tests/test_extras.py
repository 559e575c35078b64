"""Optional parts found (or not) before anything starts, with the pip command that brings them."""

from __future__ import annotations

import sys

import pytest

from nsaudio.errors import InputError, MissingExtraError
from nsaudio.extras import find_extra, require_extra


def test_an_installed_module_is_found_without_importing_it(monkeypatch):
    monkeypatch.delitem(sys.modules, "wave", raising=False)
    assert find_extra("wave")
    assert "wave" not in sys.modules
    require_extra("wave", "x", "a test")


def test_a_missing_module_names_the_extra_that_brings_it():
    assert not find_extra("nsaudio_no_such_module")
    assert not find_extra("nsaudio_no_such_package.sub")
    with pytest.raises(MissingExtraError) as caught:
        require_extra("nsaudio_no_such_module", "server", "the built-in offline server")
    assert isinstance(caught.value, InputError)  # exit status 2
    assert str(caught.value) == (
        "the built-in offline server needs nsaudio_no_such_module, which is not installed: "
        "pip install 'nsaudio[server]'"
    )


def test_a_blocked_module_counts_as_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "pocketsphinx", None)  # what `import` then refuses
    with pytest.raises(MissingExtraError, match=r"pip install 'nsaudio\[server\]'"):
        require_extra("pocketsphinx", "server", "x")


def test_load_reports_a_module_that_is_installed_but_broken(tmp_path, monkeypatch):
    package = tmp_path / "nsaudio_broken_extra"
    package.mkdir()
    (package / "__init__.py").write_text('raise ImportError("libfoo.so: cannot open")\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    require_extra("nsaudio_broken_extra", "server", "x")  # found: not imported
    with pytest.raises(MissingExtraError) as caught:
        require_extra("nsaudio_broken_extra", "server", "x", load=True)
    assert "cannot be imported (ImportError: libfoo.so: cannot open)" in str(caught.value)
    assert "pip install 'nsaudio[server]'" in str(caught.value)
