"""Tests of the GPT-Live side of the fake OpenAI (tests/fake_live.py), over real HTTP and WebSocket.

Every event the fake sends is checked against the SDK (``openai.types.live.ConnectServerEvent``, by
pydantic and strictly by tests/sdk_strict.py), so the fake cannot drift kinder than the real API.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import time
import wave
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets
from openai.types.live import ConnectClientEventParam, ConnectServerEvent, LiveCreateResponse
from openai.types.live.live_create_params import LiveCreateParams
from openai.types.live.session_accept_params import SessionAcceptParams
from openai.types.live.session_refer_params import SessionReferParams
from openai.types.live.session_reject_params import SessionRejectParams
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter
from websockets.exceptions import InvalidStatus

from tests.fake_live import (
    CHUNK_BYTES,
    live_caller_speech,
    live_dtmf_event,
    live_session_closed,
    live_tool_call_events,
)
from tests.fake_openai import FakeOpenAI
from tests.sdk_strict import assert_strict, strict_issues

KEY = "sk-test-fake"
AUTH = {"Authorization": f"Bearer {KEY}"}
OFFER = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n"
SESSION = {"model": "gpt-live-1", "instructions": "Be brief.", "audio": {"output": {"voice": "marin"}}}
ACCEPT = {"session": {"type": "live", "model": "gpt-live-1", "audio": {"output": {"voice": "marin"}}}}
RESPONSES_DELEGATION = {
    "type": "responses",
    "responses": {
        "model": "gpt-5.5",
        "tools": [
            {"type": "function", "name": "lookup_order", "parameters": {"type": "object", "properties": {}}}
        ],
    },
}
TRUNK: dict[str, Any] = {
    "provider_url": "sips:sip.example.com:5061",
    "auth": {"type": "digest", "username": "u", "password": "p"},
    "caller_number": "+14155550100",
}
SIP_TRANSPORT: dict[str, Any] = {"type": "sip", "destination": "+14155550123", "trunk": TRUNK}
SERVER_EVENT = TypeAdapter(ConnectServerEvent)
RESPONSES_EVENT = TypeAdapter(ResponseStreamEvent)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(KEY).start() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeOpenAI) -> Iterator[FakeOpenAI]:
    server.reset()
    server.live.script = []
    server.live.speed = 10.0  # speech and pauses 10x faster; audio still one frame per 20 ms of session time
    yield server
    server.reset()


@pytest.fixture
def client(fake: FakeOpenAI) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.base_url, headers=AUTH, timeout=5.0) as c:
        yield c


def check_server_event(event: dict[str, Any]) -> None:
    """The SDK parses it, and it has no key the SDK does not know (inner Responses events too)."""
    SERVER_EVENT.validate_python(event)
    assert_strict(ConnectServerEvent, event)
    if event["type"] == "response.event":
        RESPONSES_EVENT.validate_python(event["event"])
        assert_strict(ResponseStreamEvent, event["event"])


def create_webrtc(client: httpx.Client, session: dict[str, Any] | None = None) -> str:
    body = {"session": session or SESSION, "transport": {"type": "webrtc", "sdp": OFFER}}
    assert_strict(LiveCreateParams, body)
    response = client.post("/live/sessions", json=body)
    assert response.status_code == 201, response.text
    assert_strict(LiveCreateResponse, response.json())
    return str(response.json()["session"]["id"])


def accept_pending(fake: FakeOpenAI, client: httpx.Client, session: dict[str, Any] | None = None) -> str:
    pending = fake.register_pending_sip_call()
    assert pending.session_id is not None
    body = {"session": session or ACCEPT["session"]}
    assert_strict(SessionAcceptParams, body)
    response = client.post(f"/live/sessions/{pending.session_id}/accept", json=body)
    assert response.status_code == 200, response.text
    assert response.content == b""
    return pending.session_id


class Sideband:
    """A real WebSocket to ``/attach`` that checks every event it receives against the SDK."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self.audio: list[dict[str, Any]] = []

    async def send(self, event: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(event))

    async def until(self, event_type: str) -> dict[str, Any]:
        """Read (and check) events until one of ``event_type`` (5 s at most); returns it."""
        async with asyncio.timeout(5.0):
            while True:
                event: dict[str, Any] = json.loads(await self.ws.recv())
                check_server_event(event)
                if event["type"] in ("session.input_audio.append", "session.output_audio.delta"):
                    self.audio.append(event)
                else:
                    self.events.append(event)
                if event["type"] == event_type:
                    return event

    def types(self) -> list[str]:
        return [event["type"] for event in self.events]


