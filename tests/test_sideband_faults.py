"""Sideband faults against the observer worker: it ends or carries on as documented, and always ends.

Documented (functions/observer/observer_worker.py): a refused handshake ends at once without a retry
(404 -> "not_found", other statuses -> "refused"); a close without a close frame is a normal end
("closed"); `error` events and frames that are not JSON events are logged and the observer carries
on; a socket that stalls is given up shortly before the Lambda deadline ("deadline").
Each run must also leave the fake with no open sideband (the socket was released).
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

import observer_app
from shared import deps
from tests import tally
from tests.conftest import FakeContext, LogCapture, load_event
from tests.fake_openai import FakeOpenAI, error_event, response_created_event, response_done_event

CALL_ID = "rtc_sidebandfault0123"


def run(remaining_seconds: float = 30.0) -> tuple[dict[str, Any], float]:
    event = load_event("observer_async")
    # A call that starts now (the sample event's fixed start time would be past the call limit).
    event.update(call_id=CALL_ID, requested_at=time.time(), call_started_at=time.time())
    started = time.monotonic()
    result = observer_app.handler(event, FakeContext(remaining_seconds=remaining_seconds))
    return result, time.monotonic() - started


def handshakes(fake: FakeOpenAI) -> int:
    return len([r for r in fake.requests if r.path == "/v1/realtime"])


def lease_settled(outcome: str) -> bool:
    """After every outcome the observer holds no lease: released if the call may go on, ended if not."""
    store = deps.call_store()
    probe = store.acquire_lease(CALL_ID, "probe", until=time.time() + 5)
    if outcome in ("refused", "deadline"):  # released: a retry may take over at once
        return probe is not None
    return probe is None and store.lease_owner(CALL_ID) != "probe"  # ended for good


def all_released(fake: FakeOpenAI) -> bool:
    return fake.wait_for(lambda: all(s.closed_at is not None for s in fake.sidebands), timeout=3)


@pytest.mark.parametrize(
    ("status", "outcome"), [(404, "not_found"), (401, "refused"), (403, "refused"), (500, "refused")]
)
def test_refused_handshake_ends_at_once_without_retry(
    fake: FakeOpenAI, env: pytest.MonkeyPatch, logs: LogCapture, status: int, outcome: str
) -> None:
    fake.register_call(CALL_ID)
    fake.fail_next("/v1/realtime", status)
    result, elapsed = run()
    assert result == {"call_id": CALL_ID, "outcome": outcome, "events": 0}
    assert lease_settled(outcome)
    assert elapsed < 3
    assert handshakes(fake) == 1
    assert fake.sidebands == []
    (refused,) = logs.messages("sideband refused")
    assert refused["status"] == status
    tally.record("sideband faults", tried=1, handshakes=handshakes(fake))


def test_unknown_call_is_not_found(fake: FakeOpenAI, env: pytest.MonkeyPatch) -> None:
    result, _ = run()
    assert result["outcome"] == "not_found"
    assert lease_settled("not_found")
    assert handshakes(fake) == 1
    tally.record("sideband faults", tried=1, handshakes=handshakes(fake))


def test_abrupt_close_without_a_close_frame_is_a_normal_end(
    fake: FakeOpenAI, env: pytest.MonkeyPatch
) -> None:
    fake.register_call(CALL_ID)
    fake.sideband_script = [response_created_event("resp_1")]
    fake.sideband_hold_seconds = 0.3
    fake.sideband_abrupt_close = True
    result, elapsed = run()
    assert result == {"call_id": CALL_ID, "outcome": "closed", "events": 2}
    assert lease_settled("closed")
    assert elapsed < 5
    assert all_released(fake)
    tally.record("sideband faults", tried=1, handshakes=handshakes(fake))


def test_error_events_are_logged_and_the_observer_carries_on(
    fake: FakeOpenAI, env: pytest.MonkeyPatch, logs: LogCapture
) -> None:
    fake.register_call(CALL_ID)
    fake.sideband_script = [
        error_event("Unknown parameter", code="unknown_parameter", param="session.foo"),
        response_created_event("resp_1"),
        error_event("try again", type_="server_error"),
        response_done_event("resp_1", usage={}),
    ]
    result, _ = run()
    assert result == {"call_id": CALL_ID, "outcome": "closed", "events": 5}
    assert lease_settled("closed")
    warnings = logs.messages("sideband error event")
    assert [w["error"]["message"] for w in warnings] == ["Unknown parameter", "try again"]
    assert [e["event_type"] for e in logs.messages("sideband event")] == [
        "session.created",
        "response.created",
        "response.done",
    ]
    assert fake.sidebands[0].client_event_types() == ["response.create"]  # the greeting still went out
    assert all_released(fake)
    tally.record("sideband faults", tried=1, handshakes=handshakes(fake))


def test_malformed_frames_are_skipped_and_the_observer_carries_on(
    fake: FakeOpenAI, env: pytest.MonkeyPatch, logs: LogCapture
) -> None:
    fake.register_call(CALL_ID)
    malformed: list[dict[str, Any] | str | bytes] = [
        "{not json",
        "[1, 2, 3]",
        '"just a string"',
        json.dumps({"no_type": True}),
        json.dumps({"type": 42}),
        b"\x00\xff binary",
        "",
    ]
    fake.sideband_script = [*malformed, response_done_event()]
    result, _ = run()
    assert result == {"call_id": CALL_ID, "outcome": "closed", "events": 2}
    assert lease_settled("closed")
    assert len(logs.messages("sideband frame is not a JSON event")) == len(malformed)
    assert [e["event_type"] for e in logs.messages("sideband event")] == ["session.created", "response.done"]
    assert all_released(fake)
    tally.record("sideband faults", tried=1, malformed_frames=len(malformed), handshakes=handshakes(fake))


def test_a_stalled_socket_is_given_up_before_the_deadline(fake: FakeOpenAI, env: pytest.MonkeyPatch) -> None:
    fake.register_call(CALL_ID)
    fake.sideband_script = []  # session.created, then silence
    fake.sideband_hold_seconds = -1  # the server never closes
    result, elapsed = run(remaining_seconds=11.0)  # 10 s margin: about 1 s of budget
    assert result == {"call_id": CALL_ID, "outcome": "deadline", "events": 1}
    assert lease_settled("deadline")
    assert 0.8 < elapsed < 4
    assert all_released(fake)  # the worker closed its side
    tally.record("sideband faults", tried=1, handshakes=handshakes(fake))


def test_server_gone_mid_call_is_a_normal_end(fake: FakeOpenAI, env: pytest.MonkeyPatch) -> None:
    fake.register_call(CALL_ID)
    fake.sideband_script = [response_created_event("resp_1")]
    fake.sideband_hold_seconds = 0.0  # closes (1000) right after the script
    result, elapsed = run()
    assert result["outcome"] == "closed"
    assert lease_settled("closed")
    assert elapsed < 3
    assert handshakes(fake) == 1  # no reconnect loop
    tally.record("sideband faults", tried=1, handshakes=handshakes(fake))
