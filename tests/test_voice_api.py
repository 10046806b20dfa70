"""The per-API adapters (shared/voice_api): SDK-valid server events of each API parsed into the
observer's typed events, client events validated strictly against the SDK's params, the sideband
URLs and call-control paths, and the reflected-audio fast path (never a JSON parse)."""

from __future__ import annotations

import base64
import json
from typing import Any, get_args

import pytest
from openai.types.live import ConnectServerEvent
from openai.types.live.connect_client_event_param import ConnectClientEventParam
from openai.types.realtime import RealtimeServerEvent
from openai.types.realtime.realtime_client_event_param import RealtimeClientEventParam
from openai.types.responses import ResponseStreamEvent
from pydantic import BaseModel

from shared.voice_api import (
    ApiError,
    Closed,
    Keypad,
    LiveAdapter,
    ObserverEvent,
    Playback,
    RealtimeAdapter,
    ResponseDone,
    ResponseStarted,
    SessionInfo,
    SessionUsage,
    TokenUsage,
    ToolCall,
    Transcript,
    adapter_for,
    adapter_for_call,
)
from shared.voice_api import live as live_module
from tests.sdk_strict import assert_strict

LIVE_ID = "live_u0_479a275623b54bdb9b6fbae2f7cbd408"
RTC_ID = "rtc_abc123"
LIVE = LiveAdapter()
REALTIME = RealtimeAdapter()
# 20 ms of 24 kHz mono PCM16: 960 bytes -> 1,280 base64 characters, as the sideband reflects it.
AUDIO = base64.b64encode(bytes(range(256)) * 3 + bytes(192)).decode()


def live_event(event: dict[str, Any]) -> str:
    """An SDK-valid Live server event as the sideband sends it (its inner Responses event too)."""
    assert_strict(ConnectServerEvent, event)
    if event["type"] == "response.event":
        inner = event["event"]
        assert_strict(responses_event_class(inner["type"]), inner)
    return json.dumps(event)


def responses_event_class(kind: str) -> type[BaseModel]:
    """The Responses streaming event class of `kind` (the SDK's union has no discriminator)."""
    (union, *_) = get_args(ResponseStreamEvent)
    found = [m for m in get_args(union) if kind in get_args(m.model_fields["type"].annotation)]
    assert len(found) == 1, kind
    return found[0]  # type: ignore[no-any-return]


def realtime_event(event: dict[str, Any]) -> str:
    assert_strict(RealtimeServerEvent, event)
    return json.dumps(event)


def backend(event_id: str, inner: dict[str, Any], delegation: str | None = "item_d1") -> str:
    return live_event(
        {"type": "response.event", "event_id": event_id, "delegation_id": delegation, "event": inner}
    )


def response_snapshot(response_id: str, status: str, usage: dict[str, Any] | None = None) -> dict[str, Any]:
    # Live's lifecycle snapshots: empty output and tools, instructions null, no input.
    snapshot: dict[str, Any] = {
        "id": response_id,
        "object": "response",
        "created_at": 1_719_168_000,
        "model": "gpt-5.6-luna",
        "status": status,
        "output": [],
        "tools": [],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "instructions": None,
    }
    if usage is not None:
        snapshot["usage"] = usage
    return snapshot