def attach_url(fake: FakeOpenAI, session_id: str) -> str:
    return f"ws://127.0.0.1:{fake.port}/v1/live/sessions/{session_id}/attach"


def run_sideband(fake: FakeOpenAI, session_id: str, scenario: Any) -> Any:
    async def main() -> Any:
        async with websockets.connect(attach_url(fake, session_id), additional_headers=AUTH) as ws:
            return await scenario(Sideband(ws))

    return asyncio.run(main())


# --------------------------------------------------------------------------- create


def test_create_webrtc_answers_201_with_session_id_and_sdp(fake: FakeOpenAI, client: httpx.Client) -> None:
    session_id = create_webrtc(client)
    assert session_id.startswith("live_")
    assert fake.live.create_count == 1
    assert fake.live.creates[0]["transport"]["type"] == "webrtc"
    assert fake.requests_to("/live/sessions")[0].headers["authorization"] == f"Bearer {KEY}"


def test_create_requires_the_standard_key(fake: FakeOpenAI) -> None:
    body = {"session": SESSION, "transport": {"type": "webrtc", "sdp": OFFER}}
    ephemeral = fake.mint_ephemeral_key()
    for headers in ({}, {"Authorization": "Bearer sk-wrong"}, {"Authorization": f"Bearer {ephemeral}"}):
        response = httpx.post(f"{fake.base_url}/live/sessions", json=body, headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_api_key"
    assert fake.live.create_count == 0


def test_create_takes_json_only(fake: FakeOpenAI, client: httpx.Client) -> None:
    multipart = client.post(
        "/live/sessions", files={"sdp": (None, OFFER), "session": (None, json.dumps(SESSION))}
    )
    raw = client.post("/live/sessions", content=OFFER, headers={"Content-Type": "application/sdp"})
    assert (multipart.status_code, raw.status_code) == (400, 400)
    assert "JSON" in raw.json()["error"]["message"]


def test_create_refuses_unknown_keys_in_openai_error_shape(client: httpx.Client) -> None:
    body = {"session": {**SESSION, "foo": 1}, "transport": {"type": "webrtc", "sdp": OFFER}}
    response = client.post("/live/sessions", json=body)
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "message": "Unknown parameter: 'session.foo'.",
            "type": "invalid_request_error",
            "param": "session.foo",
            "code": "unknown_parameter",
        }
    }


@pytest.mark.parametrize(
    ("session", "param", "code"),
    [
        ({"instructions": "x"}, "session.model", "missing_required_parameter"),
        ({**SESSION, "type": "live"}, "session.type", "unknown_parameter"),
        (
            {**SESSION, "audio": {"output": {"voice": "marin"}, "format": {"type": "pcm16"}}},
            "session.audio.format",
            "unknown_parameter",
        ),
        ({**SESSION, "store": "yes"}, "session.store", "invalid_type"),
    ],
)
def test_create_refuses_invalid_sessions(
    client: httpx.Client, session: dict[str, Any], param: str, code: str
) -> None:
    response = client.post(
        "/live/sessions", json={"session": session, "transport": {"type": "webrtc", "sdp": OFFER}}
    )
    assert response.status_code == 400
    assert (response.json()["error"]["param"], response.json()["error"]["code"]) == (param, code)


