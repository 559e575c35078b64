"""A deterministic stand-in recogniser for the server's tests (not shipped: tests only)."""

from __future__ import annotations

from nsaudio.server.engines import ENGINE_RATE, EngineStateError, Int16Array

__all__ = ["CountingEngine"]


class CountingEngine:
    """Deterministic stand-in recogniser: one word per ``word_ms`` of audio it was given.

    Word ``wK`` stands for the ``word_ms`` slot that ends at K * ``word_ms`` ms of session
    audio; a word is said once the audio given reaches the end of its slot. Audio given in
    contiguous utterances therefore yields consecutive numbers, and any lost, skipped or
    repeated audio shows as a gap or a repeat in the numbering.

    ``calls`` records the method calls, for tests that check how the engine was driven.
    """

    def __init__(self, word_ms: int = 100, rate: int = ENGINE_RATE) -> None:
        if word_ms <= 0 or (rate * word_ms) % 1000:
            raise ValueError(f"word_ms must be a positive whole number of samples at {rate} Hz")
        self._word = rate * word_ms // 1000
        self._start: int | None = None
        self._end = 0
        self.calls: list[str] = []

    def reset(self) -> None:
        self.calls.append("reset")
        self._start = None

    def start(self, position: int, *, live: bool = True) -> None:
        if position < 0:
            raise ValueError(f"position must be >= 0, got {position}")
        self.calls.append("start")
        self._start = self._end = position

    def process(self, samples: Int16Array) -> None:
        if self._start is None:
            raise EngineStateError("process() called outside an utterance; call start() first")
        self._end += len(samples)

    def partial(self) -> str:
        return self._text(self._start) if self._start is not None else ""

    def finish(self) -> str:
        if self._start is None:
            raise EngineStateError("finish() called outside an utterance; call start() first")
        self.calls.append("finish")
        text = self._text(self._start)
        self._start = None
        return text

    def _text(self, start: int) -> str:
        first = start // self._word + 1
        last = self._end // self._word
        return " ".join(f"w{k}" for k in range(first, last + 1))
