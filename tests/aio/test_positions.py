"""``send(chunk, start=)``: audio placed where the caller's clock says (a phone call's media
timestamps), a jump forward a gap the results' times step over, going back an error."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

import nsaudio
from nsaudio.errors import InputError

from ..faults.slots import make_speech
from ..faults.support import check_times
from .support import collect

RATE = 16000
PACKET = RATE // 50  # 20 ms
SLOT = RATE // 10  # the slot code's 100 ms


def _words(results) -> list[str]:
    return " ".join(r.text for r in results if r.full).split()


@pytest.mark.parametrize("nowait", [False, True], ids=["send", "send_nowait"])
def test_a_jump_forward_is_a_gap_and_the_times_after_it_stay_true(fault_server, nowait):
    # 20 ms packets into 200 ms frames, placed by their own positions; the packets of slot 3
    # and of slots 20-22 never come. Before the first gap, slot 2 waits half a frame: it goes
    # out at its own place, short, and slot 4 starts the next frame. Every word but the
    # missing ones arrives, each at its slot's absolute time (had the stream closed the gaps
    # up, every later word would be 100 or 400 ms early).
    audio = make_speech(6, rate=RATE, channels=1)
    pcm = (audio.data[:, 0] * 32767).round().astype(np.int16)
    missing = {3, 20, 21, 22}
    server = fault_server()

    async def main() -> tuple[list, dict]:
        async with nsaudio.connect(
            server.base_url, server.api_key, rate=RATE, dtype="int16", frame_ms=200, live=True
        ) as stream:

            async def send_all() -> None:
                for start in range(0, len(pcm), PACKET):
                    if start // SLOT in missing:
                        continue
                    packet = pcm[start : start + PACKET].tobytes()
                    if nowait:  # as a protocol's data_received would, between awaits
                        stream.send_nowait(packet, start=start)
                        await asyncio.sleep(0)
                    else:
                        await stream.send(packet, start=start)
                await stream.end()

            results = asyncio.create_task(collect(stream))
            await send_all()  # a failure here leaves the block, which ends the iteration
            got = await results
        return got, stream.stats()

    got, stats = asyncio.run(main())
    expected = [w for w in audio.words if int(w[1:]) not in missing]
    assert _words(got) == expected
    check_times([r.to_dict() for r in got], gaps=True)
    assert stats["input_gaps"] == 2 and stats["input_gap_frames"] == 4 * SLOT, stats
    assert stats["input_frames"] == len(pcm) - 4 * SLOT, stats
    # The service got the audio that came, nothing invented for what did not.
    assert len(bytes(server.sessions[0].audio)) < 2 * (len(pcm) - 4 * SLOT) + 2 * 2 * RATE


def test_a_start_that_goes_back_is_an_input_error_and_nothing_of_it_is_sent(fault_server):
    audio = make_speech(3, rate=RATE, channels=1)
    pcm = (audio.data[:, 0] * 32767).round().astype(np.int16)
    server = fault_server()

    async def main() -> list:
        async with nsaudio.connect(
            server.base_url, server.api_key, rate=RATE, dtype="int16"
        ) as stream:
            await stream.send(pcm[:SLOT], start=0)
            await stream.send(pcm[SLOT : 2 * SLOT])  # no start: right after the previous
            for bad in (SLOT, 2 * SLOT - 1, 0):
                with pytest.raises(InputError, match="goes back"):
                    await stream.send(pcm[bad : bad + PACKET], start=bad)
            for bad in (-1, 1.5, True, "3200"):
                with pytest.raises(InputError, match="whole number of frames"):
                    await stream.send(pcm[:PACKET], start=bad)  # type: ignore[arg-type]
            assert stream.stats()["input_frames"] == 2 * SLOT  # nothing of them was taken
            await stream.send(pcm[2 * SLOT :], start=2 * SLOT)  # where it ends: no gap
            assert stream.stats()["input_gaps"] == 0
            await stream.end()
            return [r async for r in stream]

    got = asyncio.run(main())
    assert _words(got) == audio.words  # every word once: nothing was placed twice
    check_times([r.to_dict() for r in got])


def test_send_nowait_is_for_live_streams_and_one_send_at_a_time(fault_server):
    server = fault_server()
    audio = make_speech(2, rate=RATE, channels=1)

    async def main() -> None:
        async with nsaudio.connect(server.base_url, server.api_key, rate=RATE) as stream:
            with pytest.raises(InputError, match="for live streams"):
                stream.send_nowait(audio.data[:PACKET])
            assert stream.stats()["input_frames"] == 0
        async with nsaudio.connect(
            server.base_url, server.api_key, rate=48000, live=True
        ) as stream:  # 48 kHz: a long chunk goes through the stages a slice at a time
            long = asyncio.create_task(stream.send(np.zeros(48000 * 2, np.float32)))
            await asyncio.sleep(0)
            await asyncio.sleep(0)  # the long send is between two of its slices
            assert not long.done()
            with pytest.raises(RuntimeError, match="under way"):
                stream.send_nowait(np.zeros(960, np.float32))
            await long
            stream.send_nowait(np.zeros(960, np.float32))
            assert stream.stats()["input_frames"] == 48000 * 2 + 960

    asyncio.run(main())
