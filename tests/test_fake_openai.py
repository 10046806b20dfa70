"""Tests of the local fake OpenAI Realtime server (tests/fake_openai.py), over real HTTP and WebSocket."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosedError, InvalidStatus

from tests.fake_openai import (
    FakeOpenAI,
    RecordedRequest,
    default_sideband_script,
    dtmf_event,
    function_call_events,
    response_created_event,
)

KEY = "sk-test-fake"
AUTH = {"Authorization": f"Bearer {KEY}"}
OFFER = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n"
SESSION = {
    "type": "realtime",
    "model": "gpt-realtime",
    "audio": {"input": {"transcription": {"model": "gpt-live-transcribe"}}, "output": {"voice": "marin"}},
}
UNTRANSCRIBED = {"type": "realtime", "model": "gpt-realtime", "audio": {"output": {"voice": "marin"}}}
CALLER_TRANSCRIPTS = (
    "conversation.item.input_audio_transcription.delta",
    "conversation.item.input_audio_transcription.completed",
)
INVALID_KEY_BODY = {
    "error": {
        "message": "Incorrect API key provided",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }
}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(KEY).start() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeOpenAI) -> Iterator[FakeOpenAI]:
    server.reset()
    server.sideband_hold_seconds = 0.05
    server.sideband_event_interval = 0.0
    yield server
    server.reset()


@pytest.fixture
def client(fake: FakeOpenAI) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.base_url, timeout=5.0) as c:
        yield c


def create_call(client: httpx.Client, session: dict[str, Any] = SESSION, **kwargs: Any) -> httpx.Response:
    files = {"sdp": (None, OFFER), "session": (None, json.dumps(session))}
    return client.post("/realtime/calls", headers=AUTH, files=kwargs.pop("files", files), **kwargs)


def new_call_id(client: httpx.Client, session: dict[str, Any] = SESSION) -> str:
    response = create_call(client, session)
    assert response.status_code == 201
    return response.headers["location"].rsplit("/", 1)[-1]


async def run_sideband(
    fake: FakeOpenAI, call_id: str, send: list[dict[str, Any]] | None = None, key: str = KEY
) -> list[dict[str, Any]]:
    """Connect, send `send`, read events until the server closes; returns the events."""
    received: list[dict[str, Any]] = []
    url = f"{fake.ws_url}?call_id={call_id}"
    async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {key}"}) as ws:
        for event in send or []:
            await ws.send(json.dumps(event))
        async for message in ws:
            received.append(json.loads(message))
    return received


# ----------------------------------------------------------------------------- HTTP


def test_health_needs_no_key(fake: FakeOpenAI, client: httpx.Client) -> None:
    response = client.get("/_health")
    assert (response.status_code, response.text) == (200, "ok")
    assert [r.path for r in fake.requests] == ["/v1/_health"]


def test_multipart_call_returns_201_sdp_and_location(fake: FakeOpenAI, client: httpx.Client) -> None:
    response = create_call(client)

    assert response.status_code == 201
    assert response.headers["content-type"].startswith("application/sdp")
    assert response.text.startswith("v=0\r\n")
    assert "a=setup:active" in response.text
    match = re.fullmatch(r"/v1/realtime/calls/(rtc_[0-9a-f]{24})", response.headers["location"])
    assert match is not None
    assert match.group(1) in fake.known_calls

    [recorded] = fake.requests_to("/realtime/calls")
    assert isinstance(recorded, RecordedRequest)
    assert recorded.method == "POST"
    assert recorded.headers["authorization"] == f"Bearer {KEY}"
    assert recorded.form is not None
    assert recorded.form["sdp"] == OFFER
    assert json.loads(recorded.form["session"]) == SESSION
    assert recorded.json is None
    assert recorded.received_at <= time.monotonic()


@pytest.mark.parametrize(
    ("files", "content"),
    [
        ({"sdp": (None, OFFER)}, None),  # no session part
        ({"session": (None, json.dumps(SESSION))}, None),  # no sdp part
        ({"sdp": (None, "hello"), "session": (None, json.dumps(SESSION))}, None),  # not an SDP offer
        ({"sdp": (None, OFFER), "session": (None, "{not json")}, None),
        ({"sdp": (None, OFFER), "session": (None, json.dumps({"model": "gpt-realtime"}))}, None),  # no type
        (None, {"sdp": OFFER, "session": json.dumps(SESSION)}),  # urlencoded, not multipart
    ],
)
def test_invalid_call_requests_get_400(
    client: httpx.Client, files: dict[str, Any] | None, content: dict[str, str] | None
) -> None:
    if files is not None:
        response = client.post("/realtime/calls", headers=AUTH, files=files)
    else:
        response = client.post("/realtime/calls", headers=AUTH, data=content)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_client_secret_then_browser_form_call(fake: FakeOpenAI, client: httpx.Client) -> None:
    body = {"expires_after": {"anchor": "created_at", "seconds": 60}, "session": SESSION}
    response = client.post("/realtime/client_secrets", headers=AUTH, json=body)

    assert response.status_code == 200
    secret = response.json()
    assert re.fullmatch(r"ek_[0-9a-f]+", secret["value"])
    assert abs(secret["expires_at"] - (time.time() + 60)) < 5
    assert secret["session"]["id"].startswith("sess_")
    assert secret["session"]["model"] == "gpt-realtime"
    assert fake.requests_to("/client_secrets")[0].json == body

    browser = {"Authorization": f"Bearer {secret['value']}", "Content-Type": "application/sdp"}
    call = client.post("/realtime/calls", headers=browser, content=OFFER)
    assert call.status_code == 201
    assert call.text.startswith("v=0\r\n")
    call_id = call.headers["location"].rsplit("/", 1)[-1]
    assert call_id in fake.known_calls
    assert fake.requests_to("/realtime/calls")[0].form is None

    # An ephemeral key is only good for /realtime/calls.
    assert client.post(f"/realtime/calls/{call_id}/hangup", headers=browser).status_code == 401
    with pytest.raises(InvalidStatus) as refused:
        asyncio.run(run_sideband(fake, call_id, key=secret["value"]))
    assert refused.value.response.status_code == 404


def test_client_secret_validation(client: httpx.Client) -> None:
    too_long = {"expires_after": {"anchor": "created_at", "seconds": 9000}, "session": SESSION}
    assert client.post("/realtime/client_secrets", headers=AUTH, json=too_long).status_code == 400
    bad_type = {"session": {"type": "chat"}}
    assert client.post("/realtime/client_secrets", headers=AUTH, json=bad_type).status_code == 400


def test_a_browser_call_gets_the_session_of_its_ephemeral_key(fake: FakeOpenAI, client: httpx.Client) -> None:
    calls = []
    for session in (SESSION, UNTRANSCRIBED):
        secret = client.post("/realtime/client_secrets", headers=AUTH, json={"session": session}).json()
        browser = {"Authorization": f"Bearer {secret['value']}", "Content-Type": "application/sdp"}
        call = client.post("/realtime/calls", headers=browser, content=OFFER)
        calls.append(call.headers["location"].rsplit("/", 1)[-1])

    transcribed, untranscribed = (asyncio.run(run_sideband(fake, call_id)) for call_id in calls)

    assert transcribed[0]["session"]["audio"] == SESSION["audio"]
    assert set(CALLER_TRANSCRIPTS) <= {e["type"] for e in transcribed}
    assert not set(CALLER_TRANSCRIPTS) & {e["type"] for e in untranscribed}


def _with(session: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``session`` with ``value`` set at the dotted ``path``."""
    copied: dict[str, Any] = json.loads(json.dumps(session))
    *parents, last = path.split(".")
    node = copied
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return copied


