"""The README's promises: its Python examples run and its first command's job works."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from .conftest import MANIFEST, ROOT

README = (ROOT / "README.md").read_text()
TWO = next(f for f in MANIFEST if f["kind"] == "two_utterances")


def test_readme_opens_with_the_two_setup_commands():
    first_block = re.search(r"```sh\n(.*?)```", README, re.S).group(1)
    commands = [line for line in first_block.splitlines() if line and not line.startswith("#")]
    assert commands[0].endswith("nsaudio stream fixtures/two_utterances_16000_mono_int16.wav")
    assert commands[1] == "bash scripts/test.sh"
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text()


EXAMPLES = re.findall(r"```python\n(.*?)```", README, re.S)


def test_there_is_an_example_for_each_api():
    apis = ["Pipeline(", "nsaudio.connect(", "PushSource("]
    assert [next(i for i, code in enumerate(EXAMPLES) if api in code) for api in apis] == [0, 1, 2]


@pytest.mark.server
@pytest.mark.parametrize("code", EXAMPLES, ids=[f"example{i}" for i in range(len(EXAMPLES))])
def test_each_python_example_runs_and_prints_both_sentences(code):
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split("  ")[-1] for line in lines] == TWO["texts"]
