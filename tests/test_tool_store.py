"""Tool-call records (exactly once): the same rules for the in-process store and DynamoDB (moto server)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from shared.store import CallStore, DynamoCallStore, MemoryCallStore
from tests.calls_table import create_calls_table, dynamodb_client
from tests.moto_aws import boto3_client

CALL_ID = "rtc_toolstore0123"


@pytest.fixture(params=["memory", "moto_server"])
def make_store(request: pytest.FixtureRequest) -> Callable[[], CallStore]:
    if request.param == "memory":
        memory = MemoryCallStore()
        return lambda: memory
    endpoint = request.getfixturevalue("moto_endpoint")
    table = f"calls-{uuid.uuid4().hex[:8]}"
    create_calls_table(dynamodb_client(endpoint), table)
    client = boto3_client("dynamodb", endpoint)
    return lambda: DynamoCallStore(table, client)


def test_the_first_claim_wins_and_later_ones_see_its_record(make_store: Callable[[], CallStore]) -> None:
    store = make_store()
    assert store.claim_tool_call(CALL_ID, "call_1", "owner-a") is None
    seen = store.claim_tool_call(CALL_ID, "call_1", "owner-b")
    assert seen is not None
    assert (seen.status, seen.owner, seen.output) == ("started", "owner-a", None)
    assert seen.started_at > 0
    # Another tool call of the same call, or the same id on another call, is its own record.
    assert store.claim_tool_call(CALL_ID, "call_2", "owner-b") is None
    assert store.claim_tool_call("rtc_othercall0000", "call_1", "owner-b") is None


def test_finish_records_the_output_once(make_store: Callable[[], CallStore]) -> None:
    store = make_store()
    assert store.finish_tool_call(CALL_ID, "call_x", "{}") is False  # never claimed
    assert store.claim_tool_call(CALL_ID, "call_x", "owner-a") is None
    assert store.finish_tool_call(CALL_ID, "call_x", '{"ok": true}') is True
    assert store.finish_tool_call(CALL_ID, "call_x", '{"error": "late"}') is False
    record = store.claim_tool_call(CALL_ID, "call_x", "owner-b")
    assert record is not None
    assert (record.status, record.output) == ("done", '{"ok": true}')


def test_concurrent_claims_have_one_winner(make_store: Callable[[], CallStore]) -> None:
    store = make_store()
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda i: store.claim_tool_call(CALL_ID, "call_race", f"o{i}"), range(12)))
    assert sum(result is None for result in results) == 1