UNKNOWN_KEYS = [
    ("foo", "foo"),
    ("audio.input.foo", "audio.input.foo"),
    ("audio.input.transcription.foo", "audio.input.transcription.foo"),
    ("tools", "tools[0].foo"),
]


@pytest.mark.parametrize(("path", "param"), UNKNOWN_KEYS)
@pytest.mark.parametrize("where", ["calls", "client_secrets", "accept"])
def test_an_unknown_session_key_is_refused_as_openai_does(
    fake: FakeOpenAI, client: httpx.Client, where: str, path: str, param: str
) -> None:
    value = [{"type": "function", "name": "f", "parameters": {}, "foo": 1}] if path == "tools" else 1
    session = _with(SESSION, path, value)
    fake.register_call("rtc_sip1")
    if where == "calls":
        response = create_call(client, session)
    elif where == "client_secrets":
        response = client.post("/realtime/client_secrets", headers=AUTH, json={"session": session})
    else:
        response = client.post("/realtime/calls/rtc_sip1/accept", headers=AUTH, json=session)

    # The accept body is the session itself: its keys are named from its top (no "session." prefix).
    expected = param if where == "accept" else f"session.{param}"
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "message": f"Unknown parameter: '{expected}'.",
            "type": "invalid_request_error",
            "param": expected,
            "code": "unknown_parameter",
        }
    }
    assert not fake.sidebands
    assert fake.known_calls == {"rtc_sip1"}


