"""The fake OpenAI and the project, both held to the official ``openai`` SDK's types, strictly.

Whatever the fake sends (over its real WebSocket) must be a ``RealtimeServerEvent`` with every required
field and no key the SDK does not know; whatever the project sends (sessions, the client_secrets body,
the observer's client events) must fit the SDK's request types the same way. ``openai`` is a test-only
dependency (requirements-dev.txt): functions/ and shared/ never import it (last test).
"""

from __future__ import annotations

import ast
import asyncio
import json
import time
import typing
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from openai.types.realtime import (
    RealtimeClientEventParam,
    RealtimeServerEvent,
    RealtimeSessionCreateRequestParam,
    call_accept_params,
    client_secret_create_params,
    client_secret_create_response,
    realtime_session_create_response,
)

import observer_app
import observer_worker
from bench.scenarios import realistic_script
from shared import deps
from shared.secrets import SecretStore
from shared.session import make_session
from shared.settings import McpServer, Settings
from shared.upstream import EncodedJson, OpenAIClient
from tests.conftest import API_KEY, FakeContext, load_event
from tests.fake_openai import (
    SESSION_KEYS,
    TOOL_KEYS,
    TRANSCRIBING_SESSION,
    FakeOpenAI,
    KeySchema,
    audio_stopped_event,
    caller_transcript_event,
    default_sideband_script,
    dtmf_event,
    error_event,
    function_call_events,
    mcp_call_events,
    response_created_event,
    response_done_event,
)
from tests.sdk_strict import allowed_keys, check

ROOT = Path(__file__).resolve().parent.parent
# The API's session.created/updated carry the session as it was created: `RealtimeSessionCreateResponse`
# (with `object`, `id`, `expires_at`, as OpenAI's reference example shows), while the SDK types the
# event's session with the request type, which lacks those three. Checked against the response type.
CREATED_ONLY_KEYS = ("object", "id", "expires_at")
SESSION_EVENTS = ("session.created", "session.updated")
MCP_SERVERS = (
    McpServer(server_label="docs", server_url="https://mcp.example.com/sse", allowed_tools=("search",)),
    McpServer(
        server_label="crm",
        server_url="https://crm.example.com/mcp",
        headers={"Authorization": "Bearer x"},  # type: ignore[dict-item]
    ),
)


def server_event_problems(event: dict[str, Any]) -> list[str]:
    """Strict problems of one server event (its session, if any, against the created-session type)."""
    if event.get("type") in SESSION_EVENTS and isinstance(event.get("session"), dict):
        session = event["session"]
        found = check(realtime_session_create_response.RealtimeSessionCreateResponse, session, path="session")
        stripped = {k: v for k, v in session.items() if k not in CREATED_ONLY_KEYS}
        return found + check(RealtimeServerEvent, {**event, "session": stripped})
    return check(RealtimeServerEvent, event)


# ----------------------------------------------------------------------------- the checker itself


def test_the_strict_checker_can_fail() -> None:
    done = response_done_event("resp_1")
    done["event_id"] = "event_1"
    assert check(RealtimeServerEvent, done) == []
    assert check(RealtimeServerEvent, {**done, "surprise": 1}) == ["surprise: Unknown parameter: 'surprise'."]
    nested = json.loads(json.dumps(done))
    nested["response"]["usage"] = {"total_tokens": 1, "extra_tokens": 2}
    assert check(RealtimeServerEvent, nested) == [
        "response.usage.extra_tokens: Unknown parameter: 'response.usage.extra_tokens'."
    ]
    no_id = {k: v for k, v in done.items() if k != "event_id"}
    assert any("event_id" in p and "required" in p for p in check(RealtimeServerEvent, no_id))
    assert check(RealtimeServerEvent, {**done, "type": "response.audio_transcript.delta"}) != []  # beta name
    wrong = {"type": "response.create", "response": {"instructions": 5}}
    assert check(RealtimeClientEventParam, wrong) != []
    typo = {"type": "realtime", "audio": {"input": {"transcripton": {"model": "m"}}}}
    assert check(RealtimeSessionCreateRequestParam, typo) == [
        "audio.input.transcripton: Unknown parameter: 'audio.input.transcripton'."
    ]
    assert check(call_accept_params.CallAcceptParams, {"model": "m"}) != []  # `type` is required


# ----------------------------------------------------------------------------- what the fake sends


