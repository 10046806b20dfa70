"""The table every concern shares (shared/store/table.py): its TTL attribute; a 503 when it is
missing or unreachable."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from shared.store import DynamoCallStore, StoreUnavailable
from tests.calls_table import dynamodb_client, table_properties
from tests.conftest import LogCapture
from tests.moto_aws import boto3_client


def test_the_test_table_has_the_template_ttl_attribute(moto_endpoint: str, table: str) -> None:
    ttl = dynamodb_client(moto_endpoint).describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert (
        ttl["AttributeName"] == "expires_at" == table_properties()["TimeToLiveSpecification"]["AttributeName"]
    )
    assert ttl["TimeToLiveStatus"] == "ENABLED"


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
