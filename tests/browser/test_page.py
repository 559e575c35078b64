"""examples/browser: a real page in headless Chromium, its microphone faked from the fixture,
streamed through the app (nsaudio.connect() to the local server) and transcribed in the page."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import MANIFEST, ROOT, fixture_path, wer
from .cdp import Chromium, chromium_path

APP = ROOT / "examples" / "browser" / "app.py"
TWO = next(f for f in MANIFEST if f["kind"] == "two_utterances")
WAV = fixture_path(TWO["file"])
FINALS = "[...document.querySelectorAll('#finals .final')].map(e => e.lastChild.textContent)"

pytestmark = pytest.mark.server


class App:
    """The example app in a subprocess (as the README runs it), its output line by line."""

    def __init__(self) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("NS_API_KEY", "NS_BASE_URL")}
        env["PYTHONPATH"] = str(ROOT)  # this checkout's nsaudio, however the venv has it
        self.proc = subprocess.Popen(
            [sys.executable, str(APP), "--port", "0"], stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT,
        )  # fmt: skip
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        first = self.next_line(60)
        match = re.search(r"open (http://\S+)", first or "")
        if match is None:
            self.stop()
            raise RuntimeError(f"the app did not start: {first!r} {self.output}")
        self.url = match.group(1)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line.rstrip("\n"))
            self.lines.put(line.rstrip("\n"))

    def next_line(self, timeout: float) -> str | None:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            return None

    def wait_for(self, pattern: str, timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            line = self.next_line(left)
            if line is not None and re.search(pattern, line):
                return line
        return None

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self._reader.join(5)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


@pytest.fixture
def app() -> Iterator[App]:
    if chromium_path() is None:
        if os.environ.get("NSAUDIO_REQUIRE_BROWSER") == "1":
            pytest.fail(
                "browser tests required (NSAUDIO_REQUIRE_BROWSER=1), but chromium is missing"
            )
        pytest.skip("chromium is not installed (apt-get install chromium)")
    running = App()
    yield running
    running.stop()


def heard(sentences: list[str], expected: list[str]) -> bool:
    """The sentences, each with at most one word wrong: Chromium plays its fake microphone in
    real time through its own resampler, so the audio is not the file's bit for bit, and
    pocketsphinx can hear a word differently ("ten am tomorrow" was seen once in CI)."""
    return len(sentences) == len(expected) and all(
        wer(e, s) <= 1 / len(e.split()) for e, s in zip(expected, sentences, strict=True)
    )


def test_the_page_shows_the_fixtures_sentences_as_they_are_spoken(app, tmp_path):
    browser = Chromium(app.url + "?autostart", WAV, tmp_path / "profile")
    try:
        finals = browser.wait_for(f"(f => f.length >= 2 && f)({FINALS})", 60)
        assert heard(finals, TWO["texts"]), (finals, app.output)
        assert browser.evaluate("document.getElementById('partial').textContent") == ""
        shot = os.environ.get("NSAUDIO_BROWSER_SCREENSHOT")
        if shot:  # how the README's picture is made
            browser.screenshot(Path(shot))
        browser.evaluate("document.getElementById('stop').click()")
        verdict = browser.wait_for("document.getElementById('verdict').textContent", 30)
        assert verdict == "Stream ended: complete.", verdict
    finally:
        browser.kill()
    line = app.wait_for(r"transcribed:", 10)
    assert line is not None and line.endswith(" [complete]"), line
    said = line.split("transcribed: ", 1)[1].removesuffix(" [complete]")
    assert said == " / ".join(finals), (line, finals)  # what the page showed, the app said


def test_a_page_that_goes_away_mid_sentence_still_gets_its_words_transcribed(app, tmp_path):
    # Chromium is killed while the second sentence is being spoken: the app's stream ends
    # by itself, as a stream should, and says what was transcribed.
    browser = Chromium(app.url + "?autostart", WAV, tmp_path / "profile")
    try:
        assert browser.wait_for(f"{FINALS}.length >= 1", 60), app.output
        partial = browser.wait_for(
            "(t => t.split(' ').length >= 2 && t)(document.getElementById('partial').textContent)",
            30,
        )
        assert partial and TWO["texts"][1].startswith(partial), partial
    finally:
        browser.kill()
    line = app.wait_for(r"transcribed:", 30)
    assert line is not None, app.output
    said = line.split("transcribed: ", 1)[1]
    first, _, rest = said.partition(" / ")
    assert heard([first], TWO["texts"][:1]), line
    assert rest.startswith(partial) and line.endswith("[complete]"), line