def test_the_event_builders_fit_the_sdk() -> None:
    events = [
        *default_sideband_script(),
        *function_call_events("call_1", "get_current_time", '{"timezone": "UTC"}'),
        *mcp_call_events("docs", "search"),
        *mcp_call_events("docs", "search", failed=True),
        audio_stopped_event("resp_1"),
        caller_transcript_event("hello"),
        response_done_event(usage={"total_tokens": 3, "input_tokens": 1, "output_tokens": 2}),
        response_created_event(),
        error_event("try again", type_="server_error"),
        error_event("Unknown parameter: 'session.foo'.", code="unknown_parameter", param="session.foo"),
    ]
    for event in events:
        assert check(RealtimeServerEvent, {**event, "event_id": "event_1"}) == [], event
    assert check(RealtimeServerEvent, dtmf_event("5")) == []  # the schema gives it no event_id
    for event in realistic_script(400):  # the benchmark's conversation (bench/scenarios.py)
        assert check(RealtimeServerEvent, {**event, "event_id": "event_1"}) == [], event
    failed = mcp_call_events("docs", "search", failed=True)[-1]["item"]["error"]
    assert failed["type"] in ("protocol_error", "tool_execution_error", "http_error")


async def _every_event_of_a_call(
    fake: FakeOpenAI, call_id: str, client_events: list[Any]
) -> list[dict[str, Any]]:
    url = f"{fake.ws_url}?call_id={call_id}"
    received: list[dict[str, Any]] = []
    async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {API_KEY}"}) as ws:
        for event in client_events:
            await ws.send(event if isinstance(event, str) else json.dumps(event))
        async for message in ws:
            received.append(json.loads(message))
    return received


def test_every_event_the_fake_sends_over_its_socket_fits_the_sdk(fake: FakeOpenAI) -> None:
    session = make_session(Settings(mcp_servers=MCP_SERVERS), "sip").to_json()
    fake.register_call("rtc_contract01")
    accepted = httpx.post(
        f"{fake.base_url}/realtime/calls/rtc_contract01/accept",
        headers={"Authorization": f"Bearer {API_KEY}"},
        json=session,
    )
    assert accepted.status_code == 200
    fake.sideband_replies = True
    fake.sideband_hold_seconds = 0.5
    fake.sideband_script = [
        *default_sideband_script(),
        *function_call_events("call_1", "get_current_time", '{"timezone": "UTC"}'),
        *mcp_call_events("docs", "search"),
        *mcp_call_events("docs", "search", failed=True),
        dtmf_event("0"),
        audio_stopped_event("resp_fake0001"),
    ]
    client_events: list[Any] = [
        {"type": "response.create"},
        "not json",
        {"type": "session.update", "session": {"type": "realtime", "instructions": "Be brief."}},
        {"type": "session.update", "event_id": "evt_2", "session": {"type": "realtime", "voise": "x"}},
    ]

    events = asyncio.run(_every_event_of_a_call(fake, "rtc_contract01", client_events))

    types = [e["type"] for e in events]
    for kind in ("session.created", "session.updated", "error", "output_audio_buffer.started"):
        assert kind in types
    assert "conversation.item.input_audio_transcription.completed" in types  # the session transcribes
    assert types.count("response.done") >= 3  # the script's two and the reply's
    assert all("event_id" in e for e in events if e["type"] != "input_audio_buffer.dtmf_event_received")
    for event in events:
        assert server_event_problems(event) == [], event


def test_the_client_secret_the_fake_answers_fits_the_sdk(fake: FakeOpenAI) -> None:
    body = {"expires_after": {"anchor": "created_at", "seconds": 60}, "session": TRANSCRIBING_SESSION}
    response = httpx.post(
        f"{fake.base_url}/realtime/client_secrets", headers={"Authorization": f"Bearer {API_KEY}"}, json=body
    )
    assert response.status_code == 200
    assert check(client_secret_create_response.ClientSecretCreateResponse, response.json()) == []


# ----------------------------------------------------------------------------- what the project sends


@pytest.mark.parametrize("channel", ["sip", "webrtc", "browser", None])
@pytest.mark.parametrize("transcription", ["gpt-live-transcribe", "off"])
@pytest.mark.parametrize("mcp", [(), MCP_SERVERS])
def test_every_session_the_project_sends_fits_the_sdk(
    channel: typing.Literal["sip", "webrtc", "browser"] | None, transcription: str, mcp: tuple[McpServer, ...]
) -> None:
    settings = Settings(
        transcription_model=transcription, mcp_servers=mcp, transfer_target="tel:+15551234567"
    )
    session = make_session(settings, channel).to_json()
    assert check(RealtimeSessionCreateRequestParam, session) == []
    assert check(call_accept_params.CallAcceptParams, session) == []  # the SIP accept body
    assert ("transcription" in session["audio"]["input"]) == (transcription != "off")


