"""What a call record is: the JSON the operator API serves, what the observer adds per flush, and how
one turn, one tool call and one `response.done`'s usage are stored (cut to size, none of the text
with RECORD_RETENTION_DAYS=0). Stores: store.py; prices: pricing.py."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel

RecordSource = Literal["sip", "webrtc", "outbound"]  # outbound: a call this stack placed
VoiceApiName = Literal["realtime", "live"]  # from the call id: `rtc_...` Realtime, `live_...` GPT-Live
# call_failed: an outbound call that was never answered (busy, no answer, rang too long)
EndReason = Literal["caller_hung_up", "model_ended", "transferred", "max_length", "error", "call_failed"]
Role = Literal["caller", "assistant"]
# Who placed the call: a caller (inbound SIP, the browser) or the stack (POST /calls, outbound SIP).
Direction = Literal["inbound", "outbound"]


def direction_of(source: str) -> Direction:
    """Derived, never stored: the listing index's projection stays as deployed stacks have it (DynamoDB
    cannot change an index's projection in place)."""
    return "outbound" if source == "outbound" else "inbound"


# The call's recording (shared/recordings.py): copied into the stack's bucket, or the copy failed.
RecordingState = Literal["stored", "failed"]

DAY_SECONDS = 86_400
METADATA_RETENTION_DAYS = 30  # RECORD_RETENTION_DAYS=0: no transcripts, metadata kept this long
MAX_TEXT_CHARS = 4_000  # one turn's text, one tool call's arguments or result
# Turns and tool calls of one record, in UTF-8 bytes (DynamoDB's measure); the rest of the 400 KB item
# is metadata and attribute names. Beyond it a record keeps its metadata and usage, not more text.
MAX_STORED_BYTES = 300_000
MAX_ARGUMENT_DEPTH = 16  # DynamoDB nests at most 32 levels; deeper arguments are kept as None

# A Realtime call's tokens by kind (each has its own price: shared/records/pricing.py).
REALTIME_TOKEN_KINDS = (
    "input_text_tokens",
    "input_audio_tokens",
    "input_cached_text_tokens",
    "input_cached_audio_tokens",
    "output_text_tokens",
    "output_audio_tokens",
)
# What the listing index carries of a call's usage (shared/records/store.py SUMMARY_ATTRIBUTES).
TOKEN_FIELDS = (*REALTIME_TOKEN_KINDS, "responses")
USAGE_FIELDS = (
    *TOKEN_FIELDS,
    # GPT-Live: its Responses backend's tokens (the voice model is billed by time, `seconds`).
    "backend_input_tokens",
    "backend_cached_input_tokens",
    "backend_output_tokens",
)
# GPT-Live billing time (stored as `usage_seconds`), cumulative: set outright by each write, never added.
SECONDS_FIELD = "usage_seconds"


# ----------------------------------------------------------------------------- the JSON served


class Turn(BaseModel):
    role: Role
    text: str
    at: str


class ProgressEntry(BaseModel):
    """An outbound call's line: `ringing`, `answered`, `failed` (with its code: busy, no_answer, ...)."""

    event: Literal["ringing", "answered", "failed"]
    at: str
    code: str | None = None


class ToolCallEntry(BaseModel):
    name: str
    arguments: dict[str, Any] | None
    result: str | None
    error: str | None
    ms: float
    at: str


class Usage(BaseModel):
    input_text_tokens: int = 0
    input_audio_tokens: int = 0
    input_cached_text_tokens: int = 0
    input_cached_audio_tokens: int = 0
    output_text_tokens: int = 0
    output_audio_tokens: int = 0
    responses: int = 0
    backend_input_tokens: int = 0
    backend_cached_input_tokens: int = 0
    backend_output_tokens: int = 0
    seconds: float = 0.0  # GPT-Live: billed session seconds (final from `session.closed`)


class CallSummary(BaseModel):
    """A record without its turns and tool calls (what `GET /calls` lists)."""

    call_id: str
    api: VoiceApiName
    source: RecordSource
    direction: Direction = "inbound"
    caller: str
    dialed: str
    agent: str
    model: str
    backend_model: str | None  # GPT-Live: the Responses model tools are delegated to
    started_at: str
    ended_at: str | None
    duration_seconds: float | None
    end_reason: EndReason | None  # None while the call is live
    usage: Usage
    cost_usd: float | None  # None: no price known for the call's model (Live: nor its backend's)
    expires_at: str


class CallRecord(CallSummary):
    turns: list[Turn]
    tool_calls: list[ToolCallEntry]
    progress: list[ProgressEntry] = []  # an outbound call's ringing / answered / failed, in order
    # None: nothing was recorded (no `store: true`), or the copy is still to come at call end.
    recording: RecordingState | None = None
    recording_error: str | None = None  # why the copy failed (one line)


class CallPage(BaseModel):
    calls: list[CallSummary]
    next_cursor: str | None  # pass back as `cursor` for the next (older) page; None: no more


