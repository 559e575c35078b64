"""Coverage: the speech the gate heard and what full results covered, in stream samples."""

from __future__ import annotations

from nsaudio.blocks import Frame
from nsaudio.sinks.coverage import Coverage

RATE = 1000


def frames(*runs: tuple[int, int, bool]) -> list[Frame]:
    """100-sample frames from ``(start, end, speech)`` runs."""
    return [Frame(bytes(200), p, RATE, 1, speech=speech)
            for a, b, speech in runs for p in range(a, b, 100)]  # fmt: skip


def heard(c: Coverage, *runs: tuple[int, int, bool]) -> Coverage:
    for f in frames(*runs):
        c.heard(f)
    return c


def test_a_span_is_covered_by_a_final_after_its_onset_within_the_tolerance_of_its_end():
    c = heard(Coverage(300), (0, 1000, False), (1000, 2400, True), (2400, 3000, False))
    assert not c.complete and c.uncovered() == [(1000, 2400)]
    assert not c.cover(0) and not c.complete
    c.cover(2000)  # 400 samples short of the end: more than the tolerance
    assert not c.complete and c.uncovered() == [(2000, 2400)]
    c.cover(2100)  # within 300 of the end
    assert c.complete and c.missing() == []


def test_a_final_of_an_earlier_span_does_not_cover_a_later_onset():
    c = heard(Coverage(300), (0, 1000, True), (1000, 1500, False), (1500, 2000, True))
    c.cover(1500)  # ends exactly where the next span begins: after no part of it
    assert c.uncovered() == [(1500, 2000)] and not c.complete


def test_speech_that_goes_on_after_a_covered_span_is_part_of_it():
    """A final at a chunk boundary covers the span so far; the hangover frames that follow
    are judged with that span's onset, not as a new onset the final ended before."""
    c = heard(Coverage(300), (0, 2000, True))
    c.cover(2000)
    assert c.complete
    heard(c, (2000, 2300, True))
    assert c.complete  # 2000 >= 2300 - 300
    heard(c, (2300, 3000, True))
    assert c.uncovered() == [(2000, 3000)]


def test_a_blip_shorter_than_the_tolerance_needs_no_result():
    c = heard(Coverage(500), (0, 1000, False), (1000, 1400, True), (1400, 2000, False))
    assert c.complete and c.missing() == [] and c.first_uncovered() == 1000
    heard(c, (2000, 2500, True))  # 500 samples: speech
    assert not c.complete and c.missing() == [(2000, 2500)]


def test_lost_speech_is_named_and_the_silence_around_it_is_not():
    c = heard(Coverage(0), (0, 1000, False), (1000, 3000, True), (3000, 4000, False))
    assert c.lose(0, 2000) == 1000
    assert c.lost == [(1000, 2000)] and c.lost_samples == 1000
    assert c.missing() == [(1000, 3000)]  # the lost part and the part still uncovered
    c.cover(3000)
    assert c.complete and c.missing() == [(1000, 2000)]
    assert c.lose(3000, 4000) == 0  # only silence went
