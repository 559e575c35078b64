"""The ring under two threads: nothing lost with block, exact drop counts with drop_oldest."""

from __future__ import annotations

import threading

import pytest

from nsaudio.errors import InputError, RingClosed
from nsaudio.ring import Ring


class Item:
    def __init__(self, n: int, size: int = 10):
        self.n, self.size = n, size

    def __len__(self) -> int:
        return self.size


def test_block_policy_loses_nothing_across_threads():
    ring: Ring[Item] = Ring(50, "block")
    received = []

    def consume():
        for item in ring:
            received.append(item.n)

    t = threading.Thread(target=consume)
    t.start()
    for i in range(20000):
        ring.put(Item(i))
    ring.close()
    t.join(timeout=30)
    assert received == list(range(20000))
    assert ring.dropped == 0
    assert ring.high_water <= 50


def test_drop_oldest_counts_every_drop_exactly():
    ring: Ring[Item] = Ring(100, "drop_oldest")
    for i in range(25):
        ring.put(Item(i))  # 250 samples into 100: the oldest 15 go
    ring.close()
    kept = [item.n for item in ring]
    assert kept == list(range(15, 25))
    assert ring.dropped == 15 and ring.dropped_samples == 150
    assert ring.high_water == 100


def test_drop_oldest_under_a_slow_consumer_accounts_for_every_item():
    ring: Ring[Item] = Ring(30, "drop_oldest")
    received = []
    gate = threading.Event()

    def consume():
        gate.wait()
        for item in ring:
            received.append(item.n)

    t = threading.Thread(target=consume)
    t.start()
    for i in range(1000):
        ring.put(Item(i))
        if i == 500:
            gate.set()
    ring.close()
    t.join(timeout=30)
    assert len(received) + ring.dropped == 1000
    assert received == sorted(received)
    assert received[-1] == 999


def test_get_times_out_and_returns_none_at_end():
    ring: Ring[Item] = Ring(10)
    assert ring.get(timeout=0.01) is None and not ring.at_end
    ring.put(Item(1))
    ring.close()
    assert ring.get().n == 1
    assert ring.get() is None and ring.at_end


def test_put_after_close_raises_and_abort_wakes_a_blocked_producer():
    ring: Ring[Item] = Ring(10)
    ring.put(Item(1))
    errors = []

    def produce():
        try:
            ring.put(Item(2))
        except RingClosed as err:
            errors.append(err)

    t = threading.Thread(target=produce)
    t.start()
    t.join(timeout=0.05)
    assert t.is_alive()  # blocked: the ring is full
    ring.abort()
    t.join(timeout=5)
    assert errors and len(ring) == 0
    with pytest.raises(RingClosed):
        ring.put(Item(3))


def test_block_put_times_out():
    ring: Ring[Item] = Ring(10)
    ring.put(Item(1))
    assert ring.put(Item(2), timeout=0.01) is False


def test_oversized_item_is_accepted_when_empty():
    ring: Ring[Item] = Ring(10)
    ring.put(Item(1, size=25))
    assert len(ring) == 25


@pytest.mark.parametrize("args", [(0, "block"), (-5, "block"), (10, "newest")])
def test_bad_arguments_are_a_programmers_error_not_bad_input(args):
    with pytest.raises(ValueError) as caught:
        Ring(*args)
    assert not isinstance(caught.value, InputError)  # not "exit 2: fix your input"


def test_for_seconds():
    ring = Ring.for_seconds(0.5, 16000, "drop_oldest")
    assert ring.capacity == 8000 and ring.policy == "drop_oldest"


class Placed(Item):
    """An item with a stream position, as blocks and frames have."""

    def __init__(self, start: int, size: int = 10):
        super().__init__(start, size)
        self.start = start


def test_drop_oldest_records_where_it_dropped_adjacent_drops_merged():
    ring: Ring[Placed] = Ring(30, "drop_oldest")
    for start in range(0, 60, 10):  # 0..50: the first three go
        ring.put(Placed(start))
    ring.get()
    ring.put(Placed(100))  # room: nothing dropped
    ring.put(Placed(110))  # drops 40
    assert ring.dropped_spans == [(0, 30), (40, 50)]
    assert (ring.dropped, ring.dropped_samples) == (4, 40)


def test_dropped_spans_are_bounded_but_every_drop_is_counted():
    from nsaudio.ring import MAX_DROPPED_SPANS

    ring: Ring[Placed] = Ring(10, "drop_oldest")
    for i in range(2 * MAX_DROPPED_SPANS + 2):
        ring.put(Placed(20 * i))  # never adjacent: one span per drop
    assert len(ring.dropped_spans) == MAX_DROPPED_SPANS
    assert ring.dropped_samples == 10 * (2 * MAX_DROPPED_SPANS + 1)


def test_items_without_a_position_are_counted_not_placed():
    ring: Ring[Item] = Ring(10, "drop_oldest")
    ring.put(Item(1))
    ring.put(Item(2))
    assert (ring.dropped, ring.dropped_spans) == (1, [])


def test_offer_never_waits_and_calls_back_once_the_consumer_makes_room():
    ring: Ring[Item] = Ring(30, "block")
    calls: list[str] = []
    for i in range(3):
        assert ring.offer(Item(i), lambda: calls.append("room"))
    assert not ring.offer(Item(3), lambda: calls.append("room"))  # full: nothing queued
    assert len(ring) == 30 and calls == []
    assert ring.get().n == 0
    assert calls == ["room"]  # from the consumer's get(), once
    assert ring.offer(Item(3), lambda: calls.append("again"))
    assert [ring.get().n for _ in range(3)] == [1, 2, 3]
    assert calls == ["room"]  # no callback was left by a successful offer


@pytest.mark.parametrize("end", ["close", "abort"])
def test_offer_on_a_full_ring_learns_of_close_and_abort(end):
    ring: Ring[Item] = Ring(10, "block")
    ring.put(Item(0))
    calls: list[int] = []
    assert not ring.offer(Item(1), lambda: calls.append(1))
    getattr(ring, end)()
    assert calls == [1]
    with pytest.raises(RingClosed):
        ring.offer(Item(2), lambda: None)


def test_offer_to_a_live_ring_drops_the_oldest_instead():
    ring: Ring[Item] = Ring(20, "drop_oldest")
    for i in range(5):
        assert ring.offer(Item(i), lambda: pytest.fail("a live ring never refuses"))
    assert ring.dropped == 3 and [item.n for item in (ring.get(), ring.get())] == [3, 4]


def test_offer_across_threads_misses_no_room():
    # The consumer empties the ring between a refused offer and the producer's wait: the
    # callback still comes, so the producer never waits forever.
    ring: Ring[Item] = Ring(20, "block")
    received: list[int] = []

    def consume():
        for item in ring:
            received.append(item.n)

    consumer = threading.Thread(target=consume)
    consumer.start()
    room = threading.Event()
    for i in range(5000):
        while True:
            room.clear()
            if ring.offer(Item(i), room.set):
                break
            assert room.wait(10), f"no call for room at item {i}"
    ring.close()
    consumer.join(10)
    assert received == list(range(5000))
