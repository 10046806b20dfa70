"""OpenAIClient's GPT-Live calls on httpx.MockTransport: exact requests, the WebRTC create answer,
`decision_already_made` told apart (and never retried), error mapping as for Realtime."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from openai.types.live.live_create_response import LiveCreateResponse

from shared.calls import is_retryable
from shared.errors import UpstreamError, UpstreamTimeout
from shared.live_session import accept_body, live_session, webrtc_create_body
from shared.settings import Settings
from shared.upstream import DecisionAlreadyMade
from tests.test_upstream import SDP_ANSWER, Keys, make_client

SESSION_ID = "live_u0_479a275623b54bdb9b6fbae2f7cbd408"
OFFER = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\n"
LIVE = Settings(voice_api="live", realtime_instructions="Be brief.")


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200)


def openai_error(status: int, code: str, message: str = "no") -> httpx.Response:
    return httpx.Response(
        status, json={"error": {"message": message, "type": "invalid_request_error", "code": code}}
    )


def test_call_control_posts_json_to_the_live_session_paths() -> None:
    client, seen = make_client(ok)
    body = accept_body(live_session(LIVE, "sip")).to_json()

    async def run() -> None:
        await client.accept_live_session(SESSION_ID, body)
        await client.reject_live_session(SESSION_ID, 486)
        await client.refer_live_session(SESSION_ID, "tel:+12025550199")
        await client.hangup_live_session(SESSION_ID)

    asyncio.run(run())
    assert [(r.method, r.url.path) for r in seen] == [
        ("POST", f"/v1/live/sessions/{SESSION_ID}/accept"),
        ("POST", f"/v1/live/sessions/{SESSION_ID}/reject"),
        ("POST", f"/v1/live/sessions/{SESSION_ID}/refer"),
        ("POST", f"/v1/live/sessions/{SESSION_ID}/hangup"),
    ]
    assert json.loads(seen[0].content) == body
    assert json.loads(seen[1].content) == {"status_code": 486}
    assert json.loads(seen[2].content) == {"target_uri": "tel:+12025550199"}
    assert seen[3].content == b""  # hangup takes no body
    assert all(r.headers["authorization"] == "Bearer sk-one" for r in seen)
    assert seen[0].headers["content-type"] == "application/json"


@pytest.mark.parametrize("session_id", ["rtc_abc123", "live_", "live_../x", ""])
def test_a_non_live_id_never_reaches_openai(session_id: str) -> None:
    client, seen = make_client(ok)
    with pytest.raises(ValueError, match="not a Live session id"):
        asyncio.run(client.hangup_live_session(session_id))
    assert seen == []


def test_webrtc_create_returns_the_answer_and_the_session_id() -> None:
    answer = {"session": {"id": SESSION_ID}, "transport": {"type": "webrtc", "sdp": SDP_ANSWER}}
    LiveCreateResponse.model_validate(answer)  # the documented 201 answer
    client, seen = make_client(lambda request: httpx.Response(201, json=answer))
    body = webrtc_create_body(live_session(LIVE, "webrtc"), OFFER).to_json()
    created = asyncio.run(client.create_live_session(body))
    assert (created.session_id, created.sdp) == (SESSION_ID, SDP_ANSWER)
    (request,) = seen
    assert (request.method, request.url.path) == ("POST", "/v1/live/sessions")
    assert request.headers["content-type"] == "application/json"  # JSON, never multipart or raw SDP
    assert json.loads(request.content) == body


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ({"session": {"id": "rtc_1"}, "transport": {"sdp": SDP_ANSWER}}, "no usable session id"),
        ({"session": {}, "transport": {"sdp": SDP_ANSWER}}, "no usable session id"),
        ({"session": {"id": SESSION_ID}, "transport": {"type": "webrtc"}}, "no SDP"),
        ({"session": {"id": SESSION_ID}, "transport": {"sdp": "<html>"}}, "no SDP"),
        ([], "not a JSON object"),
    ],
)
def test_an_unusable_create_answer_is_an_upstream_error(answer: object, reason: str) -> None:
    client, _ = make_client(lambda request: httpx.Response(201, json=answer))
    with pytest.raises(UpstreamError, match=reason):
        asyncio.run(client.create_live_session({"session": {}, "transport": {}}))


@pytest.mark.parametrize("status", [400, 409])
def test_decision_already_made_is_its_own_error_and_never_retried(status: int) -> None:
    client, seen = make_client(
        lambda request: openai_error(
            status, "decision_already_made", "A decision was already made for this call."
        )
    )
    with pytest.raises(DecisionAlreadyMade) as caught:
        asyncio.run(client.accept_live_session(SESSION_ID, {"session": {}}))
    assert caught.value.upstream_status == status
    assert isinstance(caught.value, UpstreamError)  # callers that only know UpstreamError still stop
    assert not is_retryable(caught.value)
    assert len(seen) == 1
    # The same answer on the Realtime path (the other API's decision won) is told apart too.
    with pytest.raises(DecisionAlreadyMade):
        asyncio.run(client.reject_call("rtc_abc123", 603))


def test_other_errors_map_as_for_realtime() -> None:
    client, _ = make_client(lambda request: openai_error(404, "session_id_not_found", "Session not found"))
    with pytest.raises(UpstreamError) as caught:
        asyncio.run(client.hangup_live_session(SESSION_ID))
    assert type(caught.value) is UpstreamError
    assert (caught.value.upstream_status, caught.value.reason) == (
        404,
        "OpenAI answered 404: Session not found",
    )
    assert not is_retryable(caught.value)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    client, _ = make_client(slow)
    with pytest.raises(UpstreamTimeout):
        asyncio.run(client.accept_live_session(SESSION_ID, {"session": {}}))


def test_a_401_refreshes_the_key_once_on_live_calls_too() -> None:
    keys = Keys("sk-old", "sk-new")

    def handler(request: httpx.Request) -> httpx.Response:
        return ok(request) if request.headers["authorization"] == "Bearer sk-new" else httpx.Response(401)

    client, seen = make_client(handler, keys)
    asyncio.run(client.reject_live_session(SESSION_ID, 603))
    assert [r.headers["authorization"] for r in seen] == ["Bearer sk-old", "Bearer sk-new"]
