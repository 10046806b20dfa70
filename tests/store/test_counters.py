"""Concurrent-call slots (shared/store/counters.py; the spend-limit counters: tests/test_limits.py)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from shared.store import CallStore


def test_slots_cap_concurrent_calls_and_free_on_release(store: CallStore) -> None:
    until = time.time() + 60
    assert store.take_slot("rtc_1", limit=2, until=until)
    assert store.take_slot("rtc_2", limit=2, until=until)
    assert not store.take_slot("rtc_3", limit=2, until=until)
    assert store.take_slot("rtc_2", limit=2, until=until)  # holding one already: still yes
    store.release_slot("rtc_1")
    store.release_slot("rtc_1")  # twice is harmless
    assert store.take_slot("rtc_3", limit=2, until=until)


def test_expired_slots_free_themselves(store: CallStore) -> None:
    assert store.take_slot("rtc_1", limit=1, until=time.time() + 0.1)
    assert not store.take_slot("rtc_2", limit=1, until=time.time() + 60)
    time.sleep(0.2)
    assert store.take_slot("rtc_2", limit=1, until=time.time() + 60)


def test_release_without_any_slot_is_harmless(store: CallStore) -> None:
    store.release_slot("rtc_never")
    assert store.take_slot("rtc_1", limit=1, until=time.time() + 60)


def test_concurrent_slot_takers_never_exceed_the_limit(store: CallStore) -> None:
    def take(n: int) -> bool:
        return store.take_slot(f"rtc_{n}", limit=3, until=time.time() + 60)

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert sum(pool.map(take, range(12))) == 3
