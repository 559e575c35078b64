"""The asyncio API's wake-ups across threads: batched per turn of the caller's loop."""

from __future__ import annotations

import asyncio
import threading

from nsaudio.aio.wakes import Looks, Wakes


class Woken:
    """Stands in for a sink (wake) or a stream (_woken): counts the calls."""

    def __init__(self) -> None:
        self.calls = 0

    def wake(self) -> None:
        self.calls += 1

    def _woken(self) -> None:
        self.calls += 1


def test_frames_offered_in_one_turn_wake_the_engine_by_batches_and_at_the_turns_end():
    async def main() -> list[int]:
        wakes = Wakes(asyncio.get_running_loop())
        sinks = [Woken() for _ in range(2 * Wakes.BATCH + 5)]
        seen = []
        for sink in sinks:
            wakes.add(sink)
            seen.append(sum(s.calls for s in sinks))
        await asyncio.sleep(0)  # the turn ends
        seen.append(sum(s.calls for s in sinks))
        again = Woken()
        for _ in range(5):  # five frames of one stream in one turn: one wake-up
            wakes.add(again)
        await asyncio.sleep(0)
        seen.append(again.calls)
        return seen

    seen = asyncio.run(main())
    b = Wakes.BATCH
    assert seen[b - 2] == 0 and seen[b - 1] == b  # a full batch goes at once
    assert seen[2 * b - 1] == 2 * b
    assert seen[-3] == 2 * b and seen[-2] == 2 * b + 5  # the rest when the turn ends
    assert seen[-1] == 1


def test_calls_to_look_again_from_another_thread_come_as_one():
    async def main() -> tuple[int, list[int]]:
        loop = asyncio.get_running_loop()
        looks = Looks(loop)
        streams = [Woken() for _ in range(50)]
        scheduled = []
        original = loop.call_soon_threadsafe

        def counting(*args):  # how many cross-thread calls the loop gets
            scheduled.append(1)
            return original(*args)

        loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
        thread = threading.Thread(target=lambda: [looks.request(s) for s in streams * 3])
        thread.start()
        thread.join()
        await asyncio.sleep(0.05)
        return len(scheduled), [s.calls for s in streams]

    scheduled, calls = asyncio.run(main())
    assert calls == [1] * 50  # each stream woken once, however often asked
    assert scheduled == 1
