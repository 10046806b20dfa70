"""POST /sip through the Lambda handler: Standard Webhooks verification, accept, observer start."""

from __future__ import annotations

import base64
import json

import pytest

import sip_app
from shared import metrics
from tests.conftest import (
    API_KEY,
    SIGNING_SECRET,
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
from tests.fake_openai import FakeOpenAI
from tests.samples import DEFAULT_INSTRUCTIONS, default_session_tools

CALL_ID = "rtc_sip0123456789abcdef"


def webhook(body: bytes, *, base64_encoded: bool = True) -> dict[str, object]:
    return sign(with_body(load_event("sip"), body, base64_encoded=base64_encoded))


@pytest.mark.parametrize("base64_encoded", [True, False])
def test_incoming_call_is_accepted_and_observed(
    fake: FakeOpenAI, launcher: RecordingLauncher, base64_encoded: bool
) -> None:
    fake.register_call(CALL_ID)
    result = sip_app.handler(
        webhook(incoming_call_body(CALL_ID), base64_encoded=base64_encoded), FakeContext()
    )
    assert result["statusCode"] == 200
    assert result.get("body", "") == ""

    (accept,) = fake.requests_to(f"/realtime/calls/{CALL_ID}/accept")
    assert accept.headers["authorization"] == f"Bearer {API_KEY}"
    assert accept.json == {
        "type": "realtime",
        "model": "gpt-realtime-2.1",
        "instructions": DEFAULT_INSTRUCTIONS,
        "audio": {
            "input": {
                "noise_reduction": {"type": "near_field"},
                "transcription": {"model": "gpt-live-transcribe"},
            },
            "output": {"voice": "marin"},
        },
        **default_session_tools(),
    }
    assert [(r.call_id, r.source) for r in launcher.requests] == [(CALL_ID, "sip")]


def test_the_sample_event_verifies_once_signed(fake: FakeOpenAI, launcher: RecordingLauncher) -> None:
    event = sign(load_event("sip"))  # the committed sample, body untouched, base64 as API Gateway sends it
    call_id = json.loads(base64.b64decode(event["body"]))["data"]["call_id"]
    fake.register_call(call_id)
    assert sip_app.handler(event, FakeContext())["statusCode"] == 200
    assert len(fake.requests_to(f"/realtime/calls/{call_id}/accept")) == 1


def test_other_event_types_are_ignored_with_200(fake: FakeOpenAI, launcher: RecordingLauncher) -> None:
    body = incoming_call_body(CALL_ID, event_type="realtime.call.ended")
    assert sip_app.handler(webhook(body), FakeContext())["statusCode"] == 200
    assert fake.requests == []
    assert launcher.requests == []


def live_event(session_id: str) -> bytes:
    """OpenAI's GPT-Live API announcing the same pending SIP call (`live.transport.incoming`)."""
    return live_incoming_call_body(session_id)


def test_a_live_event_for_a_realtime_profile_is_left_to_realtime_with_200(
    fake: FakeOpenAI, launcher: RecordingLauncher, logs: LogCapture, capsys: pytest.CaptureFixture[str]
) -> None:
    pending = fake.live.register_pending_sip_call(call_id=CALL_ID)
    assert pending.session_id is not None
    assert sip_app.handler(webhook(live_event(pending.session_id)), FakeContext())["statusCode"] == 200
    assert fake.requests == []  # not even a reject: a reject would win the call
    assert launcher.requests == []
    (left,) = logs.messages("call left to the other API")
    assert (left["api"], left["profile_api"], left["call_id"]) == ("live", "realtime", pending.session_id)
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    (point,) = [doc for doc in emf if metrics.WEBHOOKS_IGNORED in doc]
    assert point["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service", "reason", "api"]]
    assert (point["reason"], point["api"]) == ("other_api", "live")


def test_other_events_count_as_ignored_for_their_type(
    fake: FakeOpenAI, launcher: RecordingLauncher, capsys: pytest.CaptureFixture[str]
) -> None:
    body = incoming_call_body(CALL_ID, event_type="live.transport.connected")
    assert sip_app.handler(webhook(body), FakeContext())["statusCode"] == 200
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    (point,) = [doc for doc in emf if metrics.WEBHOOKS_IGNORED in doc]
    assert point["reason"] == "event_type"
    assert fake.requests == []


@pytest.mark.parametrize("live_first", [True, False])
def test_one_call_announced_by_both_apis_is_accepted_once_through_realtime(
    fake: FakeOpenAI, launcher: RecordingLauncher, live_first: bool
) -> None:
    pending = fake.live.register_pending_sip_call(call_id=CALL_ID)
    assert pending.session_id is not None
    deliveries = [webhook(incoming_call_body(CALL_ID)), webhook(live_event(pending.session_id))]
    for event in reversed(deliveries) if live_first else deliveries:
        assert sip_app.handler(event, FakeContext())["statusCode"] == 200
    (accept,) = fake.requests
    assert accept.path == f"/v1/realtime/calls/{CALL_ID}/accept"
    assert pending.decision == ("realtime", "accept")
    assert [r.call_id for r in launcher.requests] == [CALL_ID]


