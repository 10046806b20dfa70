"""GPT-Live request bodies (shared/live_session.py): exactly the documented JSON, checked strictly
against the `openai` SDK's params (every key declared, every required key present)."""

from __future__ import annotations

from typing import Any

import pytest
from openai.types.live.live_create_params import LiveCreateParams
from openai.types.live.session_accept_params import SessionAcceptParams
from openai.types.live.session_refer_params import SessionReferParams
from openai.types.live.session_reject_params import SessionRejectParams
from pydantic import SecretStr, ValidationError

from shared.live_session import (
    accept_body,
    browser_data_channel,
    live_session,
    refer_body,
    reject_body,
    webrtc_create_body,
)
from shared.policy import BUSY, DECLINE
from shared.settings import McpServer, Settings
from shared.tools import available_tools
from tests.conftest import LogCapture
from tests.sdk_strict import assert_strict, strict_issues

OFFER = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\n"


def live_settings(**extra: Any) -> Settings:
    values: dict[str, Any] = {
        "voice_api": "live",
        "realtime_instructions": "Be brief and warm.",
        "live_backend_instructions": "Orders ship in two days.",
        "realtime_voice": "cedar",
        "tools": "get_current_time",
        "transfer_target": "tel:+12025550199",
    }
    return Settings(**{**values, **extra})


def tool_names(body: dict[str, Any]) -> list[str]:
    return [tool["name"] for tool in body["session"]["delegation"]["responses"].get("tools", [])]


def test_the_sip_accept_body_is_the_documented_one() -> None:
    body = accept_body(live_session(live_settings(), "sip", available_tools())).to_json()
    assert_strict(SessionAcceptParams, body)
    session = body["session"]
    assert session["type"] == "live"
    assert session["model"] == "gpt-live-1.1"
    assert session["instructions"] == "Be brief and warm."
    assert session["audio"] == {"output": {"voice": "cedar"}}  # no format: SIP negotiates it
    assert "store" not in session
    assert "client" not in session
    responses = session["delegation"]["responses"]
    assert session["delegation"]["type"] == "responses"
    assert responses["model"] == "gpt-5.6-luna"
    assert responses["instructions"] == "Orders ship in two days."
    assert (responses["tool_choice"], responses["parallel_tool_calls"]) == ("auto", False)
    # The tools the observer runs on a SIP call, in today's Realtime shape.
    assert tool_names(body) == ["end_call", "transfer_call", "get_current_time"]
    tool = responses["tools"][2]
    assert set(tool) == {"type", "name", "description", "parameters"}
    assert tool["parameters"]["type"] == "object"


def test_the_webrtc_create_body_has_the_offer_no_type_and_a_restricted_data_channel() -> None:
    body = webrtc_create_body(live_session(live_settings(), "webrtc", available_tools()), OFFER).to_json()
    assert_strict(LiveCreateParams, body)
    assert body["transport"] == {"type": "webrtc", "sdp": OFFER}
    assert "type" not in body["session"]
    assert tool_names(body) == ["end_call", "get_current_time"]  # no phone line to transfer
    channel = body["session"]["client"]["data_channel"]
    assert channel["allowed_client_events"] == ["session.close"]
    assert {"type": "response.event", "response_event": "response.output_item.done"} in channel[
        "allowed_server_events"
    ]
    # Open permissions on request, still valid.
    opened = webrtc_create_body(
        live_session(live_settings()), OFFER, data_channel=browser_data_channel([], [])
    )
    assert_strict(LiveCreateParams, opened.to_json())


def test_store_is_sent_only_when_asked_for() -> None:
    body = accept_body(live_session(live_settings(), "sip", store=True)).to_json()
    assert_strict(SessionAcceptParams, body)
    assert body["session"]["store"] is True


def test_without_tools_the_backend_is_still_responses_delegation() -> None:
    # No channel: no tools at all. Client delegation would leave every delegated task unanswered.
    settings = live_settings(live_backend_instructions="", realtime_instructions="")
    body = accept_body(live_session(settings)).to_json()
    assert_strict(SessionAcceptParams, body)
    assert body["session"] == {
        "type": "live",
        "model": "gpt-live-1.1",
        "audio": {"output": {"voice": "cedar"}},
        "delegation": {"type": "responses", "responses": {"model": "gpt-5.6-luna"}},
    }


def test_mcp_servers_stay_out_of_live_sessions_and_say_so(logs: LogCapture) -> None:
    secret = "Bearer mcp-credential"
    server = McpServer(
        server_label="docs",
        server_url="https://mcp.example/sse",
        headers={"Authorization": SecretStr(secret)},
    )
    body = accept_body(live_session(live_settings(mcp_servers=(server,)), "sip")).to_json()
    assert all(tool["type"] == "function" for tool in body["session"]["delegation"]["responses"]["tools"])
    assert secret not in str(body)
    assert logs.messages(
        "MCP_SERVERS are left out of GPT-Live sessions (Live takes MCP only as an unverified backend tool)"
    )


@pytest.mark.parametrize("status", [BUSY, DECLINE])
def test_reject_and_refer_bodies(status: int) -> None:
    assert_strict(SessionRejectParams, reject_body(status).to_json())
    assert reject_body(status).to_json() == {"status_code": status}
    assert reject_body().to_json() == {"status_code": 603}
    body = refer_body("tel:+12025550199").to_json()
    assert_strict(SessionReferParams, body)
    assert body == {"target_uri": "tel:+12025550199"}
    with pytest.raises(ValidationError):
        reject_body(200)
    with pytest.raises(ValidationError):
        refer_body("   ")


def test_the_strict_check_catches_what_validation_alone_would_pass() -> None:
    body = accept_body(live_session(live_settings(), "sip")).to_json()
    body["session"]["audio"]["format"] = {"type": "audio/pcm", "rate": 24000}  # primary WebSocket only
    assert [(i.code, i.path) for i in strict_issues(SessionAcceptParams, body)] == [
        ("unknown_parameter", "session.audio.format")
    ]
    del body["session"]["audio"]["format"]
    del body["session"]["type"]
    assert [(i.code, i.path) for i in strict_issues(SessionAcceptParams, body)] == [
        ("missing_required_parameter", "session.type")
    ]
