"""The observer on GPT-Live calls (`live_...`), against the fake's Live sideband (tests/fake_live.py):
the greeting, tools, exactly once across replays, end_call after the goodbye's audio, transfer,
keypad, transcript turns, usage and cost in the record, and hand-off. Every client event the observer
sends validates strictly against the SDK's `ConnectClientEventParam`."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest

import observer_app
from shared import deps
from shared.launcher import LocalObserverLauncher
from shared.records import CallRecord
from tests.conftest import API_KEY, FakeContext, LogCapture, load_event
from tests.fake_live import (
    LiveSession,
    live_caller_speech,
    live_dtmf_event,
    live_session_closed,
    live_tool_call_events,
)
from tests.fake_openai import FakeOpenAI
from tests.sdk_strict import assert_strict
from tests.test_tools import RUNS, tools_env  # noqa: F401 (fixture)

SPEED = 10.0  # the fake's session clock runs this much faster: 1 s of call = 0.1 s of test
BACKEND = "gpt-5.5"
# Made-up test prices for the backend (USD per 1M tokens): none are built in.
BACKEND_PRICES = {"input_text_tokens": 1.0, "input_cached_text_tokens": 0.1, "output_text_tokens": 8.0}


@pytest.fixture
def live_env(tools_env: pytest.MonkeyPatch, fake: FakeOpenAI) -> pytest.MonkeyPatch:  # noqa: F811
    tools_env.setenv("LIVE_BACKEND_MODEL", BACKEND)
    tools_env.setenv("TOKEN_PRICES", json.dumps({BACKEND: BACKEND_PRICES}))
    tools_env.setenv("END_CALL_QUIET_MS", "400")
    tools_env.setenv("SPEECH_WAIT_MAX_SECONDS", "6")
    deps.reset()
    fake.live.speed = SPEED
    return tools_env


def start_sip_session(fake: FakeOpenAI, script: list[Any]) -> str:
    """An inbound Live SIP call, accepted with Responses delegation (tools go to the backend)."""
    pending = fake.live.register_pending_sip_call(call_id="")
    fake.live.scripts.append(script)
    session = {
        "type": "live",
        "model": "gpt-live-1.1",
        "delegation": {"type": "responses", "responses": {"model": BACKEND}},
    }
    accepted = httpx.post(
        f"{fake.base_url}/live/sessions/{pending.session_id}/accept",
        json={"session": session},
        headers={"Authorization": f"Bearer {API_KEY}"},
    )
    assert accepted.status_code == 200, accepted.text
    assert pending.session_id is not None
    return pending.session_id


def start_webrtc_session(fake: FakeOpenAI, script: list[Any]) -> str:
    fake.live.scripts.append(script)
    body = {
        "session": {
            "model": "gpt-live-1.1",
            "delegation": {"type": "responses", "responses": {"model": BACKEND}},
        },
        "transport": {"type": "webrtc", "sdp": "v=0\r\n"},
    }
    created = httpx.post(
        f"{fake.base_url}/live/sessions", json=body, headers={"Authorization": f"Bearer {API_KEY}"}
    )
    assert created.status_code == 201, created.text
    return str(created.json()["session"]["id"])


def observe(session_id: str, source: str = "sip", remaining: float = 30, **fields: Any) -> dict[str, Any]:
    event = load_event("observer_async")
    now = time.time()
    event.update(call_id=session_id, source=source, requested_at=now, call_started_at=now, **fields)
    return observer_app.handler(event, FakeContext(remaining_seconds=remaining))


def session_of(fake: FakeOpenAI, session_id: str) -> LiveSession:
    return fake.live.sessions[session_id]


def sent(fake: FakeOpenAI, session_id: str) -> list[dict[str, Any]]:
    """What the observer(s) sent, each checked strictly against the SDK's client event union."""
    from openai.types.live import ConnectClientEventParam

    events = fake.live.client_events(session_id)
    for event in events:
        assert_strict(ConnectClientEventParam, event)
    return events


def types(events: list[dict[str, Any]]) -> list[str]:
    return [str(e.get("type")) for e in events]


def server_errors(fake: FakeOpenAI, session_id: str) -> list[dict[str, Any]]:
    return [e for s in fake.live.sidebands_of(session_id) for e in s.server_events if e["type"] == "error"]


def record_of(session_id: str) -> CallRecord:
    record = deps.record_store().get_call(session_id)
    assert record is not None
    return record