def function_call_item(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": f"fc_{call_id}",
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


# ----------------------------------------------------------------------------- Live


def test_live_tool_calls_come_only_from_the_inner_output_item_done() -> None:
    parser = LIVE.parser()
    item = function_call_item("call_1", "get_current_time", '{"zone":"UTC"}')
    frames = [
        live_event(
            {
                "type": "session.delegation.created",
                "event_id": "e1",
                "offset_ms": 1200,
                "delegation": {
                    "id": "item_d1",
                    "type": "delegation",
                    "target": "responses",
                    "response_id": "resp_1",
                },
            }
        ),
        backend(
            "e2",
            {
                "type": "response.created",
                "sequence_number": 0,
                "response": response_snapshot("resp_1", "in_progress"),
            },
        ),
        backend(
            "e3",
            {
                "type": "response.function_call_arguments.done",
                "sequence_number": 1,
                "item_id": "fc_call_1",
                "output_index": 0,
                "arguments": '{"zone":"UTC"}',  # no name, no call id: not enough to run a tool
            },
        ),
        backend(
            "e4", {"type": "response.output_item.done", "sequence_number": 2, "output_index": 0, "item": item}
        ),
        backend(
            "e5",
            {
                "type": "response.completed",
                "sequence_number": 3,
                "response": response_snapshot(
                    "resp_1",
                    "completed",
                    {
                        "input_tokens": 900,
                        "input_tokens_details": {"cached_tokens": 600, "cache_write_tokens": 0},
                        "output_tokens": 40,
                        "output_tokens_details": {"reasoning_tokens": 12},
                        "total_tokens": 940,
                    },
                ),
            },
        ),
    ]
    events = [event for frame in frames for event in parser.parse(frame)]
    assert events == [
        ResponseStarted("resp_1"),
        ToolCall("call_1", "get_current_time", '{"zone":"UTC"}', "resp_1", "item_d1"),
        TokenUsage(
            {"backend_input_tokens": 300, "backend_cached_input_tokens": 600, "backend_output_tokens": 40},
            backend=True,
        ),
        ResponseDone("resp_1", "completed"),
    ]


def test_live_non_function_items_and_other_inner_events_are_not_tool_calls() -> None:
    parser = LIVE.parser()
    message = {
        "type": "message",
        "id": "msg_1",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": "Done.", "annotations": []}],
    }
    frames = [
        backend(
            "e1",
            {"type": "response.output_item.done", "sequence_number": 1, "output_index": 0, "item": message},
        ),
        backend(
            "e2",
            {
                "type": "response.output_text.delta",
                "sequence_number": 4,
                "item_id": "msg_123",
                "output_index": 0,
                "content_index": 0,
                "delta": "The forecast is",
                "logprobs": [],
            },
        ),
    ]
    assert [parser.parse(frame) for frame in frames] == [(), ()]


def test_live_session_events() -> None:
    parser = LIVE.parser()
    session = {"id": LIVE_ID, "expires_at": 1_719_171_600, "model": "gpt-live-1.1", "status": "active"}
    frames: dict[str, dict[str, Any]] = {
        "started": {"type": "session.started", "event_id": "e1", "session": session},
        "caller": {
            "type": "session.input_transcript.delta",
            "event_id": "e2",
            "delta": "Hi, is",
            "start_ms": 0,
            "end_ms": 400,
        },
        "agent": {
            "type": "session.output_transcript.delta",
            "event_id": "e3",
            "delta": "Hello!",
            "start_ms": 500,
            "end_ms": 900,
        },
        "usage": {
            "type": "session.usage.updated",
            "event_id": "e4",
            "usage": {"seconds": 12},
            "context_window": {"usage_ratio": 0.42},
        },
        "keypad": {"type": "transport.dtmf.received", "event_id": "e5", "event": "#"},
        "error": {
            "type": "error",
            "event_id": "e6",
            "error": {"type": "invalid_request_error", "code": "immutable_field_update", "message": "no"},
        },
        "closed": {
            "type": "session.closed",
            "event_id": "e7",
            "reason": "remote_hangup",
            "session": session,
            "usage": {"seconds": 73.5, "active_seconds": 60, "paused_seconds": 13},
        },
        "ignored": {"type": "session.instructions.appended", "event_id": "e8", "start_ms": 0, "end_ms": 0},
    }
    parsed = {name: parser.parse(live_event(event)) for name, event in frames.items()}
    assert parsed == {
        "started": (SessionInfo("gpt-live-1.1", 1_719_171_600),),
        "caller": (Transcript("caller", "Hi, is", final=False),),
        "agent": (Transcript("agent", "Hello!", final=False),),
        "usage": (SessionUsage(12.0),),
        "keypad": (Keypad("#"),),
        "error": (ApiError("immutable_field_update", "no"),),
        "closed": (SessionUsage(73.5, 60, 13, final=True), Closed("remote_hangup")),
        "ignored": (),
    }


@pytest.mark.parametrize(
    "order",
    [
        ("type", "delta", "start_ms", "end_ms"),  # the SDK's field order
        ("start_ms", "end_ms", "type", "delta"),
        ("delta", "start_ms", "end_ms", "type"),
        ("delta", "type", "start_ms", "end_ms"),
    ],
)
def test_reflected_output_audio_gives_its_end_without_a_parse(
    monkeypatch: pytest.MonkeyPatch, order: tuple[str, ...]
) -> None:
    values = {"type": "session.output_audio.delta", "delta": AUDIO, "start_ms": 1000, "end_ms": 1020}
    event = {key: values[key] for key in order}
    live_event(event)
    frames = [json.dumps(event), json.dumps(event, separators=(",", ":")), json.dumps(event, indent=1)]

    def no_parse(_: object) -> None:
        raise AssertionError("reflected audio was JSON-parsed")

    monkeypatch.setattr(json, "loads", no_parse)
    for frame in frames:
        assert LIVE.parser().parse(frame) == (Playback("progress"),)
        assert LIVE.parser().parse(frame.encode()) == (Playback("progress"),)


@pytest.mark.parametrize("spaced", [False, True])
def test_reflected_input_audio_is_dropped_without_a_parse(
    monkeypatch: pytest.MonkeyPatch, spaced: bool
) -> None:
    event = {"type": "session.input_audio.append", "audio": AUDIO}
    frame = json.dumps(event, separators=(",", ":")) if not spaced else json.dumps(event, indent=1)
    live_event(event)
    monkeypatch.setattr(json, "loads", lambda _: pytest.fail("reflected audio was JSON-parsed"))
    assert LIVE.parser().parse(frame) == ()


def test_a_nested_audio_selector_is_not_mistaken_for_audio() -> None:
    # A session snapshot whose data-channel selectors name the audio types, at the frame's very end.
    big = "x" * 2000
    session = {
        "id": LIVE_ID,
        "expires_at": 1,
        "model": "gpt-live-1.1",
        "status": "active",
        "instructions": big,
        "client": {"data_channel": {"allowed_server_events": [{"type": "session.output_audio.delta"}]}},
    }
    frame = live_event({"type": "session.started", "event_id": "e1", "session": session})
    assert frame.endswith('"session.output_audio.delta"}]}}}}')
    assert LIVE.parser().parse(frame) == (SessionInfo("gpt-live-1.1", 1),)


def test_junk_frames_give_nothing() -> None:
    parser = LIVE.parser()
    for frame in ("not json", "[]", '{"no": "type"}', "x" * 4000, b"\xff\xfe"):
        assert parser.parse(frame) == ()


def test_live_client_events_validate_strictly() -> None:
    events = [
        *LIVE.greeting(),
        *LIVE.greeting("Greet the caller by saying: Example Co, how can I help?"),
        *LIVE.instruct("Say goodbye."),
        *LIVE.tool_outputs([("call_1", '{"time":"12:00"}'), ("call_2", '{"error":"no"}')]),
        LIVE.keypad("5"),
        LIVE.close(),
    ]
    for event in events:
        assert_strict(ConnectClientEventParam, event)
    assert events[0] == {
        "type": "session.instructions.append",
        "delegation_id": None,
        "content": live_module.DEFAULT_GREETING,
    }
    assert events[1]["content"] == "Greet the caller by saying: Example Co, how can I help?"
    # Every output, then ONE continue.
    assert [event["type"] for event in events[3:6]] == [
        "response.item.create",
        "response.item.create",
        "response.create",
    ]
    assert events[3]["item"] == {
        "type": "function_call_output",
        "call_id": "call_1",
        "output": '{"time":"12:00"}',
    }
    assert events[5] == {"type": "response.create"}
    assert events[6] == {"type": "transport.dtmf.send", "event": "5"}
    with pytest.raises(ValueError, match="not a keypad key"):
        LIVE.keypad("55")


# ----------------------------------------------------------------------------- Realtime


def test_realtime_events_the_observer_uses() -> None:
    parser = REALTIME.parser()
    call = function_call_item("call_9", "end_call", "{}")
    usage = {
        "total_tokens": 180,
        "input_tokens": 120,
        "output_tokens": 60,
        "input_token_details": {
            "text_tokens": 100,
            "audio_tokens": 20,
            "cached_tokens": 40,
            "cached_tokens_details": {"text_tokens": 40},
        },
        "output_token_details": {"text_tokens": 10, "audio_tokens": 50},
    }
    frames: list[dict[str, Any]] = [
        {
            "type": "session.created",
            "event_id": "e0",
            "session": {"type": "realtime", "model": "gpt-realtime-2.1"},
        },
        {
            "type": "response.created",
            "event_id": "e1",
            "response": {"id": "resp_9", "object": "realtime.response", "status": "in_progress"},
        },
        {
            "type": "response.function_call_arguments.done",
            "event_id": "e2",
            "response_id": "resp_9",
            "item_id": "fc_call_9",
            "output_index": 0,
            "call_id": "call_9",
            "name": "end_call",
            "arguments": "{}",
        },
        {
            "type": "response.output_item.done",
            "event_id": "e3",
            "response_id": "resp_9",
            "output_index": 0,
            "item": {**call, "object": "realtime.item", "status": "completed"},
        },
        {
            "type": "response.done",
            "event_id": "e4",
            "response": {
                "id": "resp_9",
                "object": "realtime.response",
                "status": "completed",
                "output": [{**call, "object": "realtime.item"}],
                "usage": usage,
            },
        },
        {"type": "output_audio_buffer.started", "event_id": "e5", "response_id": "resp_9"},
        {"type": "output_audio_buffer.stopped", "event_id": "e6", "response_id": "resp_9"},
        {"type": "input_audio_buffer.dtmf_event_received", "event": "7", "received_at": 1_719_168_000},
        {
            "type": "response.output_audio_transcript.done",
            "event_id": "e7",
            "response_id": "resp_9",
            "item_id": "m1",
            "output_index": 0,
            "content_index": 0,
            "transcript": "Goodbye!",
        },
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "event_id": "e8",
            "item_id": "m0",
            "content_index": 0,
            "transcript": "Bye.",
            "usage": {"type": "duration", "seconds": 1},
        },
        {
            "type": "error",
            "event_id": "e9",
            "error": {"type": "invalid_request_error", "code": "bad", "message": "no"},
        },
    ]
    events = [event for frame in frames for event in parser.parse(realtime_event(frame))]
    tool = ToolCall("call_9", "end_call", "{}", "resp_9")
    assert events == [
        SessionInfo("gpt-realtime-2.1"),
        ResponseStarted("resp_9"),
        tool,  # the same call three times: the observer runs each call_id once
        tool,
        tool,
        TokenUsage(
            {
                "input_text_tokens": 60,
                "input_audio_tokens": 20,
                "input_cached_text_tokens": 40,
                "input_cached_audio_tokens": 0,
                "output_text_tokens": 10,
                "output_audio_tokens": 50,
                "responses": 1,
            }
        ),
        ResponseDone("resp_9", "completed"),
        Playback("started", "resp_9"),
        Playback("stopped", "resp_9"),
        Keypad("7"),
        Transcript("agent", "Goodbye!", final=True),
        Transcript("caller", "Bye.", final=True),
        ApiError("bad", "no"),
    ]