def test_call_control_known_and_unknown(fake: FakeOpenAI, client: httpx.Client) -> None:
    fake.register_call("rtc_sip123")

    accepted = client.post("/realtime/calls/rtc_sip123/accept", headers=AUTH, json=SESSION)
    assert (accepted.status_code, accepted.content) == (200, b"")
    assert fake.requests_to("/rtc_sip123/accept")[0].json == SESSION

    no_type = client.post("/realtime/calls/rtc_sip123/accept", headers=AUTH, json={"model": "gpt-realtime"})
    assert no_type.status_code == 400

    unknown = client.post("/realtime/calls/rtc_gone/accept", headers=AUTH, json=SESSION)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "call_id_not_found"

    assert client.post("/realtime/calls/rtc_sip123/reject", headers=AUTH).status_code == 200
    assert (
        client.post("/realtime/calls/rtc_sip123/reject", headers=AUTH, json={"status_code": 486}).status_code
        == 200
    )
    refer = {"target_uri": "tel:+14155550123"}
    assert client.post("/realtime/calls/rtc_sip123/refer", headers=AUTH, json=refer).status_code == 200
    assert client.post("/realtime/calls/rtc_sip123/refer", headers=AUTH, json={}).status_code == 400
    assert client.post("/realtime/calls/rtc_sip123/hangup", headers=AUTH).status_code == 200
    assert client.post("/realtime/calls/rtc_gone/hangup", headers=AUTH).status_code == 404


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer sk-wrong"}, {"Authorization": KEY}])
def test_bad_or_missing_key_gets_401_and_is_recorded(
    fake: FakeOpenAI, client: httpx.Client, headers: dict[str, str]
) -> None:
    response = client.post("/realtime/client_secrets", headers=headers, json={"session": SESSION})
    assert response.status_code == 401
    assert response.json() == INVALID_KEY_BODY
    assert len(fake.requests_to("/realtime/client_secrets")) == 1


def test_fail_next(fake: FakeOpenAI, client: httpx.Client) -> None:
    fake.fail_next("/realtime/calls", 500, times=2)
    for _ in range(2):
        failed = create_call(client)
        assert failed.status_code == 500
        assert failed.json()["error"]["type"] == "server_error"
    assert create_call(client).status_code == 201

    fake.fail_next("/accept", 429, {"error": {"message": "slow down", "code": "rate_limit_exceeded"}})
    fake.fail_next("/hangup", 502, "Bad Gateway")
    fake.register_call("rtc_x")
    limited = client.post("/realtime/calls/rtc_x/accept", headers=AUTH, json=SESSION)
    assert (limited.status_code, limited.json()["error"]["code"]) == (429, "rate_limit_exceeded")
    gateway = client.post("/realtime/calls/rtc_x/hangup", headers=AUTH)
    assert (gateway.status_code, gateway.text) == (502, "Bad Gateway")
    assert client.post("/realtime/calls/rtc_x/accept", headers=AUTH, json=SESSION).status_code == 200
    assert len(fake.requests) == 6


