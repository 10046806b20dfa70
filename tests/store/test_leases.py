"""Observer leases (shared/store/leases.py): one observer per call, memory and DynamoDB alike."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from shared.store import CallStore


def test_one_lease_per_call(store: CallStore) -> None:
    until = time.time() + 60
    first = store.acquire_lease("rtc_a", "owner-1", until=until)
    assert first is not None
    assert first.fresh
    assert store.acquire_lease("rtc_a", "owner-2", until=until) is None
    assert store.lease_owner("rtc_a") == "owner-1"
    other = store.acquire_lease("rtc_b", "owner-2", until=until)
    assert other is not None
    assert other.fresh


def test_concurrent_leases_have_exactly_one_winner(store: CallStore) -> None:
    def take(n: int) -> bool:
        return store.acquire_lease("rtc_a", f"owner-{n}", until=time.time() + 60) is not None

    with ThreadPoolExecutor(max_workers=10) as pool:
        assert sum(pool.map(take, range(20))) == 1


def test_a_lapsed_lease_is_taken_over_but_not_fresh(store: CallStore) -> None:
    assert store.acquire_lease("rtc_a", "owner-1", until=time.time() + 0.1) is not None
    time.sleep(0.2)
    lease = store.acquire_lease("rtc_a", "owner-2", until=time.time() + 60)
    assert lease is not None
    assert not lease.fresh  # so the new observer does not greet again


def test_a_released_lease_is_taken_at_once_but_not_fresh(store: CallStore) -> None:
    assert store.acquire_lease("rtc_a", "owner-1", until=time.time() + 60) is not None
    store.release_lease("rtc_a", "not-the-owner")  # ignored
    assert store.acquire_lease("rtc_a", "owner-2", until=time.time() + 60) is None
    store.release_lease("rtc_a", "owner-1")
    lease = store.acquire_lease("rtc_a", "owner-2", until=time.time() + 60)
    assert lease is not None
    assert not lease.fresh  # a retried observer does not greet again


def test_hand_over_lets_only_the_named_successor_claim(store: CallStore) -> None:
    until = time.time() + 60
    assert store.acquire_lease("rtc_a", "gen0", until=until) is not None
    assert not store.hand_over("rtc_a", "someone-else", "handoff:1", until=until)
    assert store.hand_over("rtc_a", "gen0", "handoff:1", until=until)
    assert store.acquire_lease("rtc_a", "intruder", until=until) is None
    assert store.acquire_lease("rtc_a", "intruder", until=until, claim="handoff:2") is None
    successor = store.acquire_lease("rtc_a", "gen1", until=until, claim="handoff:1")
    assert successor is not None
    assert not successor.fresh
    # A duplicate of the successor's event finds the lease taken.
    assert store.acquire_lease("rtc_a", "gen1-dup", until=until, claim="handoff:1") is None
    assert store.lease_owner("rtc_a") == "gen1"


def test_an_ended_lease_is_never_taken_again(store: CallStore) -> None:
    assert store.acquire_lease("rtc_a", "gen0", until=time.time() + 60) is not None
    store.end_lease("rtc_a", "not-the-owner")  # ignored
    assert store.acquire_lease("rtc_a", "late", until=time.time() + 60) is None
    store.end_lease("rtc_a", "gen0")
    time.sleep(0.05)
    assert store.acquire_lease("rtc_a", "late", until=time.time() + 60) is None