def test_realtime_deltas_are_skipped_without_a_parse() -> None:
    frame = realtime_event(
        {
            "type": "response.output_audio_transcript.delta",
            "event_id": "e1",
            "response_id": "r",
            "item_id": "i",
            "output_index": 0,
            "content_index": 0,
            "delta": "Hel",
        }
    )
    assert REALTIME.parser().parse(frame) == ()


def test_realtime_client_events_validate_strictly() -> None:
    events = [
        *REALTIME.greeting(),
        *REALTIME.greeting("Greet the caller."),
        *REALTIME.instruct("Say goodbye."),
        *REALTIME.tool_outputs([("call_1", '{"ok":true}')]),
    ]
    for event in events:
        assert_strict(RealtimeClientEventParam, event)
    assert events[0] == {"type": "response.create"}  # as hello-realtime greets
    assert events[1] == {"type": "response.create", "response": {"instructions": "Greet the caller."}}
    assert events[3:] == [
        {
            "type": "conversation.item.create",
            "item": {"type": "function_call_output", "call_id": "call_1", "output": '{"ok":true}'},
        },
        {"type": "response.create"},
    ]
    assert not REALTIME.can_send_keypad
    with pytest.raises(ValueError, match="cannot send keypad"):
        REALTIME.keypad("1")