def test_outbound_sip_is_refused_until_enabled_then_counts_one_create(
    fake: FakeOpenAI, client: httpx.Client
) -> None:
    body = {"session": SESSION, "transport": SIP_TRANSPORT}
    refused = client.post("/live/sessions", json=body)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "outbound_sip_not_enabled"
    assert fake.live.create_count == 0

    fake.live.outbound_enabled = True
    created = client.post("/live/sessions", json=body)
    assert created.status_code == 201
    assert created.json() == {
        "session": {"id": created.json()["session"]["id"]},
        "transport": {"type": "sip"},
    }
    assert fake.live.create_count == 1
    session_id = created.json()["session"]["id"]

    async def scenario(sideband: Sideband) -> list[str]:
        answered = await sideband.until("transport.answered")
        assert answered["session_id"] == session_id
        return sideband.types()

    assert run_sideband(fake, session_id, scenario)[:3] == [
        "session.started",
        "transport.ringing",
        "transport.answered",
    ]


@pytest.mark.parametrize(
    ("transport", "param"),
    [
        ({**SIP_TRANSPORT, "destination": "sip:bob@example.com"}, "transport.destination"),
        (
            {**SIP_TRANSPORT, "trunk": {**TRUNK, "provider_url": "sips:127.0.0.1"}},
            "transport.trunk.provider_url",
        ),
        ({**SIP_TRANSPORT, "trunk": {**TRUNK, "realm": "x"}}, "transport.trunk.realm"),
    ],
)
def test_outbound_sip_checks_the_transport(
    fake: FakeOpenAI, client: httpx.Client, transport: dict[str, Any], param: str
) -> None:
    fake.live.outbound_enabled = True
    response = client.post("/live/sessions", json={"session": SESSION, "transport": transport})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert fake.live.create_count == 0


# --------------------------------------------------------------------------- call actions


def test_one_pending_call_two_apis_first_decision_wins(fake: FakeOpenAI, client: httpx.Client) -> None:
    pending = fake.register_pending_sip_call(call_id="rtc_abc", session_id="live_u0_abc")
    assert client.post("/live/sessions/live_u0_abc/accept", json=ACCEPT).status_code == 200
    for path, body in (
        ("/live/sessions/live_u0_abc/accept", ACCEPT),
        ("/live/sessions/live_u0_abc/reject", {"status_code": 486}),
        ("/realtime/calls/rtc_abc/accept", {"type": "realtime", "model": "gpt-realtime"}),
        ("/realtime/calls/rtc_abc/reject", {"status_code": 486}),
    ):
        later = client.post(path, json=body)
        assert later.status_code == 409, path
        assert later.json()["error"]["code"] == "decision_already_made"
    assert pending.decision == ("live", "accept")


def test_realtime_decision_first_locks_out_live(fake: FakeOpenAI, client: httpx.Client) -> None:
    pending = fake.register_pending_sip_call()
    assert (
        client.post(f"/realtime/calls/{pending.call_id}/reject", json={"status_code": 486}).status_code == 200
    )
    later = client.post(f"/live/sessions/{pending.session_id}/accept", json=ACCEPT)
    assert later.status_code == 409
    assert later.json()["error"]["code"] == "decision_already_made"
    assert pending.session_id not in fake.live.sessions


def test_calls_registered_the_old_way_keep_realtime_behaviour(fake: FakeOpenAI, client: httpx.Client) -> None:
    fake.register_call("rtc_old")
    body = {"type": "realtime", "model": "gpt-realtime"}
    assert [client.post("/realtime/calls/rtc_old/accept", json=body).status_code for _ in range(2)] == [
        200,
        200,
    ]


def test_unknown_session_ids_answer_404(client: httpx.Client) -> None:
    for action, body in (
        ("accept", ACCEPT),
        ("reject", {"status_code": 486}),
        ("refer", {"target_uri": "tel:+1"}),
        ("hangup", None),
    ):
        response = client.post(f"/live/sessions/live_nope/{action}", json=body)
        assert response.status_code == 404, action
        assert response.json()["error"]["code"] == "session_id_not_found"
    assert client.get("/live/sessions/live_nope/content").status_code == 404


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"session": {"model": "gpt-live-1"}}, "session.type", "missing_required_parameter"),
        ({"session": {"type": "live"}}, "session.model", "missing_required_parameter"),
        ({"session": {"type": "realtime", "model": "gpt-live-1"}}, "session.type", "invalid_value"),
        (
            {"session": {**ACCEPT["session"], "audio": {"format": {"type": "pcm16"}}}},
            "session.audio.format",
            "unknown_parameter",
        ),
        (
            {"session": {**ACCEPT["session"], "wake_policy": {"type": "speech"}}},
            "session.wake_policy",
            "unknown_parameter",
        ),
        ({**ACCEPT, "type": "live"}, "type", "unknown_parameter"),
    ],
)
def test_accept_is_strict(
    fake: FakeOpenAI, client: httpx.Client, body: dict[str, Any], param: str, code: str
) -> None:
    pending = fake.register_pending_sip_call()
    response = client.post(f"/live/sessions/{pending.session_id}/accept", json=body)
    assert response.status_code == 400
    assert (response.json()["error"]["param"], response.json()["error"]["code"]) == (param, code)
    assert pending.decision is None  # a refused accept decides nothing