def test_delay_next(fake: FakeOpenAI, client: httpx.Client) -> None:
    fake.delay_next("/client_secrets", 0.3)
    started = time.monotonic()
    assert client.post("/realtime/client_secrets", headers=AUTH, json={"session": SESSION}).status_code == 200
    assert time.monotonic() - started >= 0.3

    started = time.monotonic()
    assert client.post("/realtime/client_secrets", headers=AUTH, json={"session": SESSION}).status_code == 200
    assert time.monotonic() - started < 0.3

    fake.delay_next("/client_secrets", 0.5)
    with pytest.raises(httpx.ReadTimeout):
        client.post("/realtime/client_secrets", headers=AUTH, json={"session": SESSION}, timeout=0.1)


def test_reset_restores_defaults(fake: FakeOpenAI, client: httpx.Client) -> None:
    new_call_id(client)
    fake.fail_next("/x", 500)
    fake.sideband_script = []
    fake.reset()
    assert (fake.requests, fake.sidebands, fake.known_calls) == ([], [], set())
    assert fake.sideband_script == default_sideband_script()
    assert fake.sideband_hold_seconds == 0.5
    assert client.get("/x", headers=AUTH).status_code == 404  # the fault is gone too


# ----------------------------------------------------------------------------- sideband


def test_sideband_session_created_then_script_and_client_events(
    fake: FakeOpenAI, client: httpx.Client
) -> None:
    call_id = new_call_id(client)
    fake.sideband_event_interval = 0.01
    sent: list[dict[str, Any]] = [
        {"type": "response.create"},
        {
            "type": "conversation.item.create",
            "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
        },
    ]

    events = asyncio.run(run_sideband(fake, call_id, send=sent))

    assert events[0]["type"] == "session.created"
    assert events[0]["session"]["model"] == "gpt-realtime"  # the session posted with the call
    types = [e["type"] for e in events[1:]]
    assert types == [e["type"] for e in default_sideband_script()]
    assert not any(t.startswith("response.audio_transcript.") for t in types)  # GA names only
    assert all(e["event_id"].startswith("event_") for e in events)
    done = next(e for e in events if e["type"] == "response.output_audio_transcript.done")
    assert done["transcript"] == "Hello! Thanks for trying the Realtime API."
    completed = next(e for e in events if e["type"].endswith("input_audio_transcription.completed"))
    assert completed["transcript"] == "What's new?"

    assert fake.wait_for(lambda: bool(fake.sidebands) and fake.sidebands[0].closed_at is not None)
    [session] = fake.sidebands
    assert session.call_id == call_id
    assert session.headers["authorization"] == f"Bearer {KEY}"
    assert "openai-beta" not in session.headers
    assert [event for _, event in session.client_events] == sent
    assert session.closed_at is not None
    assert all(session.opened_at <= at <= session.closed_at for at, _ in session.client_events)
    assert session.close_code == 1000
    assert fake.requests_to("/v1/realtime")[0].query == {"call_id": call_id}


def test_no_caller_transcripts_unless_the_session_asks_for_transcription(
    fake: FakeOpenAI, client: httpx.Client
) -> None:
    untranscribed = asyncio.run(run_sideband(fake, new_call_id(client, UNTRANSCRIBED)))
    transcribed = asyncio.run(run_sideband(fake, new_call_id(client, SESSION)))

    untranscribed_types = [e["type"] for e in untranscribed]
    assert "input_audio_buffer.speech_started" in untranscribed_types  # the caller still speaks
    assert not set(CALLER_TRANSCRIPTS) & set(untranscribed_types)
    assert set(CALLER_TRANSCRIPTS) <= {e["type"] for e in transcribed}


def test_session_update_can_turn_transcription_on(fake: FakeOpenAI, client: httpx.Client) -> None:
    call_id = new_call_id(client, UNTRANSCRIBED)
    fake.sideband_script = [0.2, *default_sideband_script()]  # the update lands first
    update = {
        "type": "session.update",
        "session": {
            "type": "realtime",
            "audio": {"input": {"transcription": {"model": "gpt-live-transcribe"}}},
        },
    }

    events = asyncio.run(run_sideband(fake, call_id, send=[update]))

    updated = next(e for e in events if e["type"] == "session.updated")
    assert updated["session"]["audio"]["output"] == {"voice": "marin"}  # merged, not replaced
    assert set(CALLER_TRANSCRIPTS) <= {e["type"] for e in events}


