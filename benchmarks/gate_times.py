"""How far the local server's segment times move when a gate changes what it hears.

``benchmarks/gate.py`` compares the times of the results of a gated run with the ungated
run's. A gate maps its skipped audio back exactly (the sink's timeline), so what moves a
result's time is the service's own segmentation of the audio it was sent. The local server
segments with the energy detector, whose noise floor follows the quietest recent frame down
at once and rises again; where a sentence ends is where its level falls below that floor
plus 16 dB, so it depends on the noise the server heard before the sentence (seven seconds
of it ungated; the last tail and a pre-roll gated). When the floor rose at 6 dB/s through
everything it remembered seconds of noise, and a quiet word ending ("morning") gained or
lost a 20 ms frame; between segments it now rises at 60 dB/s through anything short of
speech, so at an onset it remembers the last 0.2-0.3 s, which the gate's pre-roll sends
(``nsaudio.server.vad.QUIET_RISE_DB_PER_S``).

This measures that, without pocketsphinx: the sentences of the test suite's recording
(``tests/recordings.py``) over brown noise of ``--seeds`` different seeds at two levels,
and with keyboard clicks in the pauses (two levels) over the room's noise; for each, the
server's segmenter (``nsaudio.server.vad``, as ``nsaudio serve`` runs it) on the whole
recording and on what each gate passes (100 ms frames, 300 ms hangover and pre-roll, 700 ms
tail, as ``nsaudio stream --gate`` runs it), each segment's ends mapped back to the
recording's time. For each sentence it takes the segment that overlaps it most and reports
the larger of its start and end differences against the ungated one:

- within 20 ms (a frame of the server's);
- moved: more than 20 ms and at most 0.5 s: the same segment, its end or start a few frames
  away;
- re-cut: more than 0.5 s: the server joined noise to the sentence in one run and not in
  the other (ungated, clicks it heard; gated, what the gate let through), counted as
  "nearer" when the gated run's segment is nearer where the sentence alone would be (its
  onset less the server's 0.3 s pre-roll, its end plus its 0.2 s hangover) than the ungated
  run's, "further" otherwise, and plain "re-cut" when either run has no segment for it.

    python benchmarks/gate_times.py [--seeds 8]

Needs flite and sox (for the sentences) and, for the Silero rows, ``nsaudio[vad]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import gating  # noqa: E402
from tests.gating import frames, gated  # noqa: E402
from tests.noises import clicks, steady  # noqa: E402
from tests.recordings import three_utterances_in_noise  # noqa: E402

KINDS_OF_DIFFERENCE = ("within 20 ms", "moved", "re-cut, nearer", "re-cut, further", "re-cut")
CONDITIONS = (("steady", -53), ("steady", -47), ("clicks", -20), ("clicks", -6))


def segments(sent: list, rate: int) -> list[tuple[float, float]]:
    """The server's segments of ``sent`` (frames in order), in seconds of the recording."""
    return [(a / rate, b / rate) for a, b in gating.segments(sent)]


def carrying(segs: list[tuple[float, float]], a: float, b: float) -> tuple[float, float] | None:
    """The segment overlapping the sentence at ``a``-``b`` most, if any does."""
    overlap, best = max(((min(b, e) - max(a, s), (s, e)) for s, e in segs), default=(0.0, None))
    return best if overlap > 0 else None


def off_sentence(seg: tuple[float, float], a: float, b: float) -> float:
    """How far a segment's ends are from the sentence at ``a``-``b`` with the server's own
    pre-roll (0.3 s) and hangover (0.2 s) around it: where a segment of it alone would be."""
    return abs(seg[0] - (a - 0.3)) + abs(seg[1] - (b + 0.2))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=8, help="noise seeds per condition (default 8)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rec = three_utterances_in_noise(Path(tmp))
        import soundfile as sf

        voice, rate = sf.read(str(Path(tmp) / "voice.wav"), dtype="float64")
    quiet = np.ones(len(voice), bool)
    for start, end in rec.segments:
        quiet[start:end] = False
    counts: dict[tuple[str, str], dict[str, int]] = {}
    moved: dict[tuple[str, str], list[float]] = {}
    print(f"{'condition':16} {'seed':>4}  largest difference per sentence, s (energy | silero)")
    for kind, level in CONDITIONS:
        condition = f"{kind} {level:g} dBFS"
        for detector in ("energy", "silero"):
            counts[condition, detector] = dict.fromkeys(KINDS_OF_DIFFERENCE, 0)
            moved[condition, detector] = []
        for seed in range(1, args.seeds + 1):
            if kind == "steady":
                mix = voice + steady(len(voice), rate, level, seed=seed)
            else:
                room = steady(len(voice), rate, -53, seed=seed)
                mix = voice + room + clicks(len(voice), rate, level, quiet, seed=seed)
            x = np.clip(np.rint(mix * 32768), -32768, 32767).astype(np.int16)
            ungated = segments(frames(x, rate), rate)
            row = []
            for detector in ("energy", "silero"):
                segs = segments(gated(x, rate, detector), rate)
                diffs = []
                for a, b in rec.seconds:
                    got, want = carrying(segs, a, b), carrying(ungated, a, b)
                    d = (
                        np.inf
                        if got is None or want is None
                        else max(abs(got[0] - want[0]), abs(got[1] - want[1]))
                    )
                    diffs.append(d)
                    key = "within 20 ms" if d <= 0.0201 else "moved" if d <= 0.5 else "re-cut"
                    if key == "re-cut" and got is not None and want is not None:
                        nearer = off_sentence(got, a, b) < off_sentence(want, a, b)
                        key = "re-cut, nearer" if nearer else "re-cut, further"
                    counts[condition, detector][key] += 1
                    if key == "moved":
                        moved[condition, detector].append(d)
                row.append(" ".join(f"{d:5.2f}" for d in diffs))
            print(condition.ljust(16), f"{seed:4d}  {row[0]}  |  {row[1]}")
    print()
    for (condition, detector), c in counts.items():
        m = moved[condition, detector]
        print(f"{condition:16} {detector:7} of {sum(c.values())} sentences: "
              + ", ".join(f"{k} {v}" for k, v in c.items())
              + (f" (moved by {min(m):.2f}-{max(m):.2f} s)" if m else ""))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
