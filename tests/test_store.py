"""The call store's rules, the same for the in-process store and for DynamoDB (a moto server, real HTTP)."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from shared.store import CallStore, DynamoCallStore, MemoryCallStore, StoreUnavailable
from tests.calls_table import create_calls_table, dynamodb_client, table_properties
from tests.conftest import LogCapture
from tests.moto_aws import boto3_client

LOCK = 0.5  # seconds a delivery stays "in progress" in these tests


@pytest.fixture
def table(moto_endpoint: str) -> str:
    """A fresh calls table (template.yaml's schema) on the session's moto server."""
    name = f"calls-{uuid.uuid4().hex[:8]}"
    create_calls_table(dynamodb_client(moto_endpoint), name)
    return name


@pytest.fixture
def dynamodb(moto_endpoint: str) -> Any:
    """A boto3 DynamoDB client on the moto server, configured as shared.aws's (what the store uses in AWS)."""
    return boto3_client("dynamodb", moto_endpoint)


@pytest.fixture(params=["memory", "moto_server"])
def make_store(request: pytest.FixtureRequest) -> Callable[[float], CallStore]:
    """Builds the store under test with a given delivery lock time."""
    if request.param == "memory":
        return lambda lock: MemoryCallStore(lock_seconds=lock)
    # The server answers one request at a time (SerialMotoServer): DynamoDB's atomic conditional writes.
    client, table = request.getfixturevalue("dynamodb"), request.getfixturevalue("table")
    return lambda lock: DynamoCallStore(table, client, lock_seconds=lock)


@pytest.fixture
def store(make_store: Callable[[float], CallStore]) -> CallStore:
    return make_store(LOCK)


def test_the_test_table_has_the_template_ttl_attribute(moto_endpoint: str, table: str) -> None:
    ttl = dynamodb_client(moto_endpoint).describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert (
        ttl["AttributeName"] == "expires_at" == table_properties()["TimeToLiveSpecification"]["AttributeName"]
    )
    assert ttl["TimeToLiveStatus"] == "ENABLED"


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


def test_a_missing_table_is_a_503(dynamodb: Any, logs: LogCapture) -> None:
    store = DynamoCallStore("no-such-table", dynamodb)
    with pytest.raises(StoreUnavailable) as caught:
        store.begin_delivery("wh_1")
    assert caught.value.status_code == 503
    assert isinstance(caught.value.__cause__, ClientError)
    assert caught.value.__cause__.response["Error"]["Code"] == "ResourceNotFoundException"
    assert str(caught.value) == "Call store unavailable"  # nothing of the request (table, keys) in it
    (logged,) = logs.messages("call store error")
    assert (logged["error"], logged["code"]) == ("ResourceNotFoundException",) * 2  # boto3 models it


def test_an_unreachable_store_is_a_503_within_the_retry_budget() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = DynamoCallStore("calls", boto3_client("dynamodb", f"http://127.0.0.1:{port}"))
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as caught:
        store.take_slot("rtc_1", limit=1, until=time.time() + 60)
    assert caught.value.status_code == 503
    assert isinstance(caught.value.__cause__, EndpointConnectionError)  # after the standard retries
    assert time.monotonic() - started < 10


def test_the_dynamo_store_needs_a_table_name(dynamodb: Any) -> None:
    with pytest.raises(Exception, match="CALLS_TABLE_NAME"):
        DynamoCallStore("", dynamodb)
