"""Webhook deliveries (shared/store/deliveries.py): each delivery acted on once, memory and DynamoDB alike."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from shared.store import CallStore, DynamoCallStore, Grant
from tests.calls_table import dynamodb_client
from tests.store.conftest import LOCK


def test_records_carry_the_ttl_attribute(moto_endpoint: str, table: str, dynamodb: Any) -> None:
    store = DynamoCallStore(table, dynamodb, lock_seconds=LOCK)
    store.begin_delivery("wh_ttl")
    item = dynamodb_client(moto_endpoint).get_item(TableName=table, Key={"pk": {"S": "webhook#wh_ttl"}})[
        "Item"
    ]
    assert item["status"] == {"S": "in_progress"}
    assert int(item["expires_at"]["N"]) > time.time() + 3 * 24 * 3600  # kept beyond OpenAI's 72 h of retries


def test_a_delivery_is_claimed_once_then_reported_as_a_duplicate(store: CallStore) -> None:
    assert store.begin_delivery("wh_1") == "new"
    assert store.begin_delivery("wh_1") == "in_progress"
    store.mark_delivery("wh_1", "done")
    assert store.begin_delivery("wh_1") == "done"
    assert store.begin_delivery("wh_2") == "new"  # other deliveries are independent


def test_an_abandoned_delivery_can_be_tried_again(store: CallStore) -> None:
    assert store.begin_delivery("wh_1") == "new"
    store.abandon_delivery("wh_1")
    assert store.begin_delivery("wh_1") == "new"


def test_a_crashed_delivery_is_retried_once_its_lock_lapses(store: CallStore) -> None:
    assert store.begin_delivery("wh_1") == "new"
    time.sleep(LOCK + 0.1)
    assert store.begin_delivery("wh_1") == "new"
    assert store.begin_delivery("wh_1") == "in_progress"  # and the retry holds the lock again


def test_an_accepted_delivery_is_only_relaunched_after_its_lock_lapses(store: CallStore) -> None:
    assert store.begin_delivery("wh_1") == "new"
    store.mark_delivery("wh_1", "accepted")
    assert store.begin_delivery("wh_1") == "in_progress"
    time.sleep(LOCK + 0.1)
    assert store.begin_delivery("wh_1") == "accepted"


def test_concurrent_claims_have_exactly_one_winner(make_store: Callable[[float], CallStore]) -> None:
    store = make_store(30.0)  # 20 claims on a busy machine may take longer than the short test lock
    with ThreadPoolExecutor(max_workers=10) as pool:
        states = list(pool.map(lambda _: store.begin_delivery("wh_storm"), range(20)))
    assert states.count("new") == 1
    assert states.count("in_progress") == 19


# ----------------------------------------------------------------- `with store.delivery(id) as delivery:`


class Boom(Exception):
    pass


def test_a_delivery_block_that_ends_normally_marks_it_done(store: CallStore) -> None:
    with store.delivery("wh_1") as delivery:
        assert (delivery.state, delivery.duplicate, delivery.grant) == ("new", False, Grant())
    with store.delivery("wh_1") as again:
        assert (again.state, again.duplicate) == ("done", True)


def test_a_failure_before_the_accept_forgets_the_delivery(store: CallStore) -> None:
    with pytest.raises(Boom), store.delivery("wh_1"):
        raise Boom
    with store.delivery("wh_1") as retry:
        assert retry.state == "new"  # the redelivery starts from scratch, at once


def test_a_failure_after_the_accept_keeps_it_accepted_with_its_grant(
    make_store: Callable[[float], CallStore],
) -> None:
    store = make_store(0.2)
    grant = Grant(seconds=90, day="2026-12-06")

    def accept_then_fail() -> None:
        with store.delivery("wh_1") as delivery:
            delivery.accept(grant)
            raise Boom  # e.g. the observer launch failed

    with pytest.raises(Boom):
        accept_then_fail()
    time.sleep(0.3)  # the lock lapses: OpenAI's redelivery
    with store.delivery("wh_1") as redelivery:
        assert (redelivery.state, redelivery.grant) == ("accepted", grant)  # launch again, never accept
    with store.delivery("wh_1") as late:
        assert late.state == "done"


def test_a_delivery_being_handled_is_left_alone_by_a_duplicate(store: CallStore) -> None:
    def duplicate_fails() -> None:
        with store.delivery("wh_1") as duplicate:
            assert (duplicate.state, duplicate.duplicate) == ("in_progress", True)
            raise Boom  # the duplicate's failure (its 409) must not forget the first one's claim

    with store.delivery("wh_1") as first:
        with pytest.raises(Boom):
            duplicate_fails()
        assert first.state == "new"
        assert store.begin_delivery("wh_1") == "in_progress"
    assert store.begin_delivery("wh_1") == "done"