@pytest.mark.parametrize(
    ("body", "status"), [(None, 400), ({}, 400), ({"status_code": 200}, 400), ({"status_code": 486}, 200)]
)
def test_reject_requires_a_status_code_from_300_to_699(
    fake: FakeOpenAI, client: httpx.Client, body: Any, status: int
) -> None:
    pending = fake.register_pending_sip_call()
    response = client.post(f"/live/sessions/{pending.session_id}/reject", json=body)
    assert response.status_code == status, response.text
    if status == 200:
        assert_strict(SessionRejectParams, body)


def test_refer_and_hangup_of_an_accepted_call(fake: FakeOpenAI, client: httpx.Client) -> None:
    session_id = accept_pending(fake, client)
    for target in ("", "  ", "mailto:x@example.com"):
        assert (
            client.post(f"/live/sessions/{session_id}/refer", json={"target_uri": target}).status_code == 400
        )
    assert client.post(f"/live/sessions/{session_id}/hangup", json={}).status_code == 400  # no body at all
    assert_strict(SessionReferParams, {"target_uri": "tel:+14155550123"})
    fake.live.refer_ends_session = False
    assert (
        client.post(f"/live/sessions/{session_id}/refer", json={"target_uri": "tel:+14155550123"}).status_code
        == 200
    )
    assert client.post(f"/live/sessions/{session_id}/hangup").status_code == 200
    assert fake.live.sessions[session_id].close_reason == "close_requested"
    assert client.post(f"/live/sessions/{session_id}/hangup").status_code == 404  # already ended


def test_content_is_a_stereo_wav_only_with_store(fake: FakeOpenAI, client: httpx.Client) -> None:
    stored = create_webrtc(client, {**SESSION, "store": True})
    plain = create_webrtc(client)
    response = client.get(f"/live/sessions/{stored}/content")
    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(response.content)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, 24_000)
        assert wav.getnframes() > 0
    assert client.get(f"/live/sessions/{plain}/content").status_code == 404


# --------------------------------------------------------------------------- sideband


def test_attach_refuses_unknown_sessions_and_missing_keys(fake: FakeOpenAI, client: httpx.Client) -> None:
    session_id = create_webrtc(client)

    async def connect(url: str, headers: dict[str, str]) -> None:
        async with websockets.connect(url, additional_headers=headers):
            pass

    with pytest.raises(InvalidStatus) as unknown:
        asyncio.run(connect(attach_url(fake, "live_nope"), AUTH))
    assert unknown.value.response.status_code == 404
    with pytest.raises(InvalidStatus) as no_key:
        asyncio.run(connect(attach_url(fake, session_id), {}))
    assert no_key.value.response.status_code == 401


def test_session_start_and_invalid_commands_get_error_events(fake: FakeOpenAI, client: httpx.Client) -> None:
    session_id = create_webrtc(client)
    bad: list[tuple[dict[str, Any], str]] = [
        ({"type": "session.start", "session": SESSION, "event_id": "c1"}, "type"),
        ({"type": "session.input_audio.append", "audio": "AAAA", "event_id": "c2"}, "type"),
        ({"type": "session.instructions.append", "content": "hi", "event_id": "c3"}, "delegation_id"),
        ({"type": "session.close", "reason": "bye", "event_id": "c4"}, "reason"),
        ({"type": "transport.dtmf.send", "event": "5", "event_id": "c5"}, "type"),  # WebRTC: no DTMF
        ({"type": "response.create", "event_id": "c6"}, "type"),  # needs Responses delegation
    ]

    async def scenario(sideband: Sideband) -> list[dict[str, Any]]:
        errors = []
        for event, _ in bad:
            assert strict_issues(ConnectClientEventParam, event) or event["event_id"] in ("c5", "c6")
            await sideband.send(event)
            errors.append(await sideband.until("error"))
        return errors

    errors = run_sideband(fake, session_id, scenario)
    assert [(e["error"]["client_event_id"], e["error"]["param"]) for e in errors] == [
        (event["event_id"], param) for event, param in bad
    ]
    assert fake.live.sessions[session_id].status == "active"  # none of them closed it
    assert fake.live.client_events(session_id)[0]["type"] == "session.start"  # recorded, refused


