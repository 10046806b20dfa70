"""Server-side tools end to end: the observer against the fake OpenAI's real sideband.

The fake streams a function call the way the GA API does (arguments.done, output_item.done and
response.done, all with one call_id); the observer must answer it once with a
`function_call_output`, then `response.create`.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

import observer_app
import observer_tools
import observer_worker
from shared import deps
from shared.launcher import LocalObserverLauncher, ObserveRequest
from shared.store import MemoryCallStore
from shared.tools import available_tools, tool_from_function
from shared.voice_api import (
    ADAPTERS,
    ApiError,
    Keypad,
    Playback,
    ResponseDone,
    ResponseStarted,
    SessionInfo,
    Transcript,
)
from tests.conftest import API_KEY, FakeContext, LogCapture, load_event
from tests.fake_openai import (
    FakeOpenAI,
    SidebandSession,
    dtmf_event,
    function_call_events,
    mcp_call_events,
    spoken_response_events,
)

CALL_ID = "rtc_tools0123456789abcdef"
TARGET = "tel:+15551234567"
RUNS: list[str] = []  # what the test tools were run with, in order


class EchoArgs(BaseModel):
    text: str


async def echo(args: EchoArgs) -> str:
    """Repeat the text."""
    RUNS.append(args.text)
    return args.text.upper()


class SleepArgs(BaseModel):
    seconds: float


async def slow(args: SleepArgs) -> dict[str, float]:
    """Sleep a while."""
    RUNS.append(f"slow {args.seconds}")
    await asyncio.sleep(args.seconds)
    return {"slept": args.seconds}


async def broken(args: EchoArgs) -> str:
    """Always fails."""
    RUNS.append("broken")
    raise RuntimeError("database down")


TEST_TOOLS = {
    t.name: t for t in (tool_from_function(echo), tool_from_function(slow), tool_from_function(broken))
}


@pytest.fixture
def tools_env(env: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    RUNS.clear()
    env.setenv("TOOLS", "end_call,transfer_call,get_current_time,echo,slow,broken")
    env.setenv("OBSERVER_GREETING_DELAY_MS", "0")
    env.setenv("TOOL_FILLER_SECONDS", "0")
    deps.reset()
    with deps.tool_registry.override({**available_tools(), **TEST_TOOLS}):
        yield env


def observe(source: str = "webrtc", remaining: float = 30) -> dict[str, Any]:
    event = load_event("observer_async")
    now = time.time()
    event.update(call_id=CALL_ID, source=source, requested_at=now, call_started_at=now)
    return observer_app.handler(event, FakeContext(remaining_seconds=remaining))


def outputs(sideband: SidebandSession) -> dict[str, list[Any]]:
    """call_id -> every output sent for it (parsed JSON where it is JSON)."""
    found: dict[str, list[Any]] = {}
    for item in sideband.tool_outputs():
        try:
            value: Any = json.loads(item["output"])
        except ValueError:
            value = item["output"]
        found.setdefault(item["call_id"], []).append(value)
    return found


def plain_creates(sideband: SidebandSession) -> list[float]:
    return [at for at, e in sideband.response_creates() if "response" not in e]


def instructed(sideband: SidebandSession) -> list[str]:
    return [e["response"]["instructions"] for _, e in sideband.response_creates() if "response" in e]


def first_arrival(sideband: SidebandSession, kind: str) -> float:
    return next(at for at, e in sideband.client_events if e.get("type") == kind)


def test_a_tool_call_is_answered_once_then_the_model_is_asked_to_speak(
    fake: FakeOpenAI, tools_env: pytest.MonkeyPatch, logs: LogCapture
) -> None:
    fake.register_call(CALL_ID)
    fake.sideband_script = [
        *function_call_events("call_time", "get_current_time", '{"timezone": "Europe/Paris"}'),
        *function_call_events("call_echo", "echo", '{"text": "hi"}'),
    ]
    assert observe()["outcome"] == "closed"
    (sideband,) = fake.sidebands
    found = outputs(sideband)
    # Each call arrived three times and was answered once.
    assert sorted(found) == ["call_echo", "call_time"]
    (time_output,) = found["call_time"]
    assert time_output["timezone"] == "Europe/Paris"
    assert time_output["local_time"][:4].isdigit()
    assert found["call_echo"] == ["HI"]
    assert RUNS == ["hi"]
    # Greeting + one response.create per answered response, each after its output.
    creates = plain_creates(sideband)
    assert len(creates) == 3
    outputs_at = [at for at, e in sideband.client_events if e.get("type") == "conversation.item.create"]
    assert creates[1] > outputs_at[0]
    assert creates[2] > outputs_at[1]
    answered = logs.messages("tool call answered")
    assert {(r["tool"], r["ok"]) for r in answered} == {("get_current_time", True), ("echo", True)}
    assert all("hi" not in json.dumps(r) for r in answered)  # arguments are not logged


@pytest.mark.parametrize(
    ("name", "arguments", "error"),
    [
        ("get_current_time", '{"timezone": "Mars/Olympus"}', "unknown time zone"),
        ("echo", '{"text": 5}', "invalid arguments: text"),
        ("echo", "{not json", "invalid arguments"),
        ("launch_rockets", "{}", "unknown tool 'launch_rockets'"),
        ("broken", '{"text": "x"}', "broken failed: RuntimeError: database down"),
        ("slow", '{"seconds": 5}', "slow did not finish within 0.3 s"),
        # Not offered on a WebRTC call (no phone line): the model hears it does not exist.
        ("transfer_call", "{}", "unknown tool 'transfer_call'"),
    ],
)
def test_bad_calls_get_an_error_output_and_the_call_goes_on(
    fake: FakeOpenAI, tools_env: pytest.MonkeyPatch, name: str, arguments: str, error: str
) -> None:
    tools_env.setenv("TOOL_TIMEOUT_SECONDS", "0.3")
    tools_env.setenv("TRANSFER_TARGET", TARGET)
    deps.reset()
    fake.register_call(CALL_ID)
    fake.sideband_script = [*function_call_events("call_bad", name, arguments), 0.5]
    started = time.monotonic()
    assert observe()["outcome"] == "closed"
    assert time.monotonic() - started < 5
    (sideband,) = fake.sidebands
    (output,) = outputs(sideband)["call_bad"]
    assert error in output["error"]
    assert len(plain_creates(sideband)) == 2  # the greeting, then the model speaks about the error
    assert fake.requests_to("/refer") == []


def test_a_slow_tool_gets_a_filler_line_first(fake: FakeOpenAI, tools_env: pytest.MonkeyPatch) -> None:
    tools_env.setenv("TOOL_FILLER_SECONDS", "0.2")
    deps.reset()
    fake.register_call(CALL_ID)
    fake.sideband_script = [*function_call_events("call_slow", "slow", '{"seconds": 0.8}'), 1.0]
    observe()
    (sideband,) = fake.sidebands
    assert outputs(sideband)["call_slow"] == [{"slept": 0.8}]
    (filler,) = instructed(sideband)
    assert "One moment" in filler
    asked_at = next(at for at, e in sideband.response_creates() if "response" in e)
    answered_at = first_arrival(sideband, "conversation.item.create")
    assert asked_at < answered_at  # the caller hears "one moment" while the tool still runs
    assert answered_at - asked_at > 0.4


def test_a_fast_tool_gets_no_filler(fake: FakeOpenAI, tools_env: pytest.MonkeyPatch) -> None:
    tools_env.setenv("TOOL_FILLER_SECONDS", "0.5")
    deps.reset()
    fake.register_call(CALL_ID)
    fake.sideband_script = [*function_call_events("call_fast", "slow", '{"seconds": 0.05}'), 0.8]
    observe()
    (sideband,) = fake.sidebands
    assert outputs(sideband)["call_fast"] == [{"slept": 0.05}]
    assert instructed(sideband) == []


def test_end_call_waits_for_the_goodbye_to_play_then_hangs_up(
    fake: FakeOpenAI, tools_env: pytest.MonkeyPatch, logs: LogCapture
) -> None:
    fake.register_call(CALL_ID)
    fake.sideband_hold_seconds = -1  # only the hang-up ends it
    fake.sideband_replies = True
    fake.reply_audio_seconds = 0.6  # the goodbye plays for 0.6 s after its response.done
    fake.sideband_script = [0.3, *function_call_events("call_end", "end_call")]
    result = observe()
    assert result["outcome"] == "model_ended"
    (sideband,) = fake.sidebands
    assert outputs(sideband)["call_end"] == [{"ok": True}]
    (goodbye,) = instructed(sideband)
    assert "goodbye" in goodbye
    (hangup,) = fake.requests_to(f"/{CALL_ID}/hangup")
    stopped = [e for e in sideband.server_events if e["type"] == "output_audio_buffer.stopped"]
    assert len(stopped) == 2  # the greeting's and the goodbye's
    goodbye_asked = next(at for at, e in sideband.response_creates() if "response" in e)
    assert hangup.received_at - goodbye_asked >= 0.6  # not cut off
    assert hangup.received_at - goodbye_asked < 3
    assert logs.messages("hanging up: the model ended the call")[0]["reason"] == "model_ended"


def test_end_call_without_playback_events_waits_a_margin_after_response_done(
    fake: FakeOpenAI, tools_env: pytest.MonkeyPatch
) -> None:
    tools_env.setenv("END_CALL_MARGIN_SECONDS", "0.4")
    deps.reset()
    fake.register_call(CALL_ID)
    fake.sideband_hold_seconds = -1
    fake.sideband_replies = True
    fake.reply_audio_seconds = None  # no output_audio_buffer.stopped ever comes
    fake.sideband_script = [0.3, *function_call_events("call_end", "end_call")]
    assert observe()["outcome"] == "model_ended"
    (sideband,) = fake.sidebands
    (hangup,) = fake.requests_to(f"/{CALL_ID}/hangup")
    goodbye_asked = next(at for at, e in sideband.response_creates() if "response" in e)
    assert 0.4 <= hangup.received_at - goodbye_asked < 2.5


def sip_transfer(fake: FakeOpenAI, env: pytest.MonkeyPatch, script: list[Any]) -> dict[str, Any]:
    env.setenv("TRANSFER_TARGET", TARGET)
    env.setenv("TRANSFER_CONFIRM_SECONDS", "0.5")
    deps.reset()
    fake.register_call(CALL_ID)
    fake.sideband_hold_seconds = -1
    fake.sideband_replies = True
    fake.sideband_script = script
    return observe("sip")


def test_transfer_speaks_the_handover_then_refers_to_the_configured_target(
    fake: FakeOpenAI, tools_env: pytest.MonkeyPatch
) -> None:
    args = json.dumps({"target": "tel:+19990000000"})  # the model cannot choose: extra fields refused
    result = sip_transfer(
        fake,
        tools_env,
        [
            0.2,
            *function_call_events("call_evil", "transfer_call", args),
            0.5,
            *function_call_events("call_xfer", "transfer_call"),
        ],
    )
    assert result["outcome"] == "transferred"
    (sideband,) = fake.sidebands
    found = outputs(sideband)
    assert "invalid arguments" in found["call_evil"][0]["error"]
    assert found["call_xfer"] == [{"ok": True}]
    (refer,) = fake.requests_to(f"/{CALL_ID}/refer")
    assert refer.json == {"target_uri": TARGET}
    (handover,) = instructed(sideband)
    assert "transferring" in handover
    assert refer.received_at > next(at for at, e in sideband.response_creates() if "response" in e)
    assert fake.requests_to("/hangup") == []


@pytest.mark.parametrize("fault", ["ignored", "500"])
def test_a_transfer_that_does_not_happen_tells_the_caller_and_hangs_up(
    fake: FakeOpenAI, tools_env: pytest.MonkeyPatch, fault: str
) -> None:
    if fault == "ignored":
        fake.refer_outcome = "ignore"  # 200, yet no REFER reaches the trunk
    else:
        fake.fail_next("/refer", 500)
    result = sip_transfer(fake, tools_env, [0.2, *function_call_events("call_xfer", "transfer_call")])
    assert result["outcome"] == "transfer_failed"
    (sideband,) = fake.sidebands
    handover, failed = instructed(sideband)
    assert "transferring" in handover
    assert "did not go through" in failed
    (refer,) = fake.requests_to("/refer")
    (hangup,) = fake.requests_to("/hangup")
    assert hangup.received_at > refer.received_at
    if fault == "ignored":
        assert hangup.received_at - refer.received_at >= 0.5  # TRANSFER_CONFIRM_SECONDS


def test_keypad_zero_transfers_a_sip_call_by_default(
    fake: FakeOpenAI, tools_env: pytest.MonkeyPatch, logs: LogCapture
) -> None:
    result = sip_transfer(fake, tools_env, [0.2, dtmf_event("5"), dtmf_event("0")])
    assert result["outcome"] == "transferred"
    assert [r["digit"] for r in logs.messages("keypad")] == ["5", "0"]
    (refer,) = fake.requests_to("/refer")
    assert refer.json == {"target_uri": TARGET}
    assert [r["reason"] for r in logs.messages("call action")] == ["keypad"]


def test_keypad_zero_does_nothing_without_a_transfer_target(
    fake: FakeOpenAI, tools_env: pytest.MonkeyPatch, logs: LogCapture
) -> None:
    fake.register_call(CALL_ID)
    fake.sideband_script = [dtmf_event("0"), 0.3]
    assert observe("sip")["outcome"] == "closed"
    assert [r["digit"] for r in logs.messages("keypad")] == ["0"]
    assert fake.requests_to("/refer") == []
    assert logs.messages("call action") == []


def test_mcp_events_are_logged(fake: FakeOpenAI, tools_env: pytest.MonkeyPatch, logs: LogCapture) -> None:
    fake.register_call(CALL_ID)
    fake.sideband_script = [
        *mcp_call_events("docs", "search"),
        *mcp_call_events("docs", "lookup", failed=True),
    ]
    observe()
    lines = logs.messages("mcp event")
    types = [r["event_type"] for r in lines]
    assert types.count("mcp_list_tools.completed") == 2
    assert "response.mcp_call.completed" in types
    assert "response.mcp_call.failed" in types
    items = [r for r in lines if r.get("item_type") == "mcp_call"]
    assert [(r["server_label"], r["tool"], bool(r.get("error"))) for r in items] == [
        ("docs", "search", False),
        ("docs", "lookup", True),
    ]
    assert fake.sidebands[0].tool_outputs() == []  # OpenAI runs MCP tools itself


def test_a_call_recorded_done_by_a_predecessor_is_not_answered_again(
    fake: FakeOpenAI, tools_env: pytest.MonkeyPatch
) -> None:
    store = MemoryCallStore()
    assert store.claim_tool_call(CALL_ID, "call_old", "0:dead") is None
    store.finish_tool_call(CALL_ID, "call_old", '"HI"')
    assert store.claim_tool_call(CALL_ID, "call_live", "0:alive") is None  # started just now, elsewhere
    fake.register_call(CALL_ID)
    fake.sideband_script = [
        *function_call_events("call_old", "echo", '{"text": "hi"}'),
        *function_call_events("call_live", "echo", '{"text": "hi"}'),
        0.3,
    ]
    with deps.call_store.override(store):
        observe()
    (sideband,) = fake.sidebands
    assert sideband.tool_outputs() == []
    assert RUNS == []
    assert len(plain_creates(sideband)) == 1  # only the greeting


def test_a_call_left_started_by_a_crashed_observer_gets_an_error_not_a_second_run(
    fake: FakeOpenAI, tools_env: pytest.MonkeyPatch
) -> None:
    offset = [-60.0]  # the crashed observer claimed it a minute ago
    store = MemoryCallStore(clock=lambda: time.time() + offset[0])
    assert store.claim_tool_call(CALL_ID, "call_lost", "0:crashed") is None
    offset[0] = 0.0
    fake.register_call(CALL_ID)
    fake.sideband_script = [*function_call_events("call_lost", "echo", '{"text": "hi"}'), 0.3]
    with deps.call_store.override(store):
        observe()
    (sideband,) = fake.sidebands
    (output,) = outputs(sideband)["call_lost"]
    assert "interrupted" in output["error"]
    assert RUNS == []
    record = store.claim_tool_call(CALL_ID, "call_lost", "0:later")
    assert record is not None
    assert record.status == "done"


def test_a_tool_in_flight_at_hand_off_is_finished_by_the_predecessor_only(
    fake: FakeOpenAI, tools_env: pytest.MonkeyPatch
) -> None:
    tools_env.setenv("OBSERVER_STOP_MARGIN_SECONDS", "2")
    tools_env.setenv("MAX_CALL_SECONDS", "0")
    deps.reset()
    fake.register_call(CALL_ID)
    fake.sideband_hold_seconds = -1
    slow_call = function_call_events("call_slow", "slow", '{"seconds": 1.2}')
    # The predecessor hands off after ~2 s, while the tool (started at ~1.5 s) still runs; the
    # successor then sees the same call in a late response.done.
    fake.sideband_scripts = [[1.5, *slow_call], [0.1, slow_call[-1], 2.0]]
    outcomes: list[dict[str, Any]] = []
    launcher = LocalObserverLauncher(lambda e: outcomes.append(observer_app.handler(e, FakeContext(30))))
    deps.install_local_launcher(launcher)
    first = observe(remaining=4)
    assert first["outcome"] == "handed_off"
    assert fake.wait_for(lambda: len(fake.sidebands) == 2)
    predecessor, successor = fake.sidebands
    assert outputs(predecessor) == {"call_slow": [{"slept": 1.2}]}
    # ... and made the model speak about it before it let go.
    assert plain_creates(predecessor)[-1] > first_arrival(predecessor, "conversation.item.create")
    assert predecessor.closed_at is not None
    assert successor.opened_at < predecessor.closed_at
    time.sleep(0.5)
    assert successor.tool_outputs() == []
    assert RUNS == ["slow 1.2"]
    hangup = httpx.post(
        f"{fake.base_url}/realtime/calls/{CALL_ID}/hangup", headers={"Authorization": f"Bearer {API_KEY}"}
    )
    assert hangup.status_code == 200
    for thread in launcher.threads:
        thread.join(timeout=10)
    assert [o["outcome"] for o in outcomes] == ["closed"]


def test_parallel_calls_in_one_response_get_one_response_create(
    fake: FakeOpenAI, tools_env: pytest.MonkeyPatch
) -> None:
    first = function_call_events("call_a", "echo", '{"text": "a"}', response_id="resp_both")
    second = function_call_events("call_b", "slow", '{"seconds": 0.2}', response_id="resp_both")
    done = {
        **first[-1],
        "response": {**first[-1]["response"], "output": [first[-2]["item"], second[-2]["item"]]},
    }
    fake.register_call(CALL_ID)
    fake.sideband_script = [*first[:-1], *second[1:-1], done, 0.6]
    observe()
    (sideband,) = fake.sidebands
    assert sorted(outputs(sideband)) == ["call_a", "call_b"]
    creates = plain_creates(sideband)
    assert len(creates) == 2  # the greeting, then one for both outputs, after the slower one
    assert creates[1] > max(
        at for at, e in sideband.client_events if e.get("type") == "conversation.item.create"
    )


def observe_with(fake: FakeOpenAI, tool_calls: observer_tools.ToolCalls) -> observer_worker.ObserveResult:
    """The observer loop itself, with hand-made tool knobs (a short grace for a dead owner)."""
    request = ObserveRequest(call_id=CALL_ID, source="webrtc")
    call = observer_worker.CallSession(
        request, url=f"{fake.ws_url}?call_id={CALL_ID}", api_key=API_KEY, tool_calls=tool_calls
    )
    return asyncio.run(observer_worker.observe(call, observer_worker.Timing(time_budget=10, greet=False)))


@pytest.mark.parametrize("owner_finishes", [True, False])
def test_a_call_started_elsewhere_is_waited_for_then_answered_only_if_its_owner_died(
    fake: FakeOpenAI, tools_env: pytest.MonkeyPatch, owner_finishes: bool
) -> None:
    store = MemoryCallStore()
    claimed = time.monotonic()
    assert store.claim_tool_call(CALL_ID, "call_elsewhere", "0:other") is None  # just now, elsewhere
    if owner_finishes:  # the other observer answers within its time limit
        threading.Timer(0.2, lambda: store.finish_tool_call(CALL_ID, "call_elsewhere", '"HI"')).start()
    fake.register_call(CALL_ID)
    fake.sideband_script = [*function_call_events("call_elsewhere", "echo", '{"text": "hi"}'), 1.2]
    knobs = observer_tools.ToolKnobs(time_limit=0.3, stale_grace=0.3)
    calls = observer_tools.ToolCalls(
        CALL_ID, "1:me", tools=TEST_TOOLS, store=store, control=_no_control(), knobs=knobs
    )
    observe_with(fake, calls)
    (sideband,) = fake.sidebands
    assert RUNS == []
    if owner_finishes:
        assert sideband.tool_outputs() == []
        assert plain_creates(sideband) == []
    else:
        (output,) = outputs(sideband)["call_elsewhere"]
        assert "interrupted" in output["error"]
        answered_at = first_arrival(sideband, "conversation.item.create")
        assert answered_at - claimed >= 0.6  # not before the owner's time limit + grace
        assert len(plain_creates(sideband)) == 1


def _no_control() -> observer_tools.CallControl:
    return observer_tools.CallControl(hangup=_never, refer=_never_refer)


def test_tool_calls_unit_ignores_non_function_items() -> None:
    calls = observer_tools.ToolCalls(
        CALL_ID,
        "0:x",
        tools={},
        store=MemoryCallStore(),
        control=_no_control(),
        knobs=observer_tools.ToolKnobs(),
    )

    async def feed() -> None:
        # Malformed on purpose: a message item carrying a call's fields, and a call without its call_id.
        for frame in (
            {"type": "response.output_item.done", "item": {"type": "message", "call_id": "x", "name": "y"}},
            {"type": "response.function_call_arguments.done", "name": "echo"},  # no call_id
        ):
            for event in REALTIME.parser().parse(json.dumps(frame)):
                calls.on_event(event)
        await asyncio.sleep(0)

    asyncio.run(feed())
    assert calls._tasks == set()  # nothing was started


async def _never() -> None:
    raise AssertionError("no hang-up expected")


async def _never_refer(target: str) -> None:
    raise AssertionError("no refer expected")


REALTIME = ADAPTERS["realtime"]


def _unit_calls() -> observer_tools.ToolCalls:
    return observer_tools.ToolCalls(
        CALL_ID,
        "0:x",
        tools={},
        store=MemoryCallStore(),
        control=_no_control(),
        knobs=observer_tools.ToolKnobs(),
    )


def test_tool_events_are_exactly_the_types_on_event_acts_on() -> None:
    """The reader hands ToolCalls only `TOOL_EVENTS`: a typed event `on_event` handles must be in it,
    and no Realtime event outside them reaches it."""
    from bench.scenarios import realistic_script

    calls = _unit_calls()
    parser = REALTIME.parser()

    def acts_on(event: Any) -> bool:
        before = calls._changed
        calls.on_event(event)
        return calls._changed is not before  # every handled type ends in _notify()

    async def feed() -> None:
        samples = [
            ResponseStarted("resp_x"),
            ResponseDone("resp_x", "completed"),
            Playback("stopped", "resp_x"),
            Keypad("5"),
        ]
        for event in samples:
            assert isinstance(event, observer_tools.TOOL_EVENTS), event
            assert acts_on(event), event
        for event in (
            SessionInfo("gpt-realtime"),
            Transcript("caller", "hi", final=True),
            ApiError("x", "y"),
        ):
            assert not isinstance(event, observer_tools.TOOL_EVENTS), event
        tool_types = {"response.created", "response.done", "response.function_call_arguments.done"}
        tool_types |= {"response.output_item.done", "input_audio_buffer.dtmf_event_received"}
        tool_types |= {
            "output_audio_buffer.started",
            "output_audio_buffer.stopped",
            "output_audio_buffer.cleared",
        }
        for frame in realistic_script(400):
            typed = parser.parse(json.dumps(frame))
            reaches = [e for e in typed if isinstance(e, observer_tools.TOOL_EVENTS)]
            if str(frame["type"]) not in tool_types:
                assert reaches == [], frame["type"]

    asyncio.run(feed())


def test_the_reader_hands_tool_calls_only_tool_events() -> None:
    seen: list[str] = []

    class Recorder:
        def on_event(self, event: Any) -> None:
            seen.append(type(event).__name__)

        def on_closed(self) -> None:
            seen.append("closed")

        def attach(self, send: Any) -> None:
            pass

    spoken = spoken_response_events("Hello", deltas=["Hel"])
    called = function_call_events("c1", "echo", '{"text": "hi"}')
    item = {"id": "item_1", "type": "message", "role": "user", "content": []}
    events = [
        spoken[1],  # response.output_audio_transcript.delta
        {"type": "rate_limits.updated", "rate_limits": []},
        called[0],  # response.created
        called[3],  # response.function_call_arguments.done
        {"type": "conversation.item.created", "item": item},
        called[-1],  # response.done
        dtmf_event("5"),
    ]
    frames = [
        json.dumps({"event_id": f"event_{i}", **e} if "dtmf" not in e["type"] else e)
        for i, e in enumerate(events)
    ]

    class Socket:
        def __aiter__(self) -> Any:
            return self._frames()

        async def _frames(self) -> Any:
            for frame in frames:
                yield frame

    result = observer_worker.ObserveResult("closed")
    call = observer_worker.CallSession(
        ObserveRequest(call_id="rtc_x", source="sip"),
        url="ws://unused",
        api_key=API_KEY,
        tool_calls=Recorder(),  # type: ignore[arg-type]
    )
    asyncio.run(observer_worker._read(call, Socket(), result))  # type: ignore[arg-type]
    assert result.events == len(frames)
    assert seen == ["ResponseStarted", "ToolCall", "ToolCall", "ResponseDone", "Keypad"]
