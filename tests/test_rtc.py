"""POST /rtc through the Lambda handler (events/rtc*.json) against the fake OpenAI."""

from __future__ import annotations

import json
from typing import Any

import pytest

import rtc_app
from shared import deps
from shared.settings import DEFAULT_REALTIME_MODEL, DEFAULT_TRANSCRIPTION_MODEL
from tests.conftest import (
    API_KEY,
    FakeContext,
    LogCapture,
    RecordingLauncher,
    body_of,
    load_event,
    response_json,
    with_body,
)
from tests.fake_openai import FakeOpenAI
from tests.samples import DEFAULT_INSTRUCTIONS, default_session_tools


def test_offer_becomes_a_call_and_an_observer(fake: FakeOpenAI, launcher: RecordingLauncher) -> None:
    event = load_event("rtc")
    result = rtc_app.handler(event, FakeContext())

    assert result["statusCode"] == 200
    assert result["isBase64Encoded"] is False  # SDP goes back as plain text
    assert result["headers"]["content-type"].startswith("application/sdp")
    assert result["body"].startswith("v=0")

    (upstream,) = fake.requests_to("/realtime/calls")
    assert upstream.headers["authorization"] == f"Bearer {API_KEY}"
    assert upstream.form is not None
    assert upstream.form["sdp"] == body_of(event).decode()
    session = json.loads(upstream.form["session"])
    assert session == {
        "type": "realtime",
        "model": DEFAULT_REALTIME_MODEL,
        "instructions": DEFAULT_INSTRUCTIONS,
        "audio": {
            "input": {
                "noise_reduction": {"type": "near_field"},
                "transcription": {"model": DEFAULT_TRANSCRIPTION_MODEL},
            },
            "output": {"voice": "marin"},
        },
        **default_session_tools(),
    }
    (observed,) = launcher.requests
    assert observed.source == "webrtc"
    assert observed.call_id.startswith("rtc_")
    assert observed.call_id in fake.known_calls


def test_video_flag_is_accepted(fake: FakeOpenAI, launcher: RecordingLauncher) -> None:
    result = rtc_app.handler(load_event("rtc_video"), FakeContext())
    assert result["statusCode"] == 200
    assert len(launcher.requests) == 1


def _with_video(value: str) -> dict[str, Any]:
    event = load_event("rtc_video")
    event["rawQueryString"] = f"video={value}"
    event["queryStringParameters"] = {"video": value}
    return event


@pytest.mark.parametrize("value", ["maybe", "", "2"])
def test_a_video_flag_that_is_not_a_boolean_is_refused_before_any_upstream_call(
    fake: FakeOpenAI, launcher: RecordingLauncher, value: str
) -> None:
    result = rtc_app.handler(_with_video(value), FakeContext())
    assert result["statusCode"] == 400
    assert response_json(result)["error"] == "Invalid request: query.video must be true or false"
    assert fake.requests_to("/realtime/calls") == []
    assert launcher.requests == []


@pytest.mark.parametrize("value", ["true", "1", "on", "FALSE", "no"])
def test_video_flag_takes_the_usual_boolean_spellings(
    fake: FakeOpenAI, launcher: RecordingLauncher, value: str
) -> None:
    assert rtc_app.handler(_with_video(value), FakeContext())["statusCode"] == 200


def test_base64_encoded_offer_is_decoded(fake: FakeOpenAI, launcher: RecordingLauncher) -> None:
    event = load_event("rtc")
    offer = body_of(event)
    result = rtc_app.handler(with_body(event, offer, base64_encoded=True), FakeContext())
    assert result["statusCode"] == 200
    form = fake.requests_to("/realtime/calls")[0].form
    assert form is not None
    assert form["sdp"] == offer.decode()