# ----------------------------------------------------------------------------- URLs and paths


def test_sideband_urls_and_control_paths() -> None:
    base = "wss://api.openai.com/v1"
    assert REALTIME.sideband_url(base, RTC_ID) == f"{base}/realtime?call_id={RTC_ID}"
    assert LIVE.sideband_url(base + "/", LIVE_ID) == f"{base}/live/sessions/{LIVE_ID}/attach"
    assert REALTIME.control_path(RTC_ID, "refer") == f"/realtime/calls/{RTC_ID}/refer"
    assert LIVE.control_path(LIVE_ID, "hangup") == f"/live/sessions/{LIVE_ID}/hangup"
    for adapter, foreign in ((REALTIME, LIVE_ID), (LIVE, RTC_ID)):
        with pytest.raises(ValueError, match=r"^not a "):
            adapter.sideband_url(base, foreign)
        with pytest.raises(ValueError, match=r"^not a "):
            adapter.control_path(foreign, "accept")
    assert adapter_for("live") is adapter_for_call(LIVE_ID)
    assert adapter_for("realtime") is adapter_for_call(RTC_ID)
    assert adapter_for_call("call_1") is None


def test_typed_events_are_final_so_the_reader_may_dispatch_on_their_type() -> None:
    """observer_worker._dispatch routes an event by `type(event)` in a set: a subclass would be missed."""
    for kind in get_args(ObserverEvent):
        assert kind.__subclasses__() == [], kind
