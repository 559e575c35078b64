"""A stand-in speech service with the habits of real ones, for the end-of-stream tests.

Where :class:`~tests.faults.server.FaultServer` answers each 100 ms slot at once, this one
behaves like a cloud recogniser: its own VAD closes a segment after ``vad_silence`` of
silent slots, its full result comes ``final_latency`` seconds later, it sends a partial
every ``partial_every`` seconds of speech, and it may also send blank partials in silence,
only partials, nothing at all, or close every session after a while. Words are still named
by their slot codes (``slots.py``), so what it heard and what it said can be checked.

It shares nothing with nsaudio's own server: the verdict is tried against something nsaudio
did not write.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

import numpy as np
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from .server import FaultServer
from .slots import SLOTS_PER_SECOND, decode_slot


@dataclass(frozen=True)
class Behaviour:
    """How the stand-in answers (times in seconds)."""

    vad_silence: float = 0.6
    final_latency: float = 0.0
    partial_every: float = 1.0
    blank_partials: bool = False  # a partial with text " " every 0.5 s of silence
    partials_only: bool = False  # says partials, never a full result
    silent: bool = False  # reads everything, answers pings, never says a word
    close_after: float | None = None  # closes each session (1001) this long after it opened
    cut_at: float | None = None  # cuts the first session's TCP once it heard this much audio


class _Recogniser:
    """The stand-in's VAD and words, one session's worth (session times in slots)."""

    def __init__(self, rate: int, behaviour: Behaviour, stream_id: str) -> None:
        self.b = behaviour
        self.slot_bytes = 2 * rate // SLOTS_PER_SECOND
        self.rate = rate
        self.stream_id = stream_id
        self.pending = b""
        self.slot = 0
        self.words: list[str] = []
        self.seg_start = 0
        self.last_voiced = 0
        self.quiet = 0  # silent slots since the last voiced one (or since a blank partial)
        self.chunk_id = 0

    def _msg(self, full: bool, start: int, end: int, text: str) -> str:
        self.chunk_id += 1
        return json.dumps({
            "full": full, "stream_id": self.stream_id, "chunk_id": self.chunk_id,
            "start_time": start / SLOTS_PER_SECOND, "end_time": end / SLOTS_PER_SECOND,
            "send_time": time.time(), "text": text,
        })  # fmt: skip

    def feed(self, pcm: bytes) -> list[tuple[float, str]]:
        """(delay, message) pairs for what this audio completes."""
        self.pending += pcm
        out: list[tuple[float, str]] = []
        b = self.b
        close_after = round(b.vad_silence * SLOTS_PER_SECOND)
        partial_slots = max(1, round(b.partial_every * SLOTS_PER_SECOND))
        while len(self.pending) >= self.slot_bytes:
            chunk, self.pending = self.pending[: self.slot_bytes], self.pending[self.slot_bytes :]
            k = decode_slot(np.frombuffer(chunk, "<i2"), self.rate)
            if k is not None:
                if not self.words:
                    self.seg_start = self.slot
                self.words.append(f"w{k}")
                self.last_voiced = self.slot + 1
                self.quiet = 0
                if len(self.words) % partial_slots == 0:
                    out.append((0.0, self._msg(False, self.seg_start, self.slot + 1,
                                               " ".join(self.words))))  # fmt: skip
            else:
                self.quiet += 1
                if self.words and self.quiet >= close_after:
                    if not b.partials_only:
                        text = " ".join(self.words)
                        out.append((b.final_latency,
                                    self._msg(True, self.seg_start, self.last_voiced, text)))  # fmt: skip
                    self.words = []
                    self.quiet = 0
                elif not self.words and b.blank_partials and self.quiet % 5 == 0:
                    out.append((0.0, self._msg(False, self.slot, self.slot + 1, " ")))
            self.slot += 1
        return [] if b.silent else out


class StandInServer(FaultServer):
    """:class:`FaultServer`'s REST, tokens and session records, with :class:`Behaviour`."""

    def __init__(self, behaviour: Behaviour, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.behaviour = behaviour
        self.said: list[list[dict]] = []  # per session: every message sent, in order

    async def _handle(self, ws: ServerConnection) -> None:
        session = self._pending.pop(id(ws))
        self.sessions.append(session)
        said: list[dict] = []
        self.said.append(said)
        b = self.behaviour
        rec = _Recogniser(session.rate, b, session.session_id)
        outbox: asyncio.Queue[tuple[float, str] | None] = asyncio.Queue()

        async def sender() -> None:
            # In order, each no earlier than its due time: a slow final holds back what follows.
            while (item := await outbox.get()) is not None:
                due, text = item
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                await ws.send(text)
                said.append(json.loads(text))

        sending = asyncio.create_task(sender())
        closer = None
        if b.close_after is not None:
            closer = asyncio.get_running_loop().call_later(
                b.close_after, lambda: asyncio.ensure_future(ws.close(1001, "session time is up"))
            )
        cut_bytes = None
        if b.cut_at is not None and session.index == 0:
            cut_bytes = round(b.cut_at * session.rate) * 2
        try:
            async for message in ws:
                if isinstance(message, str):
                    continue
                session.audio += message
                for delay, text in rec.feed(message):
                    outbox.put_nowait((time.monotonic() + delay, text))
                if cut_bytes is not None and len(session.audio) >= cut_bytes:
                    session.faulted = True
                    ws.transport.abort()
                    return
        except ConnectionClosed:
            pass
        finally:
            session.close_code = ws.close_code
            session.ended = True
            if closer is not None:
                closer.cancel()
            outbox.put_nowait(None)
            try:
                await asyncio.wait_for(sending, 10)
            except (ConnectionClosed, asyncio.TimeoutError):
                sending.cancel()
