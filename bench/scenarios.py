"""Inputs shared by the measurements: a realistic sideband stream, call ids, signed webhooks."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

from tests.samples import body_of, incoming_call_body, load_event, sign, with_body

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "sk-test-fake"  # the fake's default key
SIGNING_SECRET = "whsec_" + base64.b64encode(b"bench-signing-secret-32-bytes!!!").decode()

# A 10-minute call at ~50 server events per second (what measure 5 streams, compressed in time).
CALL_SECONDS = 600
EVENTS_PER_SECOND = 50

_TEXT = (
    "thanks for trying the new realtime api it is now generally available with two new voices "
    "better instruction following and native telephony support so you can connect phone calls"
)
_WORDS = _TEXT.split()


def event_call_ids() -> list[str]:
    """Call ids the sample events refer to (the fake must know them so accept answers 200)."""
    ids = [load_event("observer_async")["call_id"], _sip_call_id(load_event("sip"))]
    ids.append(load_event("observer_http")["pathParameters"]["call_id"])
    return ids


def _sip_call_id(event: dict[str, Any]) -> str:
    return str(json.loads(body_of(event))["data"]["call_id"])


def signed(
    event: dict[str, Any], secret: str = SIGNING_SECRET, *, body: bytes | None = None
) -> dict[str, Any]:
    """A copy of the event with `body` (default: its own) signed now, as OpenAI signs a delivery."""
    event = copy.deepcopy(event)
    if body is not None:
        with_body(event, body, base64_encoded=False)
    sign(event, secret)
    event["headers"]["content-length"] = str(len(body_of(event)))
    return event


def incoming_call(call_id: str) -> bytes:
    return incoming_call_body(call_id)


def _assistant_turn(turn: int) -> list[dict[str, Any]]:
    resp, item = f"resp_{turn:06d}", f"item_a{turn:06d}"
    common = {"response_id": resp, "item_id": item, "output_index": 0, "content_index": 0}
    words = [_WORDS[(turn + i) % len(_WORDS)] for i in range(60)]
    text = " ".join(words)
    message = {"id": item, "type": "message", "role": "assistant", "status": "in_progress", "content": []}
    spoken = {**message, "status": "completed", "content": [{"type": "output_audio", "transcript": text}]}
    usage = {"total_tokens": 900, "input_tokens": 600, "output_tokens": 300}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": {"id": resp, "status": "in_progress", "output": []}},
        {
            "type": "rate_limits.updated",
            "rate_limits": [{"name": "tokens", "limit": 40000, "remaining": 39000}],
        },
        {"type": "response.output_item.added", "response_id": resp, "output_index": 0, "item": message},
        {"type": "conversation.item.created", "previous_item_id": None, "item": message},
        {"type": "response.content_part.added", **common, "part": {"type": "audio", "transcript": ""}},
    ]
    # Token-sized transcript deltas: the bulk of a real sideband stream.
    for word in words:
        for piece in (word[: len(word) // 2], word[len(word) // 2 :] + " "):
            events.append({"type": "response.output_audio_transcript.delta", **common, "delta": piece})
    events += [
        {"type": "response.output_audio_transcript.done", **common, "transcript": text},
        {"type": "response.content_part.done", **common, "part": {"type": "audio", "transcript": text}},
        {"type": "response.output_item.done", "response_id": resp, "output_index": 0, "item": spoken},
        {"type": "response.done", "response": {"id": resp, "status": "completed", "usage": usage}},
    ]
    return events


def _caller_turn(turn: int) -> list[dict[str, Any]]:
    item = f"item_c{turn:06d}"
    said = " ".join(_WORDS[turn % 7 : turn % 7 + 8])
    events: list[dict[str, Any]] = [
        {"type": "input_audio_buffer.speech_started", "audio_start_ms": turn * 1000, "item_id": item},
        {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": turn * 1000 + 2500, "item_id": item},
        {"type": "input_audio_buffer.committed", "previous_item_id": None, "item_id": item},
        {
            "type": "conversation.item.created",
            "item": {"id": item, "type": "message", "role": "user", "content": []},
        },
    ]
    for word in said.split():
        events.append(
            {
                "type": "conversation.item.input_audio_transcription.delta",
                "item_id": item,
                "content_index": 0,
                "delta": word + " ",
            }
        )
    events.append(
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": item,
            "content_index": 0,
            "transcript": said,
            "usage": {"type": "duration", "seconds": 2.5},
        }
    )
    return events


def realistic_script(count: int = CALL_SECONDS * EVENTS_PER_SECOND) -> list[dict[str, Any]]:
    """`count` server events of a conversation: caller turns, then assistant answers, repeated."""
    events: list[dict[str, Any]] = []
    turn = 0
    while len(events) < count:
        events += _caller_turn(turn) + _assistant_turn(turn)
        turn += 1
    return events[:count]