def test_greets_once_and_answers_a_tool_call_once_then_continues_once(
    live_env: pytest.MonkeyPatch, fake: FakeOpenAI
) -> None:
    script = [2.0, *live_tool_call_events("call_echo", "echo", '{"text": "hi"}'), 30.0, live_session_closed()]
    session_id = start_sip_session(fake, script)
    result = observe(session_id)
    assert result["outcome"] == "closed"
    events = sent(fake, session_id)
    assert types(events) == ["session.instructions.append", "response.item.create", "response.create"]
    greeting, output, _ = events
    assert greeting["delegation_id"] is None
    assert output["item"] == {"type": "function_call_output", "call_id": "call_echo", "output": "HI"}
    assert RUNS == ["hi"]
    assert server_errors(fake, session_id) == []
    record = record_of(session_id)
    assert (record.api, record.end_reason) == ("live", "caller_hung_up")
    assert [(c.name, c.result) for c in record.tool_calls] == [("echo", "HI")]


def test_a_replay_after_a_re_attach_acts_on_nothing_twice(
    live_env: pytest.MonkeyPatch, fake: FakeOpenAI, logs: LogCapture
) -> None:
    script = [
        5.0,  # after the greeting (both sides may speak at once: interleaved words are separate turns)
        *live_caller_speech("I want to order."),
        live_dtmf_event("5"),
        *live_tool_call_events("call_once", "echo", '{"text": "once"}'),
        60.0,
        live_session_closed(),
    ]
    session_id = start_sip_session(fake, script)
    done: list[dict[str, Any]] = []
    runner = _thread(lambda: done.append(observe(session_id)))
    session = session_of(fake, session_id)
    assert fake.wait_for(lambda: session.pending_calls == {} and session.tool_outputs != [], timeout=10)
    time.sleep(0.3)
    _drop_sideband(fake, session)  # the socket is lost; the session goes on: the observer attaches again
    assert fake.wait_for(lambda: len(fake.live.sidebands_of(session_id)) == 2, timeout=5)
    runner.join(timeout=20)
    (result,) = done
    assert result["outcome"] == "closed"
    second = fake.live.sidebands_of(session_id)[1]
    assert "response.event" in second.server_event_types()  # the replay held the tool call again
    assert "transport.dtmf.received" in second.server_event_types()
    assert RUNS == ["once"]
    assert types(sent(fake, session_id)).count("response.item.create") == 1
    assert len(logs.messages("keypad")) == 1
    record = record_of(session_id)
    assert [(t.role, t.text) for t in record.turns if t.role == "caller"] == [("caller", "I want to order.")]


def _thread(target: Any) -> Any:
    import threading

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def _drop_sideband(fake: FakeOpenAI, session: LiveSession) -> None:
    loop = fake.live._loop
    assert loop is not None
    for _, queue in list(session._queues):
        loop.call_soon_threadsafe(queue.put_nowait, None)


def _hangup_requests(fake: FakeOpenAI, session_id: str) -> list[Any]:
    return fake.requests_to(f"/live/sessions/{session_id}/hangup")


def test_end_call_waits_for_the_goodbye_audio_then_hangs_up_a_sip_call(
    live_env: pytest.MonkeyPatch, fake: FakeOpenAI
) -> None:
    script = [1.0, *live_tool_call_events("call_end", "end_call", "{}"), 60.0, live_session_closed()]
    session_id = start_sip_session(fake, script)
    result = observe(session_id)
    assert result["outcome"] == "model_ended"
    events = sent(fake, session_id)
    assert types(events)[-2:] == ["response.item.create", "session.instructions.append"]  # the goodbye
    assert "response.create" not in types(events)  # the call ends: the backend is not continued
    (hangup,) = _hangup_requests(fake, session_id)
    session = session_of(fake, session_id)
    goodbye_words = [e for e in session.timeline if e["type"] == "session.output_transcript.delta"]
    spoken_until = session.started_at + goodbye_words[-1]["end_ms"] / 1000 / SPEED
    assert hangup.received_at >= spoken_until + 0.3  # after the audio, and a quiet gap
    assert hangup.received_at < spoken_until + 3
    assert session.close_reason == "close_requested"
    assert record_of(session_id).end_reason == "model_ended"


def test_end_call_closes_a_webrtc_session_over_the_sideband(
    live_env: pytest.MonkeyPatch, fake: FakeOpenAI
) -> None:
    script = [1.0, *live_tool_call_events("call_end", "end_call", "{}"), 60.0, live_session_closed()]
    session_id = start_webrtc_session(fake, script)
    result = observe(session_id, source="webrtc")
    assert result["outcome"] == "model_ended"
    assert types(sent(fake, session_id))[-1] == "session.close"
    assert _hangup_requests(fake, session_id) == []
    assert session_of(fake, session_id).close_reason == "close_requested"


def test_transfer_refers_the_live_session(live_env: pytest.MonkeyPatch, fake: FakeOpenAI) -> None:
    live_env.setenv("TRANSFER_TARGET", "tel:+14155550123")
    deps.reset()
    script = [1.0, *live_tool_call_events("call_xfer", "transfer_call", "{}"), 60.0, live_session_closed()]
    session_id = start_sip_session(fake, script)
    assert observe(session_id)["outcome"] == "transferred"
    (refer,) = fake.requests_to(f"/live/sessions/{session_id}/refer")
    assert refer.json == {"target_uri": "tel:+14155550123"}
    assert record_of(session_id).end_reason == "transferred"