def test_session_update_with_an_unknown_key_is_an_error_event(fake: FakeOpenAI, client: httpx.Client) -> None:
    call_id = new_call_id(client)
    fake.sideband_script = []
    update = {"type": "session.update", "event_id": "evt_1", "session": {"type": "realtime", "voise": "x"}}

    events = asyncio.run(run_sideband(fake, call_id, send=[update]))

    assert [e["type"] for e in events] == ["session.created", "error"]
    assert events[1]["error"] == {
        "message": "Unknown parameter: 'session.voise'.",
        "type": "invalid_request_error",
        "param": "session.voise",
        "code": "unknown_parameter",
        "event_id": "evt_1",
    }


def test_sideband_session_update_is_answered(fake: FakeOpenAI, client: httpx.Client) -> None:
    call_id = new_call_id(client)
    fake.sideband_script = []
    update = {"type": "session.update", "session": {"type": "realtime", "instructions": "Be brief."}}

    events = asyncio.run(run_sideband(fake, call_id, send=[update]))

    assert [e["type"] for e in events] == ["session.created", "session.updated"]
    assert events[1]["session"]["instructions"] == "Be brief."


@pytest.mark.parametrize(
    ("query", "key", "status"),
    [("call_id=rtc_unknown", KEY, 404), ("", KEY, 404), ("call_id={call_id}", "sk-wrong", 401)],
)
def test_sideband_handshake_denied(
    fake: FakeOpenAI, client: httpx.Client, query: str, key: str, status: int
) -> None:
    url = f"{fake.ws_url}?{query.format(call_id=new_call_id(client))}"

    async def connect() -> None:
        async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {key}"}):
            pass

    with pytest.raises(InvalidStatus) as denied:
        asyncio.run(connect())
    assert denied.value.response.status_code == status
    error = json.loads(bytes(denied.value.response.body or b""))["error"]
    assert error["code"] == ("invalid_api_key" if status == 401 else "call_id_not_found")
    assert fake.sidebands == []
    assert len(fake.requests_to("/v1/realtime")) == 1  # the refused handshake is recorded


def test_sideband_fail_next_denies_handshake(fake: FakeOpenAI, client: httpx.Client) -> None:
    call_id = new_call_id(client)
    fake.fail_next("/v1/realtime", 503)
    with pytest.raises(InvalidStatus) as denied:
        asyncio.run(run_sideband(fake, call_id))
    assert denied.value.response.status_code == 503
    assert asyncio.run(run_sideband(fake, call_id))[0]["type"] == "session.created"


def test_sideband_abrupt_close_sends_no_close_frame(fake: FakeOpenAI, client: httpx.Client) -> None:
    call_id = new_call_id(client)
    fake.sideband_abrupt_close = True
    received: list[dict[str, Any]] = []

    async def read_all() -> None:
        async with websockets.connect(f"{fake.ws_url}?call_id={call_id}", additional_headers=AUTH) as ws:
            async for message in ws:
                received.append(json.loads(message))

    with pytest.raises(ConnectionClosedError) as dropped:
        asyncio.run(read_all())
    assert dropped.value.rcvd is None  # no close frame from the server
    assert len(received) == 1 + len(default_sideband_script())


def test_sideband_held_open_until_hangup(fake: FakeOpenAI, client: httpx.Client) -> None:
    call_id = new_call_id(client)
    fake.sideband_hold_seconds = -1  # keep open until the client closes or the call ends
    fake.sideband_script = [response_created_event("resp_1")]

    async def scenario() -> list[str]:
        types: list[str] = []
        async with websockets.connect(f"{fake.ws_url}?call_id={call_id}", additional_headers=AUTH) as ws:
            types += [json.loads(await ws.recv())["type"] for _ in range(2)]
            await asyncio.sleep(0.2)  # well past any hold: still open
            async with httpx.AsyncClient() as http:
                hangup = await http.post(f"{fake.base_url}/realtime/calls/{call_id}/hangup", headers=AUTH)
                assert hangup.status_code == 200
            async for message in ws:
                types.append(json.loads(message)["type"])
            assert ws.close_code == 1000  # the server closed it cleanly
        return types

    assert asyncio.run(scenario()) == ["session.created", "response.created"]


