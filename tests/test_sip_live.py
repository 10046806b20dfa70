"""POST /sip for GPT-Live calls, through the Lambda handler (and the local stack) against the fake.

One pending SIP call fires a Realtime and a Live webhook with different ids (the fake's
`register_pending_sip_call`); the first accept or reject through either API decides it. The call's
agent profile picks the API, and only that API's webhook may decide.
"""

from __future__ import annotations

import base64
import itertools
import json
import random
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai.types.live.session_accept_params import SessionAcceptParams
from openai.types.live.session_reject_params import SessionRejectParams
from openai.types.webhooks import LiveCallIncomingWebhookEvent, LiveTransportIncomingWebhookEvent

import sip_app
from shared import deps, limits, metrics
from shared.policy import BUSY, DECLINE
from tests.conftest import (
    FakeContext,
    LogCapture,
    RecordingLauncher,
    incoming_call_body,
    live_incoming_call_body,
    load_event,
    response_json,
    sign,
    with_body,
)
from tests.fake_live import PendingSipCall
from tests.fake_openai import FakeOpenAI
from tests.sdk_strict import assert_strict
from tests.test_sip_exactly_once import dynamo_env

CALLER = "sip:+15551230000@example.com"
LIVE_NUMBER, REALTIME_NUMBER = "+12025550100", "+12025550199"
PROFILES = f"""
agents:
  default:
    instructions: You are the front desk.
  phone:
    numbers: ["{LIVE_NUMBER}"]
    api: live
    instructions: Speak slowly.
"""
SDK_EVENTS = {
    "live.transport.incoming": LiveTransportIncomingWebhookEvent,
    "live.call.incoming": LiveCallIncomingWebhookEvent,
}


def live_body(session_id: str, event_type: str = "live.transport.incoming", **fields: Any) -> bytes:
    """A Live webhook body, held strictly to the SDK's type of its event."""
    body = live_incoming_call_body(session_id, event_type, **fields)
    assert_strict(SDK_EVENTS[event_type], json.loads(body))
    return body


def webhook(body: bytes, *, webhook_id: str | None = None) -> dict[str, Any]:
    return sign(with_body(load_event("sip_live"), body), webhook_id=webhook_id)


