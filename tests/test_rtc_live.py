"""POST /rtc for GPT-Live through the Lambda handler (events/rtc_live.json) against the fake OpenAI,
whose `/v1/live/sessions` checks every body against the openai SDK's types."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import rtc_app
from shared import deps
from shared.hard_stop import HardStop
from shared.live_session import BROWSER_CLIENT_EVENTS, browser_data_channel
from shared.settings import DEFAULT_LIVE_BACKEND_MODEL, DEFAULT_LIVE_MODEL, Settings
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
from tests.samples import DEFAULT_INSTRUCTIONS
from tests.sdk_strict import assert_strict


def with_query(name: str, **query: str) -> dict[str, Any]:
    event = load_event(name)
    event["rawQueryString"] = "&".join(f"{key}={value}" for key, value in query.items())
    event["queryStringParameters"] = dict(query)
    return event


class RecordingHardStop(HardStop):
    """Records the schedules it is asked for (no Scheduler)."""

    def __init__(self) -> None:
        super().__init__(Settings())
        self.scheduled: list[tuple[str, int | None]] = []

    def schedule(
        self, call_id: str, started_at: float | None = None, *, limit_seconds: int | None = None
    ) -> None:
        self.scheduled.append((call_id, limit_seconds))


def test_live_offer_becomes_a_live_session_and_an_observer(
    fake: FakeOpenAI, launcher: RecordingLauncher, logs: LogCapture
) -> None:
    event = load_event("rtc_live")
    stop = RecordingHardStop()
    with deps.hard_stop.override(stop):
        result = rtc_app.handler(event, FakeContext())

    assert result["statusCode"] == 200, result["body"]
    assert result["headers"]["content-type"].startswith("application/sdp")
    assert result["body"].startswith("v=0")
    session_id = result["headers"]["x-call-id"]
    assert session_id.startswith("live_")
    assert result["headers"]["x-voice-api"] == "live"
    assert result["headers"]["cache-control"] == "no-store"
    assert session_id in fake.live.sessions

    # JSON to /live/sessions (never multipart, never /realtime/calls), under the standard key.
    assert fake.requests_to("/realtime/calls") == []
    (upstream,) = fake.requests_to("/live/sessions")
    assert upstream.headers["authorization"] == f"Bearer {API_KEY}"
    assert upstream.headers["content-type"].startswith("application/json")
    body = upstream.json
    assert body is not None
    from openai.types.live.live_create_params import LiveCreateParams

    assert_strict(LiveCreateParams, body)
    assert body["transport"] == {"type": "webrtc", "sdp": body_of(event).decode()}
    session = body["session"]
    assert "type" not in session  # a create takes no session type (only a SIP accept does)
    assert session["model"] == DEFAULT_LIVE_MODEL
    assert session["instructions"] == DEFAULT_INSTRUCTIONS
    assert session["audio"] == {"output": {"voice": "marin"}}
    backend = session["delegation"]["responses"]
    assert session["delegation"]["type"] == "responses"
    assert backend["model"] == DEFAULT_LIVE_BACKEND_MODEL
    assert {tool["name"] for tool in backend["tools"]} >= {"get_current_time", "end_call"}
    assert "transfer_call" not in {tool["name"] for tool in backend["tools"]}  # SIP only
    # The browser's data channel may only close the session and watch the conversation.
    channel = session["client"]["data_channel"]
    assert channel["allowed_client_events"] == list(BROWSER_CLIENT_EVENTS)
    assert channel == browser_data_channel().to_json()

    # The observer and the hard stop get the session id, as a Realtime call gets its rtc_ id.
    (observed,) = launcher.requests
    assert (observed.call_id, observed.source, observed.agent) == (session_id, "webrtc", "default")
    assert stop.scheduled == [(session_id, None)]
    (created,) = logs.messages("call created")
    assert (created["api"], created["call_id"]) == ("live", session_id)


def test_without_api_the_default_profile_decides(
    fake: FakeOpenAI, launcher: RecordingLauncher, env: pytest.MonkeyPatch
) -> None:
    env.setenv("VOICE_API", "live")
    deps.reset()
    live = rtc_app.handler(load_event("rtc"), FakeContext())
    assert live["statusCode"] == 200
    assert live["headers"]["x-call-id"].startswith("live_")
    # The page may still ask for Realtime on a Live server.
    realtime = rtc_app.handler(with_query("rtc", api="realtime"), FakeContext())
    assert realtime["statusCode"] == 200
    assert realtime["headers"]["x-call-id"].startswith("rtc_")
    assert realtime["headers"]["x-voice-api"] == "realtime"
    assert len(fake.requests_to("/live/sessions")) == 1
    assert len(fake.requests_to("/realtime/calls")) == 1
    assert [r.call_id[:4] for r in launcher.requests] == ["live", "rtc_"]


def test_a_live_default_profile_from_agents_yaml(
    fake: FakeOpenAI, launcher: RecordingLauncher, env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    agents = tmp_path / "agents.yaml"
    agents.write_text("agents:\n  default:\n    api: live\n    model: gpt-live-1\n    voice: cedar\n")
    env.setenv("AGENTS_FILE", str(agents))
    deps.reset()
    result = rtc_app.handler(load_event("rtc"), FakeContext())
    assert result["statusCode"] == 200, result["body"]
    assert result["headers"]["x-voice-api"] == "live"
    (upstream,) = fake.requests_to("/live/sessions")
    assert upstream.json is not None
    assert upstream.json["session"]["model"] == "gpt-live-1"
    assert upstream.json["session"]["audio"] == {"output": {"voice": "cedar"}}


@pytest.mark.parametrize("value", ["LIVE", "", "sip", "live,realtime", "gpt-live-1"])
def test_an_unknown_api_is_refused_before_any_upstream_call(
    fake: FakeOpenAI, launcher: RecordingLauncher, value: str
) -> None:
    result = rtc_app.handler(with_query("rtc", api=value), FakeContext())
    assert result["statusCode"] == 400
    assert response_json(result) == {"error": "Invalid request: query.api must be 'realtime' or 'live'"}
    assert fake.requests == []
    assert launcher.requests == []


def test_live_with_video_is_refused_before_any_upstream_call(
    fake: FakeOpenAI, launcher: RecordingLauncher
) -> None:
    result = rtc_app.handler(with_query("rtc", api="live", video="true"), FakeContext())
    assert result["statusCode"] == 400
    assert response_json(result) == {"error": "GPT-Live takes no video: send audio only, or use api=realtime"}
    assert fake.requests == []
    assert launcher.requests == []


def test_live_upstream_failure_is_502_and_gives_the_minutes_back(
    fake: FakeOpenAI, launcher: RecordingLauncher, env: pytest.MonkeyPatch
) -> None:
    env.setenv("MAX_CALL_MINUTES_PER_DAY", "1")
    env.setenv("MAX_CALL_SECONDS", "60")
    deps.reset()
    fake.fail_next("/live/sessions", 500)
    failed = rtc_app.handler(load_event("rtc_live"), FakeContext())
    assert failed["statusCode"] == 502
    assert response_json(failed)["error"].startswith("OpenAI answered 500")
    assert launcher.requests == []
    # The refund left the whole minute: the next call gets it, then the day's minutes are used up.
    assert rtc_app.handler(load_event("rtc_live"), FakeContext())["statusCode"] == 200
    (observed,) = launcher.requests
    assert observed.max_seconds == 60
    assert observed.minutes_day is not None
    refused = rtc_app.handler(load_event("rtc_live"), FakeContext())
    assert refused["statusCode"] == 429
    assert len(fake.requests_to("/live/sessions")) == 2


def test_a_live_offer_openai_refuses_is_a_400_in_our_words(
    fake: FakeOpenAI, launcher: RecordingLauncher
) -> None:
    refusal = "Invalid SDP offer: no ICE candidates."
    error = {
        "message": refusal,
        "type": "invalid_request_error",
        "param": "transport.sdp",
        "code": "invalid_offer",
    }
    fake.fail_next("/live/sessions", 400, {"error": error})
    result = rtc_app.handler(load_event("rtc_live"), FakeContext())
    assert result["statusCode"] == 400
    assert response_json(result) == {"error": f"OpenAI refused the SDP offer: {refusal}"}
    assert launcher.requests == []


def test_the_webrtc_fake_refuses_a_malformed_live_offer_and_rtc_says_so(
    webrtc_fake: FakeOpenAI, launcher: RecordingLauncher, env: pytest.MonkeyPatch
) -> None:
    env.setenv("OPENAI_BASE_URL", webrtc_fake.base_url)
    deps.reset()
    event = with_body(
        load_event("rtc_live"), b"v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
    )  # no ICE, no DTLS
    result = rtc_app.handler(event, FakeContext())
    assert result["statusCode"] == 400
    assert response_json(result)["error"].startswith("OpenAI refused the SDP offer: Invalid SDP offer")
    assert webrtc_fake.live.sessions == {}
    assert launcher.requests == []
