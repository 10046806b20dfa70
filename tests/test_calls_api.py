"""The operator API (functions/calls): GET /calls and GET /calls/{call_id}, IAM-only in the template,
loopback-only under `make dev`, the JSON contract the ops CLI relies on, and never on the public page."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

import calls_app
from local_api.routes import load_template, read_routes
from local_api.server import create_gateway, is_loopback
from shared import deps
from shared.records import (
    INDEX_NAME,
    SUMMARY_ATTRIBUTES,
    CallMeta,
    DynamoRecordStore,
    MemoryRecordStore,
    RecordBatch,
    tool_call,
    turn,
)
from tests.conftest import FakeContext, load_event, response_json
from tests.moto_aws import boto3_client

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = load_template()
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
SUMMARY_KEYS = {
    "call_id",
    "api",
    "model",
    "backend_model",
    "source",
    "direction",
    "caller",
    "dialed",
    "agent",
    "started_at",
    "ended_at",
    "duration_seconds",
    "end_reason",
    "usage",
    "cost_usd",
    "expires_at",
}
USAGE_KEYS = {
    "input_text_tokens",
    "input_audio_tokens",
    "input_cached_text_tokens",
    "input_cached_audio_tokens",
    "output_text_tokens",
    "output_audio_tokens",
    "backend_input_tokens",
    "backend_cached_input_tokens",
    "backend_output_tokens",
    "seconds",
    "responses",
}
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def http_events() -> list[tuple[str, dict[str, Any]]]:
    return [
        (name, event)
        for name, resource in RESOURCES.items()
        if resource["Type"] == "AWS::Serverless::Function"
        for event in (resource["Properties"].get("Events") or {}).values()
        if event["Type"] == "HttpApi"
    ]


# ----------------------------------------------------------------- the template


def test_the_records_routes_take_only_iam_signed_requests() -> None:
    api = RESOURCES["HttpApi"]["Properties"]
    assert api["Auth"] == {"EnableIamAuthorizer": True}  # no DefaultAuthorizer: the rest stays public
    iam_routes = {
        (e["Properties"]["Method"], e["Properties"]["Path"], name)
        for name, e in http_events()
        if (e["Properties"].get("Auth") or {}).get("Authorizer") == "AWS_IAM"
    }
    assert iam_routes == {
        ("GET", "/calls", "CallsFunction"),
        ("POST", "/calls", "CallsFunction"),
        ("GET", "/calls/{call_id}", "CallsFunction"),
        ("GET", "/calls/{call_id}/recording", "CallsFunction"),
    }
    # Every route of the records function, and every /calls path of any function, is IAM-only.
    for name, event in http_events():
        props = event["Properties"]
        if name == "CallsFunction" or props["Path"].startswith("/calls"):
            assert props["Auth"] == {"Authorizer": "AWS_IAM"}, (name, props["Path"])
    assert "/calls" in TEMPLATE["Outputs"]["CallsApiUrl"]["Value"]


# The projection stacks were first deployed with: DynamoDB cannot change an index's projection in place
# (CloudFormation refuses the update), so it must never change.
DEPLOYED_PROJECTION = [
    "source",
    "caller",
    "dialed",
    "agent",
    "model",
    "ended_at",
    "end_reason",
    "expires_at",
    "input_text_tokens",
    "input_audio_tokens",
    "input_cached_text_tokens",
    "input_cached_audio_tokens",
    "output_text_tokens",
    "output_audio_tokens",
    "responses",
]


def test_the_listing_index_keeps_the_projection_deployed_stacks_have() -> None:
    assert list(SUMMARY_ATTRIBUTES) == DEPLOYED_PROJECTION


def test_the_listing_index_carries_exactly_the_summary_attributes() -> None:
    # GET /calls reads summaries from the index alone: a missing attribute would list as empty, and a
    # transcript in it would copy every call's text into the index.
    (index,) = RESOURCES["RecordsTable"]["Properties"]["GlobalSecondaryIndexes"]
    assert index["IndexName"] == INDEX_NAME
    assert index["Projection"] == {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(SUMMARY_ATTRIBUTES)}


def test_the_local_gateway_reads_which_routes_are_iam() -> None:
    flagged = {(r.method, r.path) for r in read_routes(TEMPLATE) if r.iam}
    assert flagged == {
        ("GET", "/calls"),
        ("POST", "/calls"),
        ("GET", "/calls/{call_id}"),
        ("GET", "/calls/{call_id}/recording"),
    }


def test_the_public_page_never_reads_records() -> None:
    page = REPO / "functions" / "page"
    source = (page / "page_app.py").read_text() + (page / "index.html").read_text()
    assert "records" not in source
    assert "/calls" not in source
    assert "deps" not in (page / "page_app.py").read_text()  # no store of any kind
    assert "RECORDS_TABLE_NAME" not in json.dumps(RESOURCES["PageFunction"])


# ----------------------------------------------------------------- make dev: loopback only


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("10.0.0.5", False),
        ("203.0.113.10", False),
        ("::ffff:203.0.113.10", False),
        ("localhost", False),
        ("", False),
    ],
)
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_make_dev_refuses_records_to_any_peer_but_loopback(env: pytest.MonkeyPatch) -> None:
    """Whatever the server is bound to (HOST=0.0.0.0), the gateway looks at the peer's address (the
    ASGI scope's client, which uvicorn fills from the socket)."""
    gateway = create_gateway(observers=False)
    try:
        asyncio.run(_ask_from_outside_and_inside(gateway))
    finally:
        gateway.close()