# ----------------------------------------------------------------------------- what the observer adds


@dataclass(frozen=True)
class CallMeta:
    """Set once per record (the first write wins; a successor's copy never replaces it)."""

    call_id: str
    source: RecordSource
    caller: str
    dialed: str
    agent: str
    model: str
    started_at: float  # unix s
    backend_model: str = ""  # GPT-Live: the Responses backend (its tokens are priced by it)

    @property
    def direction(self) -> Direction:
        return direction_of(self.source)


@dataclass
class RecordBatch:
    """What one flush adds to a record."""

    turns: list[dict[str, Any]] = field(default_factory=list)  # {"role", "text", "at": unix s}
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # {"name", "arguments", ..., "at"}
    usage: dict[str, int] = field(default_factory=dict)
    progress: list[dict[str, Any]] = field(default_factory=list)  # {"event", "at": unix s, "code"?}
    seconds: float | None = None  # GPT-Live billed seconds so far (cumulative: replaces the stored)
    ended_at: float | None = None
    end_reason: EndReason | None = None
    recording: RecordingState | None = None  # set once, at call end (shared/recordings.py)
    recording_error: str | None = None

    def __bool__(self) -> bool:
        return bool(
            self.turns
            or self.tool_calls
            or self.progress
            or self.usage
            or self.end_reason
            or self.recording
            or self.seconds is not None
        )

    def stored_bytes(self) -> int:
        texts = [t["text"] for t in self.turns] + [
            json.dumps(c, default=str) for c in self.tool_calls
        ]  # tool calls: their JSON is a fair upper bound of their item size
        return sum(len(text.encode()) + 32 for text in texts)  # + the attribute names of each entry


def usage_of(response: dict[str, Any]) -> dict[str, int]:
    """Token counts by kind from a `response.done` event's `response.usage` (missing fields count 0).

    `input_token_details.text_tokens` includes the cached ones; they are split out here, so that each
    token is priced once (cached at the cached price)."""
    usage = response.get("usage")
    if not isinstance(usage, dict):
        return {"responses": 1}
    given = _dict(usage.get("input_token_details"))
    cached = _dict(given.get("cached_tokens_details"))
    output = _dict(usage.get("output_token_details"))
    cached_text, cached_audio = _count(cached.get("text_tokens")), _count(cached.get("audio_tokens"))
    return {
        "input_text_tokens": max(0, _count(given.get("text_tokens")) - cached_text),
        "input_audio_tokens": max(0, _count(given.get("audio_tokens")) - cached_audio),
        "input_cached_text_tokens": cached_text,
        "input_cached_audio_tokens": cached_audio,
        "output_text_tokens": _count(output.get("text_tokens")),
        "output_audio_tokens": _count(output.get("audio_tokens")),
        "responses": 1,
    }


def expires_at(started_at: float, retention_days: int) -> int:
    days = retention_days if retention_days > 0 else METADATA_RETENTION_DAYS
    return int(started_at) + days * DAY_SECONDS


def iso(unix: float) -> str:
    return datetime.fromtimestamp(int(unix), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ----------------------------------------------------------------------------- helpers for writers


def turn(role: Role, text: str, retention_days: int, at: float | None = None) -> dict[str, Any]:
    """One transcript turn as stored: its text cut to MAX_TEXT_CHARS, none at all with retention 0."""
    return {
        "role": role,
        "text": text[:MAX_TEXT_CHARS] if retention_days > 0 else "",
        "at": at or time.time(),
    }


def tool_call(
    name: str,
    arguments: str,
    output: str,
    *,
    ok: bool,
    ms: float,
    retention_days: int,
    at: float | None = None,
) -> dict[str, Any]:
    """One tool call as stored: parsed arguments (None if not a JSON object or too long), the output as
    result or its error reason; with retention 0 only the name, the time taken and an error flag."""
    error = _error_reason(output) if not ok else None
    entry: dict[str, Any] = {"name": name[:64], "ms": round(ms, 2), "at": at or time.time()}
    if retention_days <= 0:
        return {**entry, "arguments": None, "result": None, "error": "error" if not ok else None}
    parsed: object = None
    if len(arguments) <= MAX_TEXT_CHARS:
        try:
            parsed = json.loads(arguments or "{}")
        except ValueError:
            parsed = None
    return {
        **entry,
        "arguments": parsed if isinstance(parsed, dict) and _depth(parsed) <= MAX_ARGUMENT_DEPTH else None,
        "result": output[:MAX_TEXT_CHARS] if ok else None,
        "error": error[:MAX_TEXT_CHARS] if error is not None else None,
    }


def _depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _error_reason(output: str) -> str:
    try:
        parsed = json.loads(output)
    except ValueError:
        return output
    reason = parsed.get("error") if isinstance(parsed, dict) else None
    return reason if isinstance(reason, str) else output


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