@pytest.mark.parametrize(("outcome", "closes"), [("transfer", True), ("ignore", False)])
def test_refer_ends_the_sideband_unless_told_to_ignore_it(
    fake: FakeOpenAI, client: httpx.Client, outcome: str, closes: bool
) -> None:
    call_id = new_call_id(client)
    fake.sideband_hold_seconds = 1.0
    fake.refer_outcome = outcome

    async def scenario() -> float:
        async with websockets.connect(f"{fake.ws_url}?call_id={call_id}", additional_headers=AUTH) as ws:
            await ws.recv()  # session.created
            async with httpx.AsyncClient() as http:
                bad = await http.post(
                    f"{fake.base_url}/realtime/calls/{call_id}/refer", headers=AUTH, json={"target_uri": "x"}
                )
                assert bad.status_code == 400
                refer = await http.post(
                    f"{fake.base_url}/realtime/calls/{call_id}/refer",
                    headers=AUTH,
                    json={"target_uri": "tel:+1555"},
                )
                assert refer.status_code == 200
            started = time.monotonic()
            async for _ in ws:
                pass
            return time.monotonic() - started

    held = asyncio.run(scenario())
    assert (held < 0.5) is closes  # closed at once by the REFER, or only after the 1 s hold


def test_scripted_tool_call_pause_and_replies_to_response_create(
    fake: FakeOpenAI, client: httpx.Client
) -> None:
    call_id = new_call_id(client)
    fake.sideband_script = [0.3, *function_call_events("call_1", "echo", '{"text": "a"}'), dtmf_event("7")]
    fake.sideband_replies = True
    fake.reply_audio_seconds = 0.05
    fake.sideband_hold_seconds = 0.5

    async def scenario() -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        async with websockets.connect(f"{fake.ws_url}?call_id={call_id}", additional_headers=AUTH) as ws:
            events.append(json.loads(await ws.recv()))
            await ws.send(json.dumps({"type": "response.create"}))
            async for message in ws:
                events.append(json.loads(message))
        return events

    types = [e["type"] for e in asyncio.run(scenario())]
    reply = [
        "response.created",
        "output_audio_buffer.started",
        "response.output_audio_transcript.done",
        "response.done",
    ]
    # The reply to response.create comes first: the script pauses 0.3 s before the tool call.
    assert types[1:6] == [*reply, "output_audio_buffer.stopped"]
    call = [t for t in types[6:] if t != "response.function_call_arguments.delta"]
    assert call == [
        "response.created",
        "response.output_item.added",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.done",
        "input_audio_buffer.dtmf_event_received",
    ]
    (sideband,) = fake.sidebands
    assert sideband.response_creates()[0][1] == {"type": "response.create"}
    assert len(sideband.server_event_times) == len(sideband.server_events)


# ----------------------------------------------------------------------------- lifecycle


def test_instances_run_side_by_side_and_stop_cleanly() -> None:
    first, second = FakeOpenAI("sk-one").start(), FakeOpenAI("sk-two").start()
    try:
        assert first.port != second.port
        assert httpx.get(f"{first.base_url}/_health").text == "ok"
        secret = {"session": SESSION}
        ok = httpx.post(
            f"{second.base_url}/realtime/client_secrets",
            json=secret,
            headers={"Authorization": "Bearer sk-two"},
        )
        assert ok.status_code == 200
        assert len(second.requests) == 1
        assert [r.path for r in first.requests] == ["/v1/_health"]
    finally:
        port = first.port
        first.stop()
        second.stop()
    assert not first.is_running
    assert not second.is_running
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0  # nothing listens there any more
    first.stop()  # stopping twice is harmless


def test_wait_for_times_out() -> None:
    started = time.monotonic()
    assert FakeOpenAI().wait_for(lambda: False, timeout=0.05) is False
    assert time.monotonic() - started < 1