def test_keypad_zero_transfers(live_env: pytest.MonkeyPatch, fake: FakeOpenAI, logs: LogCapture) -> None:
    live_env.setenv("TRANSFER_TARGET", "tel:+14155550123")
    deps.reset()
    session_id = start_sip_session(fake, [1.0, live_dtmf_event("0"), 60.0, live_session_closed()])
    assert observe(session_id)["outcome"] == "transferred"
    assert [line["digit"] for line in logs.messages("keypad")] == ["0"]
    assert len(fake.requests_to(f"/live/sessions/{session_id}/refer")) == 1


def test_transcripts_are_whole_turns_and_usage_is_priced(
    live_env: pytest.MonkeyPatch, fake: FakeOpenAI
) -> None:
    script = [
        5.0,  # the greeting is spoken meanwhile
        *live_caller_speech("Hi, I have a question about my order."),
        2.0,
        *live_caller_speech("It is number five."),
        *live_tool_call_events("call_t", "echo", '{"text": "order"}'),
        15.0,
        live_session_closed("remote_hangup"),
    ]
    session_id = start_sip_session(fake, script)
    assert observe(session_id)["outcome"] == "closed"
    record = record_of(session_id)
    greeting, answer = fake.live.greeting_text, fake.live.tool_answer_text
    assert [(t.role, t.text) for t in record.turns] == [
        ("assistant", greeting),
        ("caller", "Hi, I have a question about my order."),
        ("caller", "It is number five."),  # a pause ends a turn
        ("assistant", answer),
    ]
    closed = next(e for e in session_of(fake, session_id).timeline if e["type"] == "session.closed")
    seconds = closed["usage"]["seconds"]
    assert seconds > 0
    assert record.usage.seconds == seconds  # the final, cumulative figure: never a sum
    # The backend answered twice (the tool call, then the answer): 120 tokens in, 18 out each.
    assert (record.usage.backend_input_tokens, record.usage.backend_output_tokens) == (240, 36)
    assert (record.model, record.backend_model) == ("gpt-live-1.1", BACKEND)
    expected = seconds * 0.05 / 60 + (240 * 1.0 + 36 * 8.0) / 1e6
    assert record.cost_usd == pytest.approx(expected, abs=1e-6)  # stored to the micro-dollar


@pytest.mark.parametrize(("reason", "end_reason"), [("expired", "max_length"), ("content", "error")])
def test_the_session_s_own_end_reason_is_recorded(
    live_env: pytest.MonkeyPatch, fake: FakeOpenAI, reason: str, end_reason: str
) -> None:
    session_id = start_sip_session(fake, [1.0, live_session_closed(reason)])
    observe(session_id)
    assert record_of(session_id).end_reason == end_reason


def test_a_live_call_is_handed_off_and_the_successor_acts_on_no_replay(
    live_env: pytest.MonkeyPatch, fake: FakeOpenAI, logs: LogCapture
) -> None:
    live_env.setenv("OBSERVER_STOP_MARGIN_SECONDS", "2")
    live_env.setenv("MAX_CALL_SECONDS", "0")
    deps.reset()
    # The keypad press and the tool call fall within the 3 s the successor's attach replays.
    script = [8.0, live_dtmf_event("5"), *live_tool_call_events("call_h", "echo", '{"text": "h"}'), 600.0]
    session_id = start_sip_session(fake, script)
    outcomes: list[dict[str, Any]] = []

    def successor(event: dict[str, Any]) -> None:
        outcomes.append(observer_app.handler(event, FakeContext(remaining_seconds=30)))

    launcher = LocalObserverLauncher(successor)
    deps.install_local_launcher(launcher)
    first = observe(session_id, remaining=3.5)
    assert first["outcome"] == "handed_off"
    first_sb, second_sb = fake.live.sidebands_of(session_id)
    assert second_sb.opened_at < (first_sb.closed_at or 0)  # no gap in the observation
    assert "transport.dtmf.received" in second_sb.server_event_types()  # replayed to the successor
    session = session_of(fake, session_id)
    loop = fake.live._loop
    assert loop is not None
    asyncio.run_coroutine_threadsafe(_close(fake, session), loop).result(5)
    for thread in launcher.threads:
        thread.join(timeout=15)
    assert [o["outcome"] for o in outcomes] == ["closed"]
    assert RUNS == ["h"]
    assert len(logs.messages("keypad")) == 1
    # One greeting in all; the successor sent only its replay marker.
    assert types(sent(fake, session_id)).count("session.instructions.append") == 1
    assert second_sb.client_event_types() == ["session.update"]
    assert record_of(session_id).end_reason == "caller_hung_up"


async def _close(fake: FakeOpenAI, session: LiveSession) -> None:
    fake.live._close(session, "remote_hangup")