async def _ask_from_outside_and_inside(gateway: Any) -> None:
    outside = httpx.ASGITransport(app=gateway, client=("203.0.113.10", 50000))
    async with httpx.AsyncClient(transport=outside, base_url="http://dev.example") as client:
        for path in ("/calls", "/calls?limit=5", "/calls/rtc_abc"):
            response = await client.get(path)
            assert (response.status_code, response.json()) == (403, {"message": "Forbidden"}), path
        assert (await client.get("/")).status_code == 200  # the public routes stay public
    inside = httpx.ASGITransport(app=gateway, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=inside, base_url="http://127.0.0.1") as client:
        assert (await client.get("/calls")).json() == {"calls": [], "next_cursor": None}
        missing = await client.get("/calls/rtc_abc")
        assert (missing.status_code, missing.json()) == (404, {"error": "No such call"})


# ----------------------------------------------------------------- the handler and its contract


def seeded(store: Any) -> None:
    call = CallMeta("rtc_api0001", "sip", "+1555***0123", "+1444***0000", "default", "gpt-realtime", 1.8e9)
    store.write(
        call,
        RecordBatch(
            turns=[turn("assistant", "Hello", 30), turn("caller", "Bye", 30)],
            tool_calls=[tool_call("get_current_time", "{}", '{"t": 1}', ok=True, ms=2.5, retention_days=30)],
            usage={"responses": 1, "output_audio_tokens": 100},
        ),
    )
    store.write(call, RecordBatch(ended_at=1.8e9 + 61, end_reason="model_ended"))
    live = CallMeta("rtc_api0002", "webrtc", "", "", "default", "gpt-realtime", 1.8e9 + 100)
    store.write(live, RecordBatch())