@pytest.mark.parametrize(
    ("content_type", "body", "status", "reason"),
    [
        ("application/sdp", b"", 400, "Body is not an SDP offer (must start with v=0)"),
        ("application/sdp", b"hello", 400, "Body is not an SDP offer (must start with v=0)"),
        ("application/sdp", b"v=0\r\n\xff\xfe", 400, "SDP offer must be UTF-8 text"),
        ("application/json", b'{"sdp": "v=0"}', 415, "Content-Type must be application/sdp"),
        ("", b"v=0\r\n", 415, "Content-Type must be application/sdp"),
        ("application/sdp", b"v=0\r\n" + b"a=x\r\n" * 20000, 413, "Body larger than 65536 bytes"),
    ],
)
def test_bad_offers_get_a_clear_4xx_and_no_upstream_call(
    fake: FakeOpenAI, launcher: RecordingLauncher, content_type: str, body: bytes, status: int, reason: str
) -> None:
    event = with_body(load_event("rtc"), body, base64_encoded=True)
    event["headers"]["content-type"] = content_type
    result = rtc_app.handler(event, FakeContext())
    assert result["statusCode"] == status
    assert response_json(result) == {"error": reason}
    assert fake.requests == []
    assert launcher.requests == []


@pytest.mark.parametrize(
    ("upstream_status", "body", "reason"),
    [
        (
            400,
            {"error": {"message": "Invalid SDP offer", "type": "invalid_request_error"}},
            "Invalid SDP offer",
        ),
        (500, "oops", "Internal Server Error"),
        (429, {"error": {"message": "Rate limit reached"}}, "Rate limit reached"),
    ],
)
def test_upstream_errors_become_502_with_a_short_reason(
    fake: FakeOpenAI, launcher: RecordingLauncher, upstream_status: int, body: object, reason: str
) -> None:
    fake.fail_next("/realtime/calls", upstream_status, body)
    result = rtc_app.handler(load_event("rtc"), FakeContext())
    assert result["statusCode"] == 502
    assert response_json(result) == {"error": f"OpenAI answered {upstream_status}: {reason}"}
    assert launcher.requests == []


# What OpenAI answers an offer it cannot use (quoted in github.com/espressif/esp-webrtc-solution/issues/17).
REFUSED_OFFER = {
    "error": {
        "message": "Invalid SDP offer. Please try again with a WHIP-compliant offer.",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_offer",
    }
}


def test_an_offer_openai_refuses_is_a_400_in_our_words(fake: FakeOpenAI, launcher: RecordingLauncher) -> None:
    fake.fail_next("/realtime/calls", 400, REFUSED_OFFER)
    result = rtc_app.handler(load_event("rtc"), FakeContext())
    assert result["statusCode"] == 400
    refusal = REFUSED_OFFER["error"]["message"]
    assert response_json(result) == {"error": f"OpenAI refused the SDP offer: {refusal}"}
    assert len(fake.requests_to("/realtime/calls")) == 1
    assert launcher.requests == []


def test_the_webrtc_fake_refuses_a_malformed_offer_and_rtc_says_so(
    webrtc_fake: FakeOpenAI, launcher: RecordingLauncher, env: pytest.MonkeyPatch
) -> None:
    env.setenv("OPENAI_BASE_URL", webrtc_fake.base_url)
    deps.reset()
    event = with_body(load_event("rtc"), b"v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n")  # no ICE, no DTLS
    result = rtc_app.handler(event, FakeContext())
    assert result["statusCode"] == 400
    reason = response_json(result)["error"]
    assert reason.startswith("OpenAI refused the SDP offer: Invalid SDP offer")
    assert launcher.requests == []


def test_upstream_timeout_is_504(
    fake: FakeOpenAI, launcher: RecordingLauncher, env: pytest.MonkeyPatch
) -> None:
    env.setenv("UPSTREAM_TIMEOUT_SECONDS", "0.3")
    from shared import deps

    deps.reset()
    fake.delay_next("/realtime/calls", 2.0)
    result = rtc_app.handler(load_event("rtc"), FakeContext())
    assert result["statusCode"] == 504
    assert response_json(result) == {"error": "OpenAI did not answer in time"}
    assert launcher.requests == []


def test_missing_key_is_500_naming_the_variable(
    fake: FakeOpenAI, launcher: RecordingLauncher, env: pytest.MonkeyPatch, logs: LogCapture
) -> None:
    env.delenv("OPENAI_API_KEY")
    from shared import deps

    deps.reset()
    result = rtc_app.handler(load_event("rtc"), FakeContext())
    assert result["statusCode"] == 500
    assert response_json(result) == {"error": "Server misconfigured: OPENAI_API_KEY is not set"}
    assert fake.requests == []
    (failure,) = logs.messages("request failed")  # and the log line names it
    assert failure["reason"] == "Server misconfigured: OPENAI_API_KEY is not set"
    assert failure["status"] == 500
