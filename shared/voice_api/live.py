"""GPT-Live (`/v1/live/sessions`) for the observer, over the sideband `.../{id}/attach`.

Tools: the Live session delegates to a Responses backend (shared/live_session.py); its events come
wrapped in `response.event`, and a function call is taken ONLY from the inner
`response.output_item.done` with `item.type == "function_call"` (the arguments-done event is not
enough, and completion snapshots carry an empty `output`). Outputs go back as `response.item.create`,
then one `response.create` continues the backend.

Reflected audio: the sideband also gets the call's audio both ways (`session.input_audio.append`,
`session.output_audio.delta`: ~50 messages a second each, 1,280+ characters of base64). Those are
never JSON-parsed: the type is matched at the frame's start or end (the audio sits in between), and
output audio yields one shared event, playback progress (the agent is audible now). Anything else falls
back to a parse.
"""

from __future__ import annotations

import re
from typing import Any

from shared.settings import VoiceApi
from shared.upstream import LIVE_SESSION_ID_PATTERN, ControlAction, live_session_path
from shared.voice_api.base import (
    NO_EVENTS,
    AdapterBase,
    ApiError,
    CallProgress,
    ClientEvent,
    Closed,
    Keypad,
    ObserverEvent,
    Playback,
    ResponseDone,
    ResponseStarted,
    SessionInfo,
    SessionUsage,
    Speaker,
    TokenUsage,
    ToolCall,
    Transcript,
    as_dict,
    as_text,
    json_event,
)

# What the model is told when a profile has no greeting: Live has no "speak now" response.create.
DEFAULT_GREETING = "Greet the caller now, as your instructions say, then pause and listen."
KEYPAD_DIGITS = frozenset("0123456789*#ABCD")
DONE_EVENTS = ("response.completed", "response.failed", "response.incomplete", "response.cancelled")
TRANSCRIPTS: dict[str, Speaker] = {
    "session.input_transcript.delta": "caller",
    "session.output_transcript.delta": "agent",
}

# A reflected audio frame: its top-level type at the very start (after numeric fields only) or at
# the very end (before numeric fields only); a selector nested in a session snapshot never matches.
_AUDIO = r'"type"\s*:\s*"session\.(input_audio\.append|output_audio\.delta)"'
_NUMBER_FIELD = r'\s*"[a-z_]+"\s*:\s*-?\d+\s*'
_AUDIO_HEAD = re.compile(rf"\{{(?:{_NUMBER_FIELD},)*\s*{_AUDIO}")
_AUDIO_TAIL = re.compile(rf"{_AUDIO}(?:\s*,{_NUMBER_FIELD})*\s*\}}\s*$")
# The type first, compact or with the space after the colon that many encoders write.
_INPUT_PREFIX = ('{"type":"session.input_audio.append"', '{"type": "session.input_audio.append"')
_OUTPUT_PREFIX = ('{"type":"session.output_audio.delta"', '{"type": "session.output_audio.delta"')
# Output audio: the agent is audible (all the observer needs of it: end_call waits for it to go quiet).
AUDIBLE: tuple[ObserverEvent, ...] = (Playback("progress"),)
HEAD_CHARS = 96  # where the type (and numbers before the audio) must sit
TAIL_CHARS = 128
SMALL_FRAME = 512  # shorter frames are parsed outright: no audio frame is this short


