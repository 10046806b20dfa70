"""The Realtime API (`/v1/realtime`) for the observer: exactly the server events it acts on today
(functions/observer: tool calls, responses, playback, keypad, finished transcripts, usage, the
session's model, errors) and the client events it sends."""

from __future__ import annotations

import re
from typing import Any

from shared.settings import VoiceApi
from shared.upstream import CALL_ID_PATTERN, ControlAction, realtime_call_path
from shared.voice_api.base import (
    NO_EVENTS,
    AdapterBase,
    ApiError,
    ClientEvent,
    Keypad,
    ObserverEvent,
    Playback,
    PlaybackState,
    ResponseDone,
    ResponseStarted,
    SessionInfo,
    Speaker,
    TokenUsage,
    ToolCall,
    Transcript,
    as_dict,
    as_text,
    json_event,
)

# Finished transcripts, GA and beta names: event type -> (speaker, field holding the text).
TRANSCRIPTS: dict[str, tuple[Speaker, str]] = {
    "response.output_audio_transcript.done": ("agent", "transcript"),
    "response.audio_transcript.done": ("agent", "transcript"),
    "response.output_text.done": ("agent", "text"),
    "response.text.done": ("agent", "text"),
    "conversation.item.input_audio_transcription.completed": ("caller", "transcript"),
}
PLAYBACK: dict[str, PlaybackState] = {
    "output_audio_buffer.started": "started",
    "output_audio_buffer.stopped": "stopped",
    "output_audio_buffer.cleared": "cleared",
}
# Deltas (audio and transcript chunks: most of a call's events) carry nothing the observer uses
# (it reads the `.done` events): their type is read from the frame's head instead of parsing it.
_DELTA_HEAD = re.compile(r'\{\s*(?:"event_id"\s*:\s*"[^"\\]*"\s*,\s*)?"type"\s*:\s*"[a-z0-9_.]+\.delta"')


class RealtimeParser:
    """Stateless: every event stands on its own."""

    def parse(self, message: str | bytes) -> tuple[ObserverEvent, ...]:
        quick = self.quick(message)
        if quick is not None:
            return quick
        event = json_event(message)
        return NO_EVENTS if event is None else self.on_event(event)

    def quick(self, message: str | bytes) -> tuple[ObserverEvent, ...] | None:
        return NO_EVENTS if isinstance(message, str) and _DELTA_HEAD.match(message) else None

    def on_event(self, event: dict[str, Any]) -> tuple[ObserverEvent, ...]:
        kind: str = event["type"]
        if kind in TRANSCRIPTS:
            speaker, key = TRANSCRIPTS[kind]
            text = event.get(key)
            return (
                (Transcript(speaker, text, final=True),)
                if isinstance(text, str) and text.strip()
                else NO_EVENTS
            )
        if kind == "response.function_call_arguments.done":
            return _tool_calls([{**event, "type": "function_call"}], as_text(event.get("response_id")))
        if kind == "response.output_item.done":
            return _tool_calls([as_dict(event.get("item"))], as_text(event.get("response_id")))
        if kind == "response.created":
            return (ResponseStarted(as_text(as_dict(event.get("response")).get("id"))),)
        if kind == "response.done":
            return _response_done(as_dict(event.get("response")))
        if kind in PLAYBACK:
            return (Playback(PLAYBACK[kind], as_text(event.get("response_id"))),)
        if kind == "input_audio_buffer.dtmf_event_received":
            return (Keypad(as_text(event.get("event"))[:8]),)
        if kind in ("session.created", "session.updated"):
            # The session is up even when the event names no model (the recorder's cue to write).
            return (SessionInfo(as_text(as_dict(event.get("session")).get("model"))[:64]),)
        if kind == "error":
            error = as_dict(event.get("error"))
            return (ApiError(as_text(error.get("code")), as_text(error.get("message"))),)
        return NO_EVENTS


def _response_done(response: dict[str, Any]) -> tuple[ObserverEvent, ...]:
    from shared.records import usage_of  # records imports shared.upstream: import it when first used

    response_id = as_text(response.get("id"))
    calls = _tool_calls([as_dict(item) for item in response.get("output") or []], response_id)
    status = as_text(response.get("status")) or "completed"
    return (*calls, TokenUsage(usage_of(response)), ResponseDone(response_id, status))


def _tool_calls(sources: list[dict[str, Any]], response_id: str) -> tuple[ObserverEvent, ...]:
    found: list[ObserverEvent] = []
    for source in sources:
        call_id, name, arguments = source.get("call_id"), source.get("name"), source.get("arguments")
        if source.get("type", "function_call") != "function_call":
            continue  # an MCP call, a message: OpenAI's or nobody's to run
        if isinstance(call_id, str) and isinstance(name, str):
            found.append(
                ToolCall(call_id, name, arguments if isinstance(arguments, str) else "{}", response_id)
            )
    return tuple(found)


class RealtimeAdapter(AdapterBase):
    name: VoiceApi = "realtime"
    can_send_keypad = False  # the Realtime API has no outgoing DTMF

    id_pattern = CALL_ID_PATTERN
    id_kind = "call id"
    sideband_path = "/realtime?call_id={id}"

    def control_path(self, call_id: str, action: ControlAction) -> str:
        return realtime_call_path(call_id, action)

    def parser(self) -> RealtimeParser:
        return RealtimeParser()

    def greeting(self, text: str = "") -> list[ClientEvent]:
        """`response.create`: the model opens as its instructions say, or with these (one response)."""
        return [_response_create(text or None)]

    def instruct(self, text: str) -> list[ClientEvent]:
        return [_response_create(text)]

    def tool_output(self, call_id: str, output: str) -> ClientEvent:
        item = {"type": "function_call_output", "call_id": call_id, "output": output}
        return {"type": "conversation.item.create", "item": item}

    def continue_after_tools(self) -> ClientEvent:
        return _response_create(None)

    def keypad(self, digit: str) -> ClientEvent:
        raise ValueError("the Realtime API cannot send keypad tones")

    def close(self) -> ClientEvent | None:
        return None  # hangup ends SIP and WebRTC calls alike


def _response_create(instructions: str | None) -> ClientEvent:
    event: ClientEvent = {"type": "response.create"}
    if instructions is not None:
        event["response"] = {"instructions": instructions}
    return event
