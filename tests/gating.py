"""What a gate sends of a recording, and where the local server's segmenter cuts it.

Shared by ``tests/server/test_vad.py`` and ``benchmarks/gate_times.py``: ``frames`` cuts a
recording into 100 ms frames as ``nsaudio stream`` does, ``gated`` passes them through a
gate as ``stream --gate [--gate-vad silero]`` runs it, and ``segments`` runs the server's
segmenter (``nsaudio.server.vad``, as ``nsaudio serve`` runs it) on what was sent, each
segment's ends mapped back to positions in the recording as the sink's timeline maps a
result's times.
"""

from __future__ import annotations

import numpy as np

from nsaudio.blocks import Frame
from nsaudio.detectors import make_detector
from nsaudio.server.vad import SegmentEnd, Segmenter, SegmentStart
from nsaudio.stages import SpeechGate

FRAME_S = 0.1


def frames(x: np.ndarray, rate: int) -> list[Frame]:
    """``x`` (int16) in whole 100 ms frames."""
    n = round(rate * FRAME_S)
    return [Frame(x[i : i + n].tobytes(), i, rate, 0) for i in range(0, len(x) // n * n, n)]


def gated(x: np.ndarray, rate: int, detector: str) -> list[Frame]:
    """What the gate with ``detector`` (``"energy"`` or ``"silero"``) sends of ``x``."""
    gate = SpeechGate(make_detector(detector), skip_silence=True)
    return [out for frame in frames(x, rate) for out in gate.push(frame)]


def segments(sent: list[Frame]) -> list[tuple[int, int]]:
    """The server's segments of ``sent`` (frames in order), in samples of the recording."""
    seg = Segmenter()
    marks: list[tuple[int, int]] = []  # (position in what was sent, position in the recording)
    events = []
    at = 0
    for frame in sent:
        marks.append((at, frame.start))
        at += frame.frames
        events += seg.push(np.frombuffer(frame.pcm, "<i2"))
    events += seg.flush()

    def in_recording(position: int) -> int:
        sent_at, start = next(m for m in reversed(marks) if m[0] <= position)
        return start + position - sent_at

    out, opened = [], 0
    for event in events:
        if isinstance(event, SegmentStart):
            opened = in_recording(event.position)
        elif isinstance(event, SegmentEnd):
            out.append((opened, in_recording(event.position)))
    return out
