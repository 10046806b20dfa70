"""The call store under test, the same rules for the in-process store and for DynamoDB (a moto server,
real HTTP): the fixtures the tests of each concern (tests/store/test_*.py) share."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from shared.store import CallStore, DynamoCallStore, MemoryCallStore
from tests.calls_table import create_calls_table, dynamodb_client
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