def test_greeting_is_acked_then_spoken_with_reflected_audio(fake: FakeOpenAI, client: httpx.Client) -> None:
    session_id = accept_pending(fake, client)
    fake.live.greeting_text = "Hello there caller"

    async def scenario(sideband: Sideband) -> Sideband:
        await sideband.until("session.started")
        greet = {
            "type": "session.instructions.append",
            "event_id": "greet_1",
            "delegation_id": None,
            "content": "Greet.",
        }
        assert not strict_issues(ConnectClientEventParam, greet)
        await sideband.send(greet)
        ack = await sideband.until("session.instructions.appended")
        assert ack["client_event_id"] == "greet_1"
        spoken = ""
        while spoken != fake.live.greeting_text:
            spoken += (await sideband.until("session.output_transcript.delta"))["delta"]
        await sideband.send({"type": "session.close", "event_id": "bye"})
        closed = await sideband.until("session.closed")
        assert (closed["reason"], closed["client_event_id"]) == ("close_requested", "bye")
        await sideband.ws.wait_closed()
        assert sideband.ws.close_code == 1000
        return sideband

    sideband = run_sideband(fake, session_id, scenario)
    outputs = [a for a in sideband.audio if a["type"] == "session.output_audio.delta"]
    assert outputs, "the model's speech is reflected"
    assert all(len(base64.b64decode(a["delta"])) == CHUNK_BYTES for a in outputs)
    assert all("event_id" not in a for a in sideband.audio)
    assert fake.live.sessions[session_id].status == "closed"


def test_reflected_input_audio_runs_at_real_time(fake: FakeOpenAI, client: httpx.Client) -> None:
    fake.live.speed = 1.0
    session_id = accept_pending(fake, client)

    async def scenario(sideband: Sideband) -> tuple[int, float]:
        await sideband.until("session.started")
        await sideband.until("session.input_audio.append")
        first = len(sideband.audio)
        started = time.monotonic()
        while time.monotonic() - started < 1.0:
            await sideband.until("session.input_audio.append")
        return len(sideband.audio) - first, time.monotonic() - started

    frames, seconds = run_sideband(fake, session_id, scenario)
    assert 40 <= frames / seconds <= 60, frames / seconds  # 50 frames of 20 ms per second
    sideband = fake.live.sidebands_of(session_id)[0]
    assert sideband.audio_chars / max(sideband.audio_frames, 1) > 1280  # 1280 base64 chars + envelope


def test_scripted_caller_dtmf_and_usage(fake: FakeOpenAI, client: httpx.Client) -> None:
    fake.live.usage_interval_seconds = 1.0
    fake.live.script = [
        1.0,
        *live_caller_speech("I need help"),
        1.0,
        live_dtmf_event("7"),
        live_session_closed("remote_hangup"),
    ]
    session_id = accept_pending(fake, client)

    async def scenario(sideband: Sideband) -> Sideband:
        await sideband.until("session.closed")
        return sideband

    sideband = run_sideband(fake, session_id, scenario)
    heard = [e for e in sideband.events if e["type"] == "session.input_transcript.delta"]
    assert "".join(e["delta"] for e in heard) == "I need help"
    assert all(e["start_ms"] < e["end_ms"] for e in heard)
    assert [e["event"] for e in sideband.events if e["type"] == "transport.dtmf.received"] == ["7"]
    usage = [e["usage"]["seconds"] for e in sideband.events if e["type"] == "session.usage.updated"]
    assert usage
    assert usage == sorted(usage)  # cumulative
    assert sideband.events[-1]["usage"]["seconds"] >= usage[-1]
    loud = {a["audio"] for a in sideband.audio if a["type"] == "session.input_audio.append"}
    assert len(loud) == 2  # caller speech and silence
    assert sideband.events[-1]["reason"] == "remote_hangup"