class LiveParser:
    """One session's events; remembers which backend response each delegation is on (a function
    call's `output_item.done` names neither)."""

    def __init__(self) -> None:
        self._responses: dict[str, str] = {}  # delegation id ("" when none) -> inner response id

    def parse(self, message: str | bytes) -> tuple[ObserverEvent, ...]:
        if isinstance(message, bytes):
            message = message.decode("utf-8", "replace")
        quick = self.quick(message)
        if quick is not None:
            return quick
        event = json_event(message)
        return NO_EVENTS if event is None else self.on_event(event)

    def quick(self, message: str | bytes) -> tuple[ObserverEvent, ...] | None:
        """The events of a reflected audio frame, read from its ends only; None when `message` is not
        one (or is shaped unexpectedly: then it gets a full parse). Called for every frame."""
        if isinstance(message, bytes) or len(message) <= SMALL_FRAME:
            return None  # bytes: rare, parsed outright
        # The type first costs a prefix test; other orders and spacing cost a regex at each end.
        if message.startswith(_INPUT_PREFIX):
            return NO_EVENTS
        if message.startswith(_OUTPUT_PREFIX):
            return AUDIBLE
        found = _AUDIO_HEAD.match(message, 0, HEAD_CHARS) or _AUDIO_TAIL.search(
            message, len(message) - TAIL_CHARS
        )
        if found is None:
            return None
        return NO_EVENTS if found.group(1) == "input_audio.append" else AUDIBLE

    def on_event(self, event: dict[str, Any]) -> tuple[ObserverEvent, ...]:
        kind: str = event["type"]
        if kind in TRANSCRIPTS:
            delta = event.get("delta")
            if not isinstance(delta, str) or not delta:
                return NO_EVENTS
            start, end = event.get("start_ms"), event.get("end_ms")
            return (
                Transcript(
                    TRANSCRIPTS[kind],
                    delta,
                    final=False,
                    start_ms=start if isinstance(start, int) else None,
                    end_ms=end if isinstance(end, int) else None,
                ),
            )
        if kind == "response.event":
            return self._backend(as_dict(event.get("event")), event.get("delegation_id"))
        if kind == "session.usage.updated":
            return (_usage(as_dict(event.get("usage")), final=False),)
        if kind == "session.closed":
            return (
                _usage(as_dict(event.get("usage")), final=True),
                Closed(as_text(event.get("reason")) or "closed"),
            )
        if kind in ("transport.ringing", "transport.answered"):
            return (CallProgress("ringing" if kind == "transport.ringing" else "answered"),)
        if kind == "transport.failed":
            code = as_text(as_dict(event.get("error")).get("code"))[:64]
            return (CallProgress("failed", code or "unknown"),)
        if kind == "transport.dtmf.received":
            return (Keypad(as_text(event.get("event"))[:8]),)
        if kind == "session.output_audio.delta":  # a reflected frame the fast path let through
            return AUDIBLE
        if kind == "session.started":
            session = as_dict(event.get("session"))
            expires_at = session.get("expires_at")
            return (
                SessionInfo(
                    as_text(session.get("model"))[:64], expires_at if isinstance(expires_at, int) else None
                ),
            )
        if kind == "error":
            error = as_dict(event.get("error"))
            return (ApiError(as_text(error.get("code")), as_text(error.get("message"))),)
        return NO_EVENTS

    def _backend(self, inner: dict[str, Any], delegation_id: object) -> tuple[ObserverEvent, ...]:
        delegation = delegation_id if isinstance(delegation_id, str) else None
        key = delegation or ""
        kind = inner.get("type")
        if kind == "response.created":
            response_id = as_text(as_dict(inner.get("response")).get("id"))
            self._responses[key] = response_id
            return (ResponseStarted(response_id),)
        if kind == "response.output_item.done":
            item = as_dict(inner.get("item"))
            call_id, name, arguments = item.get("call_id"), item.get("name"), item.get("arguments")
            if (
                item.get("type") != "function_call"
                or not isinstance(call_id, str)
                or not isinstance(name, str)
            ):
                return NO_EVENTS
            response_id = self._responses.get(key, key)
            args = arguments if isinstance(arguments, str) else "{}"
            return (ToolCall(call_id, name, args, response_id, delegation),)
        if kind in DONE_EVENTS:
            response = as_dict(inner.get("response"))
            response_id = as_text(response.get("id")) or self._responses.get(key, key)
            status = as_text(response.get("status")) or str(kind).removeprefix("response.")
            usage = _backend_usage(response.get("usage"))
            return (*usage, ResponseDone(response_id, status))
        return NO_EVENTS


def _usage(usage: dict[str, Any], *, final: bool) -> SessionUsage:
    seconds, active, paused = usage.get("seconds"), usage.get("active_seconds"), usage.get("paused_seconds")
    return SessionUsage(
        float(seconds) if isinstance(seconds, int | float) else 0.0,
        active if isinstance(active, int) else None,
        paused if isinstance(paused, int) else None,
        final=final,
    )


def _backend_usage(usage: object) -> tuple[ObserverEvent, ...]:
    """The backend's tokens (Responses `usage`: input incl. cached, output incl. reasoning)."""
    if not isinstance(usage, dict):
        return NO_EVENTS
    given, output = _count(usage.get("input_tokens")), _count(usage.get("output_tokens"))
    cached = _count(as_dict(usage.get("input_tokens_details")).get("cached_tokens"))
    counts = {
        "backend_input_tokens": max(0, given - cached),
        "backend_cached_input_tokens": cached,
        "backend_output_tokens": output,
    }
    return (TokenUsage(counts, backend=True),)


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


class LiveAdapter(AdapterBase):
    name: VoiceApi = "live"
    can_send_keypad = True  # SIP calls only: a WebRTC session answers with an `error`

    id_pattern = LIVE_SESSION_ID_PATTERN
    id_kind = "Live session id"
    sideband_path = "/live/sessions/{id}/attach"

    def control_path(self, call_id: str, action: ControlAction) -> str:
        return live_session_path(call_id, action)

    def parser(self) -> LiveParser:
        return LiveParser()

    def greeting(self, text: str = "") -> list[ClientEvent]:
        """Live has no "speak now": an instruction for the session itself (`delegation_id` null)."""
        return self.instruct(text or DEFAULT_GREETING)

    def instruct(self, text: str) -> list[ClientEvent]:
        return [{"type": "session.instructions.append", "delegation_id": None, "content": text}]

    def tool_output(self, call_id: str, output: str) -> ClientEvent:
        item = {"type": "function_call_output", "call_id": call_id, "output": output}
        return {"type": "response.item.create", "item": item}

    def continue_after_tools(self) -> ClientEvent:
        return {"type": "response.create"}  # no body: it only continues the backend

    def keypad(self, digit: str) -> ClientEvent:
        if digit not in KEYPAD_DIGITS:
            raise ValueError(f"not a keypad key: {digit[:8]!r}")
        return {"type": "transport.dtmf.send", "event": digit}

    def close(self) -> ClientEvent:
        """End the session (a WebRTC one has no hangup); wait for `session.closed` after it."""
        return {"type": "session.close"}
