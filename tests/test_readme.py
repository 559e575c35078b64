"""The README's promises: its Python examples run and its first command's job works."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from .conftest import MANIFEST, ROOT, run_cli

README = (ROOT / "README.md").read_text()
TWO = next(f for f in MANIFEST if f["kind"] == "two_utterances")


def test_readme_opens_with_the_two_setup_commands():
    first_block = re.search(r"```sh\n(.*?)```", README, re.S).group(1)
    commands = [line for line in first_block.splitlines() if line and not line.startswith("#")]
    assert commands[0].endswith("nsaudio stream fixtures/two_utterances_16000_mono_int16.wav")
    assert commands[1] == "NSAUDIO_INSTALL_PACKAGES=1 bash scripts/test.sh"
    ci = (ROOT / ".ci" / "run").read_text()
    assert "export NSAUDIO_INSTALL_PACKAGES=1" in ci and "bash scripts/test.sh" in ci


# The Python API's example and those for audio from your own code: each prints the fixture's
# two sentences (the split example, further on, has a test of its own).
EXAMPLES = re.findall(
    r"```python\n(.*?)```",
    README[README.index("## The Python API") : README.index("## A session per channel")],
    re.S,
)


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


SPLIT = README[README.index("## A session per channel") : README.index("## How it works")]
CALL = next(f for f in MANIFEST if f["kind"] == "conversation")


@pytest.mark.server
def test_the_split_channels_command_prints_what_the_readme_shows():
    command, shown = re.findall(r"```(?:sh)?\n(.*?)```", SPLIT, re.S)[:2]
    words = command.split()
    assert words[:2] == ["nsaudio", "stream"]
    proc = run_cli(*words[1:])  # as written: paced at real time, the local server
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode() == shown


SPLIT_EXAMPLES = re.findall(r"```python\n(.*?)```", SPLIT, re.S)


def test_there_is_a_split_example_for_each_api():
    apis = ["split_channels(", "nsaudio.connect_channels("]
    found = [next(i for i, code in enumerate(SPLIT_EXAMPLES) if api in code) for api in apis]
    assert found == [0, 1]


@pytest.mark.server
@pytest.mark.parametrize("code", SPLIT_EXAMPLES, ids=["threads", "asyncio"])
def test_each_split_channels_python_example_labels_every_line(code):
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    said = [line.split(maxsplit=1)[1] for line in proc.stdout.splitlines()]
    agent, customer = (
        [f"{name}: {text}" for text in texts]
        for name, texts in zip(CALL["names"], CALL["channel_texts"], strict=True)
    )
    assert said == [agent[0], customer[0], agent[1], customer[1], agent[2]]