def deliver(event: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = sip_app.handler(json.loads(json.dumps(event)), FakeContext())
    return result


def emitted(capsys: pytest.CaptureFixture[str], name: str) -> list[dict[str, Any]]:
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    return [doc for doc in documents if name in doc]


@pytest.fixture
def live(env: pytest.MonkeyPatch, launcher: RecordingLauncher) -> RecordingLauncher:
    """The default profile uses GPT-Live (VOICE_API=live)."""
    env.setenv("VOICE_API", "live")
    deps.reset()
    return launcher


def pending_call(fake: FakeOpenAI) -> tuple[PendingSipCall, str, str]:
    pending = fake.live.register_pending_sip_call()
    assert pending.call_id is not None
    assert pending.session_id is not None
    return pending, pending.call_id, pending.session_id


# ----------------------------------------------------------------- accepted once, through its API


def test_a_live_profile_s_call_is_accepted_through_live_and_observed(
    fake: FakeOpenAI, live: RecordingLauncher, logs: LogCapture
) -> None:
    pending, _, session_id = pending_call(fake)
    assert deliver(webhook(live_body(session_id, from_header=CALLER)))["statusCode"] == 200

    (accept,) = fake.requests
    assert accept.path == f"/v1/live/sessions/{session_id}/accept"
    assert_strict(SessionAcceptParams, accept.json)  # no unknown keys, `session.type` "live"
    assert accept.json == json.loads(deps.sip_accept_body("default"))
    assert accept.json["session"]["type"] == "live"
    assert accept.json["session"]["model"] == deps.settings().live_model
    assert pending.decision == ("live", "accept")
    assert fake.live.sessions[session_id].status == "active"
    (observed,) = live.requests
    assert (observed.call_id, observed.source, observed.agent) == (session_id, "sip", "default")
    assert observed.caller == "+1555***0000"
    (accepted,) = logs.messages("call accepted")
    assert (accepted["api"], accepted["call_id"]) == ("live", session_id)


def test_the_deprecated_live_call_incoming_works_too(fake: FakeOpenAI, live: RecordingLauncher) -> None:
    _, _, session_id = pending_call(fake)
    assert deliver(webhook(live_body(session_id, "live.call.incoming")))["statusCode"] == 200
    assert len(fake.requests_to(f"/live/sessions/{session_id}/accept")) == 1
    assert [r.call_id for r in live.requests] == [session_id]


ORDERS = list(itertools.permutations(["realtime", "live", "live_deprecated"]))


@pytest.mark.parametrize("api", ["live", "realtime"])
@pytest.mark.parametrize("order", ORDERS, ids="-".join)
def test_every_webhook_of_one_call_duplicated_in_any_order_accepts_once_through_the_profile_s_api(
    fake: FakeOpenAI,
    launcher: RecordingLauncher,
    env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    api: str,
    order: tuple[str, ...],
) -> None:
    env.setenv("VOICE_API", api)
    deps.reset()
    pending, call_id, session_id = pending_call(fake)
    events = {
        "realtime": webhook(incoming_call_body(call_id)),
        "live": webhook(live_body(session_id)),
        "live_deprecated": webhook(live_body(session_id, "live.call.incoming")),
    }
    for name in order:
        for _ in range(2):  # OpenAI redelivers: the same webhook-id twice
            assert deliver(events[name])["statusCode"] == 200

    owner = call_id if api == "realtime" else session_id
    decisions = fake.requests_to("/accept") + fake.requests_to("/reject")
    assert [r.path for r in decisions][:1] == [
        f"/v1/realtime/calls/{call_id}/accept"
        if api == "realtime"
        else f"/v1/live/sessions/{session_id}/accept"
    ]
    assert pending.decision == (api, "accept")
    assert [r.call_id for r in launcher.requests] == [owner]  # one observer, for the owner's id
    assert not fake.requests_to("/realtime/" if api == "live" else "/live/")  # the other API: untouched
    ignored = emitted(capsys, metrics.WEBHOOKS_IGNORED)
    other = "realtime" if api == "live" else "live"
    assert {(p["reason"], p["api"]) for p in ignored} == {("other_api", other)}
    if api == "live":
        # Two Live events (current and deprecated name): the second accept lost quietly, once.
        assert len(decisions) == 2
    else:
        assert len(decisions) == 1


def test_routing_by_the_dialed_number_picks_the_api(
    fake: FakeOpenAI, launcher: RecordingLauncher, env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "agents.yaml").write_text(PROFILES)
    env.setenv("AGENTS_FILE", str(tmp_path / "agents.yaml"))
    deps.reset()
    to_live, to_realtime = f"sip:{LIVE_NUMBER}@example.com", f"sip:{REALTIME_NUMBER}@example.com"
    first, first_rtc, first_live = pending_call(fake)
    second, second_rtc, second_live = pending_call(fake)
    for event in (
        webhook(incoming_call_body(first_rtc, to_header=to_live)),
        webhook(live_body(first_live, to_header=to_live)),
        webhook(live_body(second_live, to_header=to_realtime)),
        webhook(incoming_call_body(second_rtc, to_header=to_realtime)),
    ):
        assert deliver(event)["statusCode"] == 200
    assert (first.decision, second.decision) == (("live", "accept"), ("realtime", "accept"))
    (live_accept,) = fake.requests_to(f"/live/sessions/{first_live}/accept")
    assert (live_accept.json or {})["session"]["instructions"] == "Speak slowly."
    assert [(r.call_id, r.agent) for r in launcher.requests] == [
        (first_live, "phone"),
        (second_rtc, "default"),
    ]


# ----------------------------------------------------------------- decisions already made


def test_decision_already_made_is_a_quiet_200_never_retried(
    fake: FakeOpenAI, live: RecordingLauncher, env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env.setenv("MAX_CALL_MINUTES_PER_DAY", "60")
    env.setenv("MAX_CONCURRENT_CALLS", "2")
    deps.reset()
    pending, call_id, session_id = pending_call(fake)
    # Someone else decided the call through Realtime first.
    decided = httpx.post(
        f"{fake.base_url}/realtime/calls/{call_id}/accept",
        json=deps.sessions()["sip"].to_json(),
        headers={"Authorization": f"Bearer {deps.secret_store().api_key()}"},
    )
    assert decided.status_code == 200
    capsys.readouterr()
    event = webhook(live_body(session_id))
    assert deliver(event)["statusCode"] == 200
    assert len(fake.requests_to(f"/live/sessions/{session_id}/accept")) == 1  # no retry of a 409
    assert pending.decision == ("realtime", "accept")
    assert live.requests == []
    (point,) = emitted(capsys, metrics.DUPLICATES_SUPPRESSED)
    assert (point["kind"], point["api"]) == ("decision", "live")
    assert not emitted(capsys, metrics.ACCEPT_FAILURES)
    # Its minutes went back; the delivery is done: a redelivery changes nothing.
    store = deps.call_store()
    assert store.seconds_used(f"limit#minutes#{time.strftime('%Y-%m-%d', time.gmtime())}") == 0
    assert deliver(event)["statusCode"] == 200
    assert len(fake.requests_to("/accept")) == 2  # the other API's and ours, once


def test_our_own_unanswered_accept_that_landed_counts_as_accepted(
    fake: FakeOpenAI, live: RecordingLauncher, env: pytest.MonkeyPatch, logs: LogCapture
) -> None:
    """The first attempt times out on our side but lands; the retry hears decision_already_made: that
    decision is ours, so the call is observed (an unobserved call would have no tools nor limits)."""
    env.setenv("ACCEPT_ATTEMPT_TIMEOUT_SECONDS", "0.5")
    deps.reset()
    env.setattr(random, "uniform", lambda low, high: 0.8)  # the retry comes after the first decided
    pending, _, session_id = pending_call(fake)
    fake.delay_next("/accept", 1.0)
    assert deliver(webhook(live_body(session_id)))["statusCode"] == 200
    assert len(fake.requests_to(f"/live/sessions/{session_id}/accept")) == 2
    assert pending.decision == ("live", "accept")
    assert logs.messages("an earlier accept attempt decided the call")
    assert [r.call_id for r in live.requests] == [session_id]


# ----------------------------------------------------------------- rejects carry their status


def fill_slots(settings_limit: int) -> None:
    store = deps.call_store()
    for n in range(settings_limit):
        assert store.take_slot(f"rtc_busy{n}", limit=settings_limit, until=time.time() + 600)


def use_up_minutes() -> None:
    assert limits.reserve(deps.call_store(), deps.settings()) is not None


REFUSALS: dict[str, tuple[dict[str, str], int]] = {
    "denied caller": ({"DENIED_CALLERS": "+15551230000"}, DECLINE),
    "not on the allow list": ({"ALLOWED_CALLERS": "+1999*"}, DECLINE),
    "concurrency cap": ({"MAX_CONCURRENT_CALLS": "1"}, BUSY),
    "daily minutes": ({"MAX_CALL_MINUTES_PER_DAY": "1", "MAX_CALL_SECONDS": "60"}, BUSY),
}


@pytest.mark.parametrize("api", ["live", "realtime"])
@pytest.mark.parametrize("refusal", list(REFUSALS))
def test_refused_calls_are_rejected_with_their_sip_status_on_either_api(
    fake: FakeOpenAI,
    launcher: RecordingLauncher,
    env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    api: str,
    refusal: str,
) -> None:
    settings, status = REFUSALS[refusal]
    env.setenv("VOICE_API", api)
    for name, value in settings.items():
        env.setenv(name, value)
    deps.reset()
    if refusal == "concurrency cap":
        fill_slots(1)
    if refusal == "daily minutes":
        use_up_minutes()
    pending, call_id, session_id = pending_call(fake)
    capsys.readouterr()
    body = incoming_call_body(call_id, from_header=CALLER) if api == "realtime" else live_body(session_id)
    assert deliver(webhook(body))["statusCode"] == 200

    path = f"/realtime/calls/{call_id}/reject" if api == "realtime" else f"/live/sessions/{session_id}/reject"
    (reject,) = fake.requests_to(path)
    assert reject.json == {"status_code": status}  # sent on Realtime too, where it is optional
    if api == "live":
        assert_strict(SessionRejectParams, reject.json)
    assert not fake.requests_to("/accept")
    assert pending.decision == (api, "reject")
    assert launcher.requests == []
    (point,) = emitted(capsys, metrics.CALLS_REJECTED)
    assert (point["sip_status"], point["api"]) == (str(status), api)


def test_a_reject_that_loses_to_an_earlier_decision_is_quiet(
    fake: FakeOpenAI, live: RecordingLauncher, env: pytest.MonkeyPatch
) -> None:
    env.setenv("DENIED_CALLERS", "+15551230000")
    deps.reset()
    pending, _, session_id = pending_call(fake)
    pending.decision = ("realtime", "accept")  # decided elsewhere before our reject
    assert deliver(webhook(live_body(session_id)))["statusCode"] == 200
    assert len(fake.requests_to("/reject")) == 1


# ----------------------------------------------------------------- input checks


@pytest.mark.parametrize("event_type", list(SDK_EVENTS))
def test_live_webhooks_with_a_bad_signature_get_the_bare_401(
    fake: FakeOpenAI, live: RecordingLauncher, event_type: str
) -> None:
    _, _, session_id = pending_call(fake)
    event = webhook(live_body(session_id, event_type))
    event["headers"]["webhook-signature"] = "v1,AAAA"
    result = deliver(event)
    assert result["statusCode"] == 401
    assert response_json(result) == {"error": "Invalid signature"}
    assert fake.requests == []
    assert live.requests == []


@pytest.mark.parametrize(
    "data",
    [{}, {"session_id": "rtc_not_a_live_id"}, {"session_id": "live_a/../b"}, {"session_id": 5}],
)
def test_a_live_webhook_without_a_session_id_is_400(
    fake: FakeOpenAI, live: RecordingLauncher, data: dict[str, Any]
) -> None:
    body = json.dumps({"type": "live.transport.incoming", "data": {"type": "sip", **data}}).encode()
    result = deliver(webhook(body))
    assert result["statusCode"] == 400
    assert "data.session_id" in response_json(result)["error"]
    assert fake.requests == []


def test_a_transport_other_than_sip_is_ignored(fake: FakeOpenAI, live: RecordingLauncher) -> None:
    _, _, session_id = pending_call(fake)
    payload = json.loads(live_body(session_id))
    payload["data"]["type"] = "webrtc"
    assert deliver(webhook(json.dumps(payload).encode()))["statusCode"] == 200
    assert fake.requests == []


def test_plain_rtp_media_is_logged_as_a_warning_and_the_call_goes_on(
    fake: FakeOpenAI, live: RecordingLauncher, logs: LogCapture
) -> None:
    _, _, session_id = pending_call(fake)
    assert deliver(webhook(live_body(session_id, media_security="rtp")))["statusCode"] == 200
    (warning,) = logs.messages("SIP call without SRTP: GPT-Live requires SRTP, the call may carry silence")
    assert (warning["level"], warning["call_id"]) == ("WARNING", session_id)
    assert len(fake.requests_to("/accept")) == 1
    # SRTP (or unknown) media: no warning.
    _, _, other = pending_call(fake)
    assert deliver(webhook(live_body(other, media_security=None)))["statusCode"] == 200
    assert (
        len(logs.messages("SIP call without SRTP: GPT-Live requires SRTP, the call may carry silence")) == 1
    )


def test_the_sample_event_is_a_strict_sdk_event_and_verifies_once_signed(
    fake: FakeOpenAI, live: RecordingLauncher
) -> None:
    event = sign(load_event("sip_live"))  # body untouched, base64 as API Gateway sends it
    payload = json.loads(base64.b64decode(event["body"]))
    assert_strict(LiveTransportIncomingWebhookEvent, payload)
    fake.live.register_pending_sip_call(call_id="", session_id=payload["data"]["session_id"])
    assert deliver(event)["statusCode"] == 200
    assert len(fake.requests_to(f"/live/sessions/{payload['data']['session_id']}/accept")) == 1


# ----------------------------------------------------------------- storms and the local stack


@pytest.mark.parametrize("store", ["memory", "dynamodb"])
def test_a_storm_of_both_apis_webhooks_accepts_once_through_live(
    fake: FakeOpenAI,
    live: RecordingLauncher,
    env: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    store: str,
) -> None:
    if store == "dynamodb":
        dynamo_env(env, request.getfixturevalue("moto_endpoint"))
        deps.install_local_launcher(live)
    pending, call_id, session_id = pending_call(fake)
    fake.delay_next("/accept", 0.3)  # the first accept is still running while the rest arrive
    events = [
        webhook(incoming_call_body(call_id)),
        webhook(live_body(session_id)),
        webhook(live_body(session_id, "live.call.incoming")),
    ]
    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = [r["statusCode"] for r in pool.map(deliver, events * 4)]
    assert set(statuses) <= {200, 409}  # 409: a duplicate whose first delivery is still running
    assert len(fake.requests_to(f"/live/sessions/{session_id}/accept")) <= 2  # one per Live event name
    assert not fake.requests_to("/realtime/")
    assert pending.decision == ("live", "accept")
    assert [r.call_id for r in live.requests] == [session_id]


def test_the_local_stack_accepts_a_live_call_once(fake: FakeOpenAI, live: RecordingLauncher) -> None:
    from local_api.server import LocalServer, create_gateway

    pending, call_id, session_id = pending_call(fake)
    with LocalServer(create_gateway()) as server:
        deps.install_local_launcher(live)  # record the observer start instead of running it
        for body in (incoming_call_body(call_id), live_body(session_id)):
            event = webhook(body)
            headers = {k: v for k, v in event["headers"].items() if k.startswith("webhook-")}
            headers["content-type"] = "application/json"
            response = httpx.post(
                f"{server.url}/sip", content=base64.b64decode(event["body"]), headers=headers
            )
            assert response.status_code == 200
    assert [r.path for r in fake.requests] == [f"/v1/live/sessions/{session_id}/accept"]
    assert pending.decision == ("live", "accept")
    assert [r.call_id for r in live.requests] == [session_id]