def test_an_unsigned_live_event_is_401(fake: FakeOpenAI, launcher: RecordingLauncher) -> None:
    event = webhook(live_event("live_u0_unsigned"))
    headers_of(event)["webhook-signature"] = "v1,AAAA"
    assert sip_app.handler(event, FakeContext())["statusCode"] == 401


def test_call_gone_before_accept_is_200_without_observer(
    fake: FakeOpenAI, launcher: RecordingLauncher
) -> None:
    # Not registered with the fake: accept answers 404, as OpenAI does once the caller hung up.
    assert sip_app.handler(webhook(incoming_call_body(CALL_ID)), FakeContext())["statusCode"] == 200
    assert len(fake.requests_to("/accept")) == 1
    assert launcher.requests == []


def test_accept_failure_is_502_so_openai_redelivers(fake: FakeOpenAI, launcher: RecordingLauncher) -> None:
    fake.register_call(CALL_ID)
    fake.fail_next("/accept", 500, times=3)  # every one of the 3 attempts
    result = sip_app.handler(webhook(incoming_call_body(CALL_ID)), FakeContext())
    assert result["statusCode"] == 502
    assert len(fake.requests_to("/accept")) == 3
    assert launcher.requests == []


def tamper(event: dict[str, object]) -> dict[str, object]:
    raw = bytearray(base64.b64decode(str(event["body"])))
    raw[10] ^= 1
    event["body"] = base64.b64encode(bytes(raw)).decode()
    return event


def headers_of(event: dict[str, object]) -> dict[str, str]:
    headers = event["headers"]
    assert isinstance(headers, dict)
    return headers


def drop(name: str) -> object:
    def change(event: dict[str, object]) -> dict[str, object]:
        headers_of(event).pop(name)
        return event

    return change


def set_header(name: str, value: str) -> object:
    def change(event: dict[str, object]) -> dict[str, object]:
        headers_of(event)[name] = value
        return event

    return change


@pytest.mark.parametrize(
    "forge",
    [
        tamper,
        drop("webhook-id"),
        drop("webhook-timestamp"),
        drop("webhook-signature"),
        set_header("webhook-signature", "v1"),  # no comma
        set_header("webhook-signature", "v1,!!!not-base64!!!"),
        set_header("webhook-signature", "v1,AAAA"),
        set_header("webhook-timestamp", "1000000000"),  # far in the past
        set_header("webhook-id", "msg_other"),  # id is part of what is signed
    ],
)
def test_forged_webhooks_are_401_with_no_upstream_call(
    fake: FakeOpenAI, launcher: RecordingLauncher, forge: object
) -> None:
    fake.register_call(CALL_ID)
    event = webhook(incoming_call_body(CALL_ID))
    assert callable(forge)
    result = sip_app.handler(forge(event), FakeContext())
    assert result["statusCode"] == 401
    assert response_json(result) == {"error": "Invalid signature"}
    assert fake.requests == []
    assert launcher.requests == []


def test_wrong_secret_is_401(fake: FakeOpenAI, launcher: RecordingLauncher) -> None:
    other = "whsec_" + base64.b64encode(b"another-secret-another-secret!!").decode()
    event = sign(with_body(load_event("sip"), incoming_call_body(CALL_ID)), other)
    assert sip_app.handler(event, FakeContext())["statusCode"] == 401
    assert fake.requests == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "Webhook body is not a JSON event"),
        (b'["a list"]', "Webhook body is not a JSON event"),
        (json.dumps({"type": "realtime.call.incoming", "data": {}}).encode(), "data.call_id"),
        (
            json.dumps({"type": "realtime.call.incoming", "data": {"call_id": "x/../y"}}).encode(),
            "data.call_id",
        ),
    ],
)
def test_signed_but_malformed_events_are_400(
    fake: FakeOpenAI, launcher: RecordingLauncher, body: bytes, reason: str
) -> None:
    result = sip_app.handler(webhook(body), FakeContext())
    assert result["statusCode"] == 400
    assert reason in response_json(result)["error"]
    assert fake.requests == []


def test_missing_signing_secret_is_500(
    fake: FakeOpenAI, launcher: RecordingLauncher, env: pytest.MonkeyPatch
) -> None:
    env.delenv("OPENAI_SIGNING_SECRET")
    from shared import deps

    deps.reset()
    result = sip_app.handler(webhook(incoming_call_body(CALL_ID)), FakeContext())
    assert result["statusCode"] == 500
    assert response_json(result) == {"error": "Server misconfigured: OPENAI_SIGNING_SECRET is not set"}
    assert fake.requests == []


def test_raw_base64_secret_without_prefix_works(
    fake: FakeOpenAI, launcher: RecordingLauncher, env: pytest.MonkeyPatch
) -> None:
    env.setenv("OPENAI_SIGNING_SECRET", SIGNING_SECRET.removeprefix("whsec_"))
    from shared import deps

    deps.reset()
    fake.register_call(CALL_ID)
    assert sip_app.handler(webhook(incoming_call_body(CALL_ID)), FakeContext())["statusCode"] == 200