def test_the_routes_answer_the_documented_json(env: pytest.MonkeyPatch) -> None:
    store = MemoryRecordStore()
    seeded(store)
    with deps.record_store.override(store):
        listed = response_json(calls_app.handler(load_event("calls"), FakeContext()))
        event = load_event("call")
        event["pathParameters"]["call_id"] = "rtc_api0001"
        event["rawPath"] = event["requestContext"]["http"]["path"] = "/calls/rtc_api0001"
        one = calls_app.handler(event, FakeContext())
    assert set(listed) == {"calls", "next_cursor"}
    assert listed["next_cursor"] is None
    assert [c["call_id"] for c in listed["calls"]] == ["rtc_api0002", "rtc_api0001"]  # newest first
    for summary in listed["calls"]:
        assert set(summary) == SUMMARY_KEYS
        assert set(summary["usage"]) == USAGE_KEYS
        assert ISO.match(summary["started_at"])
    live = listed["calls"][0]
    assert (live["ended_at"], live["end_reason"], live["duration_seconds"], live["source"]) == (
        None,
        None,
        None,
        "webrtc",
    )
    assert one["statusCode"] == 200
    record = response_json(one)
    assert set(record) == SUMMARY_KEYS | {"turns", "tool_calls", "progress", "recording", "recording_error"}
    assert (record["direction"], record["recording"]) == ("inbound", None)
    assert (record["end_reason"], record["duration_seconds"], record["caller"]) == (
        "model_ended",
        61.0,
        "+1555***0123",
    )
    assert [set(t) for t in record["turns"]] == [{"role", "text", "at"}] * 2
    (tool,) = record["tool_calls"]
    assert set(tool) == {"name", "arguments", "result", "error", "ms", "at"}
    assert record["cost_usd"] == pytest.approx(100 * 64 / 1e6)


def call_event(path: str, query: str = "") -> dict[str, Any]:
    event = load_event("calls")
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["rawQueryString"] = query
    event["queryStringParameters"] = dict(p.split("=", 1) for p in query.split("&")) if query else {}
    return event


@pytest.mark.parametrize(
    ("path", "query", "reason"),
    [
        ("/calls", "limit=0", "Invalid request: query.limit is invalid"),
        ("/calls", "limit=101", "Invalid request: query.limit is invalid"),
        ("/calls", "limit=ten", "Invalid request: query.limit is invalid"),
        ("/calls", "cursor=bm90IGEgY3Vyc29y", "Invalid request: cursor is malformed"),
        ("/calls", "cursor=" + "A" * 2000, "Invalid request: query.cursor is invalid"),
        ("/calls/not_a_call", "", "Invalid request: path.call_id is malformed"),
    ],
)
def test_bad_input_is_a_400_with_a_reason(
    env: pytest.MonkeyPatch, path: str, query: str, reason: str
) -> None:
    result = calls_app.handler(call_event(path, query), FakeContext())
    assert (result["statusCode"], response_json(result)) == (400, {"error": reason})


def test_pages_follow_the_cursor(env: pytest.MonkeyPatch) -> None:
    store = MemoryRecordStore()
    seeded(store)
    with deps.record_store.override(store):
        first = response_json(calls_app.handler(call_event("/calls", "limit=1"), FakeContext()))
        cursor = first["next_cursor"]
        second = response_json(
            calls_app.handler(call_event("/calls", f"limit=1&cursor={cursor}"), FakeContext())
        )
    assert [c["call_id"] for c in first["calls"] + second["calls"]] == ["rtc_api0002", "rtc_api0001"]
    assert second["next_cursor"] is None


def test_an_unreachable_table_is_a_503(env: pytest.MonkeyPatch) -> None:
    store = DynamoRecordStore("records", boto3_client("dynamodb", "http://127.0.0.1:9", max_attempts=1))
    with deps.record_store.override(store):
        result = calls_app.handler(load_event("calls"), FakeContext())
    assert (result["statusCode"], response_json(result)) == (503, {"error": "Call records unavailable"})


def test_without_a_table_name_the_deployed_function_says_what_is_missing(env: pytest.MonkeyPatch) -> None:
    env.setenv("CALL_STORE", "dynamodb")
    env.setenv("AWS_DEFAULT_REGION", "us-east-1")
    deps.reset()
    result = calls_app.handler(load_event("calls"), FakeContext())
    assert (result["statusCode"], response_json(result)) == (
        500,
        {"error": "Server misconfigured: RECORDS_TABLE_NAME is not set"},
    )