def test_dtmf_send_is_confirmed_on_sip(fake: FakeOpenAI, client: httpx.Client) -> None:
    session_id = accept_pending(fake, client)

    async def scenario(sideband: Sideband) -> tuple[dict[str, Any], dict[str, Any]]:
        await sideband.send({"type": "transport.dtmf.send", "event": "5", "event_id": "d1"})
        sent = await sideband.until("transport.dtmf.sent")
        await sideband.send({"type": "transport.dtmf.send", "event": "55", "event_id": "d2"})
        return sent, await sideband.until("error")

    sent, error = run_sideband(fake, session_id, scenario)
    assert (sent["event"], sent["client_event_id"]) == ("5", "d1")
    assert error["error"]["client_event_id"] == "d2"


def test_responses_tool_call_then_results_continue_with_speech(
    fake: FakeOpenAI, client: httpx.Client
) -> None:
    fake.live.script = [*live_tool_call_events("call_1", "lookup_order", '{"order":"42"}')]
    fake.live.tool_answer_text = "Your order shipped"
    session_id = accept_pending(fake, client, {**ACCEPT["session"], "delegation": RESPONSES_DELEGATION})

    async def scenario(sideband: Sideband) -> Sideband:
        await sideband.until("session.delegation.created")
        while True:
            wrapper = await sideband.until("response.event")
            if wrapper["event"]["type"] == "response.completed":
                break
        unknown = {"type": "function_call_output", "call_id": "call_x", "output": "{}"}
        await sideband.send({"type": "response.item.create", "event_id": "r0", "item": unknown})
        assert (await sideband.until("error"))["error"]["param"] == "item.call_id"
        result = {
            "type": "response.item.create",
            "event_id": "r1",
            "item": {"type": "function_call_output", "call_id": "call_1", "output": '{"status":"shipped"}'},
        }
        assert not strict_issues(ConnectClientEventParam, result)
        await sideband.send(result)
        await sideband.send({"type": "response.create", "event_id": "r2"})
        spoken = ""
        while spoken != "Your order shipped":
            spoken += (await sideband.until("session.output_transcript.delta"))["delta"]
        return sideband

    sideband = run_sideband(fake, session_id, scenario)
    inner = [e["event"] for e in sideband.events if e["type"] == "response.event"]
    calls = [
        i["item"]
        for i in inner
        if i["type"] == "response.output_item.done" and i["item"]["type"] == "function_call"
    ]
    assert [(c["call_id"], c["name"], c["arguments"]) for c in calls] == [
        ("call_1", "lookup_order", '{"order":"42"}')
    ]
    completed = [i["response"] for i in inner if i["type"] == "response.completed"]
    assert len(completed) == 2
    assert all(r["output"] == [] for r in completed)
    assert fake.live.sessions[session_id].tool_outputs[0]["call_id"] == "call_1"


def test_late_attach_replays_the_last_seconds_with_original_event_ids(
    fake: FakeOpenAI, client: httpx.Client
) -> None:
    fake.live.script_waits_for_sideband = False
    fake.live.script = [live_dtmf_event("1")]
    session_id = accept_pending(fake, client)
    assert fake.wait_for(lambda: len(fake.live.sessions[session_id].timeline) >= 2)
    original = [e["event_id"] for e in fake.live.sessions[session_id].timeline]

    async def first(sideband: Sideband) -> list[str]:
        await sideband.until("transport.dtmf.received")
        return [e["event_id"] for e in sideband.events]

    assert (
        run_sideband(fake, session_id, first) == original
    )  # replayed: the session started before the attach
    assert run_sideband(fake, session_id, first) == original  # and again after a drop (dedupe by event_id)

    fake.live.replay_seconds = 0.2
    time.sleep(0.3)

    async def late(sideband: Sideband) -> list[str]:
        await sideband.send({"type": "session.input_audio.mute", "event_id": "m1"})
        await sideband.until("session.input_audio.muted")
        return sideband.types()

    assert run_sideband(fake, session_id, late) == ["session.input_audio.muted"]