def test_the_bodies_the_upstream_client_posts_fit_the_sdk(fake: FakeOpenAI) -> None:
    settings = Settings(openai_base_url=fake.base_url, openai_api_key=API_KEY, mcp_servers=MCP_SERVERS)
    client = OpenAIClient(settings, SecretStore(settings))

    fake.register_call("rtc_contract03")

    async def post() -> None:
        await client.create_client_secret(make_session(settings, "browser").to_json(), 600)
        await client.create_call("v=0\r\n", make_session(settings, "webrtc").to_json())
        # As /sip sends it: encoded once per container (deps.sip_accept_bodies).
        await client.accept_call("rtc_contract03", EncodedJson.of(make_session(settings, "sip").to_json()))

    asyncio.run(post())
    (accept,) = fake.requests_to("/realtime/calls/rtc_contract03/accept")
    assert accept.headers["content-type"] == "application/json"
    assert check(call_accept_params.CallAcceptParams, accept.json) == []
    (secret,) = fake.requests_to("/realtime/client_secrets")
    assert check(client_secret_create_params.ClientSecretCreateParams, secret.json) == []
    (call,) = fake.requests_to("/realtime/calls")
    assert call.form is not None
    assert check(RealtimeSessionCreateRequestParam, json.loads(call.form["session"]), path="session") == []


def test_every_client_event_the_observer_sends_fits_the_sdk(
    fake: FakeOpenAI, env: pytest.MonkeyPatch
) -> None:
    env.setenv("OBSERVER_GREETING_DELAY_MS", "0")
    deps.reset()
    call_id = "rtc_contract02"
    fake.register_call(call_id, TRANSCRIBING_SESSION)
    fake.sideband_hold_seconds = -1
    fake.sideband_replies = True
    fake.sideband_script = [
        0.2,
        *function_call_events("call_time", "get_current_time", '{"timezone": "UTC"}'),
        *function_call_events("call_end", "end_call"),
    ]
    event = load_event("observer_async")
    now = time.time()
    event.update(call_id=call_id, source="webrtc", requested_at=now, call_started_at=now)

    assert observer_app.handler(event, FakeContext(remaining_seconds=30))["outcome"] == "model_ended"

    (sideband,) = fake.sidebands
    types = sideband.client_event_types()
    assert {"response.create", "conversation.item.create"} <= set(types)
    for _, sent in sideband.client_events:
        assert check(RealtimeClientEventParam, sent) == [], sent
    assert check(RealtimeClientEventParam, observer_worker.WRAP_UP) == []


# ----------------------------------------------------------------------------- the fake's own key schema


def _object_of(annotation: Any) -> Any:
    """The TypedDict inside ``Optional[...]``/``Union[..., None]``."""
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and hasattr(candidate, "__annotations__"):
            return candidate
    raise AssertionError(f"no object type in {annotation!r}")


def _assert_schema_matches(schema: KeySchema, annotation: Any, path: str) -> None:
    sdk = _object_of(annotation)
    assert set(schema) == set(allowed_keys(sdk)), path
    hints = typing.get_type_hints(sdk)
    for key, nested in schema.items():
        if nested is not None:
            _assert_schema_matches(nested, hints[key], f"{path}.{key}")


def test_the_fakes_session_keys_are_the_sdks() -> None:
    _assert_schema_matches(SESSION_KEYS, RealtimeSessionCreateRequestParam, "session")
    assert set(SESSION_KEYS) == set(allowed_keys(call_accept_params.CallAcceptParams))
    tools = typing.get_type_hints(RealtimeSessionCreateRequestParam)["tools"]
    (members,) = typing.get_args(tools)  # Iterable[Union[...]]
    by_type = {typing.get_args(typing.get_type_hints(m)["type"])[0]: m for m in typing.get_args(members)}
    assert set(by_type) == set(TOOL_KEYS)
    for kind, keys in TOOL_KEYS.items():
        assert keys == allowed_keys(by_type[kind]), kind


# ----------------------------------------------------------------------------- openai stays test-only


def test_functions_and_shared_never_import_openai() -> None:
    importers = []
    for path in [*ROOT.glob("functions/**/*.py"), *ROOT.glob("shared/**/*.py")]:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(name == "openai" or name.startswith("openai.") for name in names):
                importers.append(str(path.relative_to(ROOT)))
    assert importers == []
    requirements = (ROOT / "requirements.txt").read_text()
    assert "openai" not in requirements.lower()
