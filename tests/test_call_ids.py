"""Every place that validates a call id takes both APIs' ids: Realtime `rtc_...`, GPT-Live `live_...`
(shared/upstream.py `is_call_id`), and nothing else."""

from __future__ import annotations

from typing import Any

import pytest

import calls_app
import observer_app
from shared import deps
from shared.records import CallMeta, MemoryRecordStore, RecordBatch
from shared.records.store import decode_cursor, encode_cursor
from shared.upstream import call_api, is_call_id
from tests.conftest import FakeContext, RecordingLauncher, load_event, response_json

LIVE_ID = "live_u0_479a275623b54bdb9b6fbae2f7cbd408"


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("rtc_abc123", True),
        (LIVE_ID, True),
        ("live_", False),
        ("call_abc", False),
        ("live_a/../b", False),
        ("rtc_" + "x" * 201, False),
        (5, False),
        (None, False),
    ],
)
def test_is_call_id(value: object, valid: bool) -> None:
    assert is_call_id(value) is valid


def test_the_api_of_a_call_is_its_id_s_prefix() -> None:
    assert (call_api(LIVE_ID), call_api("rtc_abc")) == ("live", "realtime")


def path_event(sample: str, route: str, call_id: str) -> dict[str, Any]:
    event = load_event(sample)
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"{route}/{call_id}"
    event["pathParameters"] = {"call_id": call_id}
    return event


def test_the_observer_route_starts_a_live_call_s_observer(launcher: RecordingLauncher) -> None:
    result = observer_app.handler(path_event("observer_http", "/observer", LIVE_ID), FakeContext())
    assert result["statusCode"] == 202
    assert [(r.call_id, r.source) for r in launcher.requests] == [(LIVE_ID, "api")]


def test_the_records_api_finds_a_live_call_and_pages_past_it(env: Any) -> None:
    store = MemoryRecordStore()
    store.write(CallMeta(LIVE_ID, "sip", "", "", "default", "gpt-live-1.1", 1.8e9), RecordBatch())
    with deps.record_store.override(store):
        found = calls_app.handler(path_event("call", "/calls", LIVE_ID), FakeContext())
        missing = calls_app.handler(path_event("call", "/calls", "live_unknown"), FakeContext())
    assert (found["statusCode"], response_json(found)["call_id"]) == (200, LIVE_ID)
    assert (missing["statusCode"], response_json(missing)) == (404, {"error": "No such call"})
    key = {"call_id": {"S": LIVE_ID}, "kind": {"S": "call"}, "started_at": {"N": "1800000000"}}
    assert decode_cursor(encode_cursor(key)) == key