def test_hangup_closes_the_sideband_with_session_closed(fake: FakeOpenAI, client: httpx.Client) -> None:
    session_id = accept_pending(fake, client)

    async def scenario(sideband: Sideband) -> dict[str, Any]:
        await sideband.until("session.started")
        async with httpx.AsyncClient(base_url=fake.base_url, headers=AUTH) as http:
            assert (await http.post(f"/live/sessions/{session_id}/hangup")).status_code == 200
        closed = await sideband.until("session.closed")
        await sideband.ws.wait_closed()
        return closed

    closed = run_sideband(fake, session_id, scenario)
    assert closed["reason"] == "close_requested"
    assert closed["session"]["id"] == session_id
    assert isinstance(closed["usage"]["seconds"], int)


def test_webrtc_sessions_end_with_session_close_not_hangup(fake: FakeOpenAI, client: httpx.Client) -> None:
    session_id = create_webrtc(client)
    response = client.post(f"/live/sessions/{session_id}/hangup")
    assert response.status_code == 400
    assert "session.close" in response.json()["error"]["message"]


# --------------------------------------------------------------------------- WebRTC (real aiortc peer)


def test_webrtc_create_answers_with_a_real_peer_speaking_live(webrtc_fake: FakeOpenAI) -> None:
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

    from tests.conftest import API_KEY
    from tests.fake_webrtc import ToneTrack, loopback_only

    async def browser() -> tuple[str, list[dict[str, Any]]]:
        loopback_only()
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTrack(ToneTrack())
        channel = pc.createDataChannel("oai-events")  # before the offer, like the page
        received: list[dict[str, Any]] = []
        started = asyncio.Event()

        @channel.on("message")
        def on_message(message: str) -> None:
            received.append(json.loads(message))
            started.set()

        await pc.setLocalDescription(await pc.createOffer())  # aiortc gathers ICE before returning
        body = {"session": SESSION, "transport": {"type": "webrtc", "sdp": pc.localDescription.sdp}}
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {API_KEY}"}) as http:
            response = await http.post(f"{webrtc_fake.base_url}/live/sessions", json=body)
        assert response.status_code == 201, response.text
        answer = response.json()["transport"]["sdp"]
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        await asyncio.wait_for(started.wait(), timeout=10)
        await asyncio.sleep(0.2)  # nothing else comes on the channel
        await pc.close()
        return str(response.json()["session"]["id"]), received

    session_id, received = asyncio.run(browser())
    assert [event["type"] for event in received] == ["session.started"]
    check_server_event(received[0])
    assert received[0]["session"]["id"] == session_id
    assert webrtc_fake.webrtc_calls[session_id].connected


# --------------------------------------------------------------------------- the strict checker itself


def test_sdk_strict_names_unknown_missing_and_mistyped_fields() -> None:
    from openai.types.live import SessionClosedEvent

    good = {
        "type": "session.closed",
        "event_id": "e1",
        "reason": "remote_hangup",
        "session": {"id": "live_1", "expires_at": 1, "model": "gpt-live-1", "status": "active"},
        "usage": {"seconds": 3},
    }
    assert_strict(SessionClosedEvent, good)
    bad = {
        **good,
        "extra": 1,
        "usage": {"seconds": "3"},
        "session": {"id": "live_1", "model": "m", "status": "active"},
    }
    assert {(i.code, i.path) for i in strict_issues(ConnectServerEvent, bad)} == {
        ("unknown_parameter", "extra"),
        ("invalid_type", "usage.seconds"),
        ("missing_required_parameter", "session.expires_at"),
    }
    with pytest.raises(AssertionError, match="Unknown parameter: 'extra'"):
        assert_strict(ConnectServerEvent, bad)
    unknown_type = strict_issues(ConnectClientEventParam, {"type": "session.start"})
    assert unknown_type[0].path == "type"
    assert "session.close" in unknown_type[0].message  # lists what is supported
