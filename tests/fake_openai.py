"""A real local fake of the OpenAI Realtime HTTP + WebSocket API, for tests and local development.

It serves real HTTP and a real WebSocket on 127.0.0.1 (Starlette app run by uvicorn in a daemon
thread) and records everything it receives. Endpoints, all under ``/v1``:

- ``POST /v1/realtime/calls``: multipart ``sdp`` + ``session`` (server form) or a raw
  ``application/sdp`` body (browser form, usually with an ``ek_...`` key) -> 201, SDP answer,
  ``Location: /v1/realtime/calls/rtc_<24 hex>``.
- ``POST /v1/realtime/client_secrets`` -> 200 ``{"value": "ek_...", "expires_at", "session"}``.
- ``POST /v1/realtime/calls/{call_id}/accept|reject|refer|hangup`` -> 200 (known call) or 404.
- WebSocket ``/v1/realtime?call_id=...`` (the sideband): ``session.created``, then ``sideband_script``
  (helpers build scripted tool calls, MCP, keypad and playback events: ``function_call_events``,
  ``mcp_call_events``, ``dtmf_event``, ``audio_stopped_event``); with ``sideband_replies`` each
  ``response.create`` the client sends is answered with a short spoken response.
- ``GET /v1/_health`` -> 200 ``ok`` (no auth).
- ``POST /v1/_fake/calls`` (no auth; the fake only listens on loopback): register a pending SIP call
  that plays a short scripted conversation (``demo_call_script``: the caller asks, the model calls a
  tool, then ``end_call``) with spoken replies to the observer's ``response.create``s; body (all
  optional) ``{"call_id", "tool", "tool_arguments", "end_call", "caller_says"}`` -> 201
  ``{"call_id", ...}``. ``GET /v1/_fake/calls/{call_id}`` -> what the fake saw of that call so far
  (control requests, sideband events). ``scripts/local_call.py`` (``make call``) drives both.

It answers only as the real GA API would for the call's session (the ``session`` part, the accept
body, or the session of the ephemeral key the call was made with; ``session.update`` changes it):
caller transcripts (``conversation.item.input_audio_transcription.*``) only when the session has
``audio.input.transcription``; a session key OpenAI does not know is refused with 400
``unknown_parameter`` (``session.foo``; ``foo`` in an accept body, which is the session itself), or an
``error`` event for ``session.update``. Events carry every field the official schema requires
(``tests/test_openai_contract.py`` checks them against the ``openai`` SDK, which this module never imports).

With ``FakeOpenAI(webrtc=True)`` (``--webrtc``) the SDP answer of ``/v1/realtime/calls`` is a real
one from an aiortc peer (see ``tests/fake_webrtc.py``; recordings in ``FakeOpenAI.webrtc_calls``)
and that endpoint answers CORS (preflight, ``Access-Control-Expose-Headers: Location``) so a page
on another origin can post its offer directly, as browsers do with an ephemeral key.

Every HTTP request (including WebSocket handshakes, recorded as ``GET /v1/realtime``) lands in
``FakeOpenAI.requests``; each accepted sideband lands in ``FakeOpenAI.sidebands``.

In tests::

    with FakeOpenAI().start() as fake:
        httpx.post(f"{fake.base_url}/realtime/calls", ...)

From the command line (then run the app with ``OPENAI_BASE_URL=http://127.0.0.1:9100/v1`` and
``OPENAI_API_KEY=sk-test-fake``)::

    python tests/fake_openai.py --port 9100
    python -m tests.fake_openai --port 9100
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import json
import logging
import math
import os
import re
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeAlias

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

if TYPE_CHECKING:
    from tests.fake_live import LiveState, PendingSipCall
    from tests.fake_webrtc import WebRTCCall, WebRTCPeers

__all__ = [
    "CALLER_TRANSCRIPT_PREFIX",
    "DEFAULT_API_KEY",
    "EVENTS_WITHOUT_ID",
    "SESSION_KEYS",
    "TOOL_KEYS",
    "TRANSCRIBING_SESSION",
    "FakeOpenAI",
    "RecordedRequest",
    "SidebandSession",
    "audio_stopped_event",
    "caller_transcript_event",
    "caller_turn_events",
    "default_sideband_script",
    "demo_call_script",
    "dtmf_event",
    "error_event",
    "events_for_session",
    "function_call_events",
    "main",
    "mcp_call_events",
    "response_created_event",
    "response_done_event",
    "response_object",
    "spoken_response_events",
    "transcribes",
    "unknown_session_key",
]

logger = logging.getLogger("fake_openai")

DEFAULT_API_KEY = "sk-test-fake"
_ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
_PROTOCOL_SCOPE_KEY = "fake_openai.protocol"
_CALL_ACTIONS = ("accept", "reject", "refer", "hangup")
_CALLS_PATH = "/v1/realtime/calls"
_CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Location",
}
_CORS_PREFLIGHT_HEADERS = {
    **_CORS_HEADERS,
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type",
    "Access-Control-Max-Age": "600",
}


# --------------------------------------------------------------------------- records


@dataclass
class RecordedRequest:
    """One HTTP request as the fake received it (WebSocket handshakes are recorded as ``GET``)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    form: dict[str, str] | None  # multipart/form-data parts (name -> text), else None
    json: Any | None  # parsed JSON body when the body is JSON, else None
    received_at: float  # time.monotonic()


@dataclass
class SidebandSession:
    """One accepted sideband WebSocket (``/v1/realtime?call_id=...``)."""

    call_id: str
    headers: dict[str, str]  # handshake headers, lower-case names
    opened_at: float  # time.monotonic()
    client_events: list[tuple[float, dict[str, Any]]] = field(default_factory=list)  # (monotonic, event)
    closed_at: float | None = None  # set when either side closes or the connection drops
    server_events: list[dict[str, Any]] = field(default_factory=list)  # every event the fake sent
    server_event_times: list[float] = field(default_factory=list)  # time.monotonic() of each, once sent
    close_code: int | None = None  # close code reported by the ASGI server (1005/1006 if none)

    def client_event_types(self) -> list[str]:
        """The ``type`` of every client event, in arrival order."""
        return [str(event.get("type")) for _, event in self.client_events]

    def tool_outputs(self) -> list[dict[str, Any]]:
        """The ``function_call_output`` items the client sent (``conversation.item.create``), in order."""
        return [
            event["item"]
            for _, event in self.client_events
            if event.get("type") == "conversation.item.create"
            and isinstance(event.get("item"), dict)
            and event["item"].get("type") == "function_call_output"
        ]

    def response_creates(self) -> list[tuple[float, dict[str, Any]]]:
        """(arrival time, event) of every ``response.create`` the client sent."""
        return [(at, event) for at, event in self.client_events if event.get("type") == "response.create"]


@dataclass
class _Fault:
    path_suffix: str
    remaining: int
    status: int | None = None
    body: Any = None
    delay: float | None = None
    reset: bool = False  # drop the TCP connection instead of answering


# --------------------------------------------------------------------------- helpers


def _error_body(
    message: str, *, type_: str = "invalid_request_error", code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _error(
    status: int,
    message: str,
    *,
    type_: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
) -> JSONResponse:
    return JSONResponse(_error_body(message, type_=type_, code=code, param=param), status_code=status)


def _unauthorized() -> JSONResponse:
    return _error(401, "Incorrect API key provided", code="invalid_api_key")


def _call_not_found(call_id: str) -> JSONResponse:
    return _error(404, f"Call with id '{call_id}' not found.", code="call_id_not_found", param="call_id")


def _new_id(prefix: str, hex_chars: int = 24) -> str:
    return prefix + secrets.token_hex(hex_chars // 2)


def _bearer(headers: Mapping[str, str]) -> str | None:
    value = headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _parse_multipart(content_type: str, body: bytes) -> dict[str, str] | None:
    """Parse a multipart/form-data body into name -> text (last one wins); None if it is not multipart."""
    if not content_type.lower().startswith("multipart/form-data"):
        return None
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if match is None:
        return None
    delimiter = b"--" + match.group(1).encode("latin-1")
    parts: dict[str, str] = {}
    for raw_chunk in body.split(delimiter)[1:]:
        if raw_chunk.startswith(b"--"):
            break  # closing delimiter
        chunk = raw_chunk.removeprefix(b"\r\n").removesuffix(b"\r\n")
        raw_headers, sep, content = chunk.partition(b"\r\n\r\n")
        if not sep:
            continue
        name: str | None = None
        for line in raw_headers.decode("latin-1").split("\r\n"):
            key, _, value = line.partition(":")
            if key.strip().lower() == "content-disposition":
                found = re.search(r'(?:^|;)\s*name="([^"]*)"', value) or re.search(
                    r"(?:^|;)\s*name=([^;\s]+)", value
                )
                if found:
                    name = found.group(1)
        if name is not None:
            parts[name] = content.decode("utf-8", errors="replace")
    return parts


def _parse_json(body: bytes) -> Any | None:
    if not body.strip():
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def _sdp_answer(offer: str) -> str:
    """A plausible (not a working) SDP answer mirroring the offer's m-sections and mids."""
    sections: list[tuple[str, str]] = []  # (media kind, mid)
    kind: str | None = None
    for line in offer.splitlines():
        if line.startswith("m="):
            kind = line[2:].split(" ", 1)[0]
            sections.append((kind, str(len(sections))))
        elif line.startswith("a=mid:") and sections:
            sections[-1] = (sections[-1][0], line[6:].strip())
    if not sections:
        sections = [("audio", "0")]
    fingerprint = ":".join(secrets.token_hex(1).upper() for _ in range(32))
    ufrag, pwd = secrets.token_hex(4), secrets.token_hex(12)
    lines = [
        "v=0",
        f"o=- {secrets.randbelow(10**18)} 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE " + " ".join(mid for _, mid in sections),
        "a=msid-semantic: WMS *",
    ]
    for media, mid in sections:
        if media == "audio":
            lines.append("m=audio 9 UDP/TLS/RTP/SAVPF 111")
        elif media == "application":
            lines.append("m=application 9 UDP/DTLS/SCTP webrtc-datachannel")
        else:
            lines.append(f"m={media} 9 UDP/TLS/RTP/SAVPF 96")
        lines += [
            "c=IN IP4 0.0.0.0",
            f"a=ice-ufrag:{ufrag}",
            f"a=ice-pwd:{pwd}",
            f"a=fingerprint:sha-256 {fingerprint}",
            "a=setup:active",
            f"a=mid:{mid}",
        ]
        if media == "audio":
            lines += [
                "a=sendrecv",
                "a=rtcp-mux",
                "a=rtpmap:111 opus/48000/2",
                "a=fmtp:111 minptime=10;useinbandfec=1",
            ]
        elif media == "application":
            lines += ["a=sctp-port:5000", "a=max-message-size:262144"]
        else:
            lines += ["a=recvonly", "a=rtcp-mux", "a=rtpmap:96 VP8/90000"]
        lines.append("a=candidate:1 1 udp 2130706431 127.0.0.1 3478 typ host")
    return "\r\n".join(lines) + "\r\n"


# The caller's words as text: only sessions with `audio.input.transcription` get these events.
CALLER_TRANSCRIPT_PREFIX = "conversation.item.input_audio_transcription."
# Server events OpenAI's schema gives no `event_id` (the fake adds one to every other event).
EVENTS_WITHOUT_ID = frozenset({"input_audio_buffer.dtmf_event_received"})
_CONVERSATION_ID = "conv_fake0001"
_SPOKEN_USAGE = {
    "total_tokens": 253,
    "input_tokens": 181,
    "output_tokens": 72,
    "input_token_details": {"text_tokens": 181, "audio_tokens": 0, "cached_tokens": 0},
    "output_token_details": {"text_tokens": 18, "audio_tokens": 54},
}


def response_object(
    response_id: str,
    status: str,
    *,
    output: list[dict[str, Any]] | None = None,
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A whole ``realtime.response``, as ``response.created`` (in_progress) and ``response.done`` carry it."""
    return {
        "object": "realtime.response",
        "id": response_id,
        "status": status,
        "status_details": None,
        "output": output or [],
        "conversation_id": _CONVERSATION_ID,
        "output_modalities": ["audio"],
        "max_output_tokens": "inf",
        "audio": {"output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin"}},
        "metadata": None,
        "usage": usage,
    }


def spoken_response_events(
    transcript: str,
    *,
    response_id: str | None = None,
    item_id: str | None = None,
    deltas: list[str] | None = None,
    usage: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """One spoken answer: response.created, transcript deltas and audio, transcript done, response.done."""
    resp, item = response_id or _new_id("resp_"), item_id or _new_id("item_")
    common = {"response_id": resp, "item_id": item, "output_index": 0, "content_index": 0}
    message = {
        "id": item,
        "object": "realtime.item",
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_audio", "transcript": transcript}],
    }
    return [
        {"type": "response.created", "response": response_object(resp, "in_progress")},
        *({"type": "response.output_audio_transcript.delta", **common, "delta": d} for d in deltas or []),
        *(
            [{"type": "response.output_audio.delta", **common, "delta": "AAAAAAAAAAAAAAAAAAAAAA=="}]
            if deltas
            else []
        ),
        {"type": "response.output_audio_transcript.done", **common, "transcript": transcript},
        {
            "type": "response.done",
            "response": response_object(resp, "completed", output=[message], usage=usage),
        },
    ]


def caller_turn_events(
    text: str, *, item_id: str | None = None, audio_start_ms: int = 4200
) -> list[dict[str, Any]]:
    """The caller speaks (``speech_started``) and, when the session transcribes, their words as text."""
    item = item_id or _new_id("item_")
    return [
        {"type": "input_audio_buffer.speech_started", "audio_start_ms": audio_start_ms, "item_id": item},
        {"type": CALLER_TRANSCRIPT_PREFIX + "delta", "item_id": item, "content_index": 0, "delta": text},
        {
            "type": CALLER_TRANSCRIPT_PREFIX + "completed",
            "item_id": item,
            "content_index": 0,
            "transcript": text,
            "usage": {"type": "duration", "seconds": 1.2},
        },
    ]


# A session that asks for the caller's words as text, as every session the project sends does by default.
TRANSCRIBING_SESSION: dict[str, Any] = {
    "type": "realtime",
    "audio": {"input": {"transcription": {"model": "gpt-live-transcribe"}}},
}


def caller_transcript_event(text: str, *, item_id: str | None = None) -> dict[str, Any]:
    """The caller's finished words as text (``conversation.item.input_audio_transcription.completed``)."""
    return caller_turn_events(text, item_id=item_id)[-1]


def response_created_event(response_id: str | None = None) -> dict[str, Any]:
    """A ``response.created`` with a whole (in-progress) response object."""
    return {
        "type": "response.created",
        "response": response_object(response_id or _new_id("resp_"), "in_progress"),
    }


def response_done_event(
    response_id: str | None = None, *, usage: dict[str, Any] | None = None, status: str = "completed"
) -> dict[str, Any]:
    """A ``response.done`` with a whole response object (no output items)."""
    return {
        "type": "response.done",
        "response": response_object(response_id or _new_id("resp_"), status, usage=usage),
    }


def default_sideband_script() -> list[dict[str, Any]]:
    """A fresh copy of the default server-event script: one short, realistic GA-named exchange (the
    caller's transcript reaches only sessions that ask for transcription: see ``transcribes``)."""
    return [
        *spoken_response_events(
            "Hello! Thanks for trying the Realtime API.",
            response_id="resp_fake0001",
            item_id="item_fake0001",
            deltas=["Hello! ", "Thanks for trying ", "the Realtime API."],
            usage=_SPOKEN_USAGE,
        ),
        *caller_turn_events("What's new?", item_id="item_fake0002"),
    ]


def transcribes(session: Mapping[str, Any]) -> bool:
    """Whether a session asked for the caller's words as text (``audio.input.transcription.model``)."""
    audio = session.get("audio")
    audio_input = audio.get("input") if isinstance(audio, dict) else None
    transcription = audio_input.get("transcription") if isinstance(audio_input, dict) else None
    return isinstance(transcription, dict) and bool(transcription.get("model"))


def events_for_session(events: list[Any], session: Mapping[str, Any]) -> list[Any]:
    """``events`` as OpenAI would send them for ``session``: no caller transcripts unless it transcribes."""
    if transcribes(session):
        return list(events)
    return [
        event
        for event in events
        if not (isinstance(event, dict) and str(event.get("type", "")).startswith(CALLER_TRANSCRIPT_PREFIX))
    ]


def function_call_events(
    call_id: str, name: str, arguments: str = "{}", *, response_id: str | None = None
) -> list[dict[str, Any]]:
    """One model function call as the GA API streams it: the call arrives three times (arguments.done,
    output_item.done, response.done), all with the same ``call_id``."""
    resp = response_id or _new_id("resp_")
    item_id = _new_id("item_")
    item = {
        "id": item_id,
        "object": "realtime.item",
        "type": "function_call",
        "status": "completed",
        "name": name,
        "call_id": call_id,
        "arguments": arguments,
    }
    common = {"response_id": resp, "item_id": item_id, "output_index": 0}
    return [
        {"type": "response.created", "response": response_object(resp, "in_progress")},
        {
            "type": "response.output_item.added",
            "response_id": resp,
            "output_index": 0,
            "item": {**item, "status": "in_progress", "arguments": ""},
        },
        {"type": "response.function_call_arguments.delta", **common, "call_id": call_id, "delta": arguments},
        {
            "type": "response.function_call_arguments.done",
            **common,
            "call_id": call_id,
            "name": name,
            "arguments": arguments,
        },
        {"type": "response.output_item.done", "response_id": resp, "output_index": 0, "item": item},
        {"type": "response.done", "response": response_object(resp, "completed", output=[item])},
    ]


def mcp_call_events(server_label: str, name: str, *, failed: bool = False) -> list[dict[str, Any]]:
    """A remote MCP server's tool list and one call of its tool, as the GA API reports them (a failed
    call carries a ``tool_execution_error``)."""
    list_id, call_item, resp = _new_id("item_"), _new_id("item_"), _new_id("resp_")
    outcome = "failed" if failed else "completed"
    item = {
        "id": call_item,
        "type": "mcp_call",
        "server_label": server_label,
        "name": name,
        "arguments": "{}",
        "output": None if failed else "42",
        "error": {"type": "tool_execution_error", "message": "boom"} if failed else None,
    }
    at = {"item_id": call_item, "output_index": 0}
    return [
        {"type": "mcp_list_tools.in_progress", "item_id": list_id},
        {"type": "mcp_list_tools.completed", "item_id": list_id},
        {"type": "response.mcp_call.in_progress", **at},
        {"type": "response.mcp_call_arguments.done", "response_id": resp, **at, "arguments": "{}"},
        {"type": f"response.mcp_call.{outcome}", **at},
        {"type": "response.output_item.done", "response_id": resp, "output_index": 0, "item": item},
    ]


def dtmf_event(digit: str) -> dict[str, Any]:
    """A keypad press on a SIP call (OpenAI's schema gives this event no ``event_id``)."""
    return {"type": "input_audio_buffer.dtmf_event_received", "event": digit, "received_at": int(time.time())}


def audio_stopped_event(response_id: str = "") -> dict[str, Any]:
    """Playback of a response finished (WebRTC/SIP)."""
    return {"type": "output_audio_buffer.stopped", "response_id": response_id}


def error_event(
    message: str, *, type_: str = "invalid_request_error", code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    """A server ``error`` event (the session stays open)."""
    return {"type": "error", **_error_body(message, type_=type_, code=code, param=param)}


# --------------------------------------------------------------------------- session keys

# The keys OpenAI knows in a realtime session (the accept body, the `session` of /realtime/calls and of
# client_secrets, `session.update`), object by object; None: a value the fake does not look into. From
# the openai SDK's RealtimeSessionCreateRequestParam (tests/test_openai_contract.py proves they agree),
# so that an unknown key is refused as OpenAI refuses it ("Unknown parameter") without importing openai.
KeySchema: TypeAlias = Mapping[str, "KeySchema | None"]
SESSION_KEYS: KeySchema = {
    "type": None,
    "model": None,
    "instructions": None,
    "output_modalities": None,
    "max_output_tokens": None,
    "include": None,
    "parallel_tool_calls": None,
    "prompt": None,
    "reasoning": None,
    "tool_choice": None,
    "tools": None,  # each tool: TOOL_KEYS
    "tracing": None,
    "truncation": None,
    "audio": {
        "input": {
            "format": None,
            "noise_reduction": {"type": None, "strength": None},
            "transcription": {
                "model": None,
                "language": None,
                "languages": None,
                "prompt": None,
                "keywords": None,
                "delay": None,
            },
            "turn_detection": None,
        },
        "output": {"format": None, "voice": None, "speed": None},
    },
}
TOOL_KEYS: Mapping[str, frozenset[str]] = {
    "function": frozenset({"type", "name", "description", "parameters"}),
    "mcp": frozenset(
        {
            "type",
            "server_label",
            "server_url",
            "server_description",
            "connector_id",
            "authorization",
            "headers",
            "allowed_tools",
            "allowed_callers",
            "require_approval",
            "defer_loading",
            "tunnel_id",
        }
    ),
}


def unknown_session_key(session: Mapping[str, Any], prefix: str = "session.") -> str | None:
    """The first key of ``session`` OpenAI would refuse, as its error's ``param`` names it
    (``session.audio.input.foo``, ``session.tools[0].foo``), or None."""
    found = _unknown_key(session, SESSION_KEYS, prefix)
    tools = session.get("tools")
    if found is None and isinstance(tools, list):
        for index, tool in enumerate(tools):
            known = TOOL_KEYS.get(str(tool.get("type"))) if isinstance(tool, dict) else None
            extra = sorted(set(tool) - known) if known is not None else []
            if extra:
                return f"{prefix}tools[{index}].{extra[0]}"
    return found


def _unknown_key(value: Mapping[str, Any], schema: KeySchema, path: str) -> str | None:
    for key, sub in value.items():
        if key not in schema:
            return path + key
        nested = schema[key]
        if nested is not None and isinstance(sub, dict):
            found = _unknown_key(sub, nested, f"{path}{key}.")
            if found is not None:
                return found
    return None


def _merge(session: dict[str, Any], update: Mapping[str, Any]) -> None:
    """Apply a sparse ``session.update``: nested objects merge, other values replace."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(session.get(key), dict):
            _merge(session[key], value)
        else:
            session[key] = copy.deepcopy(value)


def _unknown_parameter(param: str) -> JSONResponse:
    return _error(400, f"Unknown parameter: '{param}'.", param=param, code="unknown_parameter")


DEMO_TOOL = "get_current_time"
DEMO_TOOL_ARGUMENTS = '{"timezone": "Europe/Paris"}'
DEMO_CALLER_SAYS = "What time is it in Paris?"
# What the "model" says to each response.create of a demo call: the greeting, after the tool, goodbye.
DEMO_REPLIES = (
    "Hello! You are talking to the fake OpenAI on this machine.",
    "Thanks, I have the tool's answer.",
    "Goodbye!",
)


def demo_call_script(
    tool: str | None = DEMO_TOOL,
    arguments: str = DEMO_TOOL_ARGUMENTS,
    *,
    caller_says: str = DEMO_CALLER_SAYS,
    end_call: bool = True,
) -> list[dict[str, Any] | float]:
    """A short call: (the greeting is the reply to the observer's first response.create) the caller
    asks, the model calls ``tool`` with ``arguments``, then ``end_call`` (so the observer hangs up)."""
    said = _new_id("item_")
    script: list[dict[str, Any] | float] = [
        1.0,  # the observer's greeting is answered first
        *caller_turn_events(caller_says, item_id=said, audio_start_ms=1000),
    ]
    if tool:
        script += function_call_events(_new_id("call_"), tool, arguments)
        script.append(1.5)  # the tool's output and the model's answer to it
    if end_call:
        script += function_call_events(_new_id("call_"), "end_call", "{}")
    return script


# --------------------------------------------------------------------------- the fake


class FakeOpenAI:
    """A local fake OpenAI Realtime API server; see the module docstring.

    Recordings (safe to read from the test thread): ``requests``, ``sidebands``, ``known_calls``.
    Sideband knobs, read when a sideband is accepted:

    - ``sideband_script``: server events sent after ``session.created`` (``event_id`` added if missing);
      a ``str`` or ``bytes`` entry is sent as a raw text or binary frame (for malformed-frame tests).
    - ``sideband_event_interval``: seconds before each script event (default 0.01).
    - ``sideband_hold_seconds``: how long to keep the socket open after the script (default 0.5);
      < 0 keeps it open until the client closes. A ``reject``/``hangup`` of the call ends the hold early.
    - ``sideband_abrupt_close``: end by dropping the TCP connection without a close frame
      (the client sees ``ConnectionClosedError``, code 1006) instead of a 1000 close.
    - ``sideband_scripts``: a list of scripts, one for each of the next sidebands (then the default).
    - A ``float`` script entry pauses the script that many seconds.
    - ``sideband_replies``: answer each client ``response.create`` with response.created,
      output_audio_buffer.started, a transcript, response.done and, after ``reply_audio_seconds``,
      output_audio_buffer.stopped (None: no output_audio_buffer events).
    - ``refer_outcome``: ``"transfer"`` (a ``/refer`` ends the call's sidebands, as a completed
      REFER does) or ``"ignore"`` (200 and nothing happens); ``fail_next("/refer", 500)`` for errors.
    """

    def __init__(
        self,
        api_key: str = DEFAULT_API_KEY,
        *,
        port: int = 0,
        log_level: str = "warning",
        webrtc: bool = False,
    ) -> None:
        self.api_key = api_key
        self.webrtc: WebRTCPeers | None = None
        if webrtc:  # imported only here: aiortc is heavy and only the browser tests need it
            from tests.fake_webrtc import WebRTCPeers

            self.webrtc = WebRTCPeers(default_sideband_script)
            self.webrtc.on_closed = self._end_call_sidebands
            self.webrtc.on_live_client_event = self._live_browser_event
        self.requests: list[RecordedRequest] = []
        self.sidebands: list[SidebandSession] = []
        self.known_calls: set[str] = set()
        self._port = port
        self._log_level = log_level
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self._ephemeral_keys: dict[str, float] = {}  # ek_ value -> expires_at (unix s)
        self._ephemeral_sessions: dict[str, dict[str, Any]] = {}  # ek_ value -> the session it was minted for
        self._call_sessions: dict[str, dict[str, Any]] = {}
        self._call_ended: dict[str, list[asyncio.Event]] = {}
        self._replies: set[asyncio.Task[None]] = (
            set()
        )  # answers to response.create being sent  # open sidebands per call (server loop only)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._bound_port: int | None = None
        self._stopping = threading.Event()
        self._set_defaults()
        from tests import fake_live  # GPT-Live (/v1/live/...): tests/fake_live.py; imported here (cycle)

        self.live: LiveState = fake_live.LiveState(self)
        self._app = Starlette(
            routes=[
                Route("/v1/_health", self._http(self._health, auth=False), methods=["GET"]),
                Route("/v1/realtime/calls", self._http(self._create_call), methods=_ALL_METHODS),
                Route("/v1/realtime/client_secrets", self._http(self._client_secrets), methods=_ALL_METHODS),
                Route(
                    "/v1/realtime/calls/{call_id}/{action}",
                    self._http(self._call_action),
                    methods=_ALL_METHODS,
                ),
                WebSocketRoute("/v1/realtime", self._sideband),
                Route("/v1/_fake/calls", self._http(self._control_new_call, auth=False), methods=["POST"]),
                Route(
                    "/v1/_fake/calls/{call_id}",
                    self._http(self._control_call_status, auth=False),
                    methods=["GET"],
                ),
                *fake_live.routes(self),
                Route("/{path:path}", self._http(self._not_found, auth=False), methods=_ALL_METHODS),
            ]
        )

    def _set_defaults(self) -> None:
        self.sideband_script: list[dict[str, Any] | str | bytes | float] = list(default_sideband_script())
        # Scripts for the next sidebands, one each, in order (then ``sideband_script`` again).
        self.sideband_scripts: list[list[dict[str, Any] | str | bytes | float]] = []
        self.sideband_event_interval: float = 0.01
        self.sideband_hold_seconds: float = 0.5
        self.sideband_abrupt_close: bool = False
        self.sideband_replies: bool = False
        self.reply_audio_seconds: float | None = 0.05
        self.refer_outcome: str = "transfer"
        # WebRTC mode: whether CORS lets a page read Location (real OpenAI: unconfirmed).
        self.cors_expose_location: bool = True
        # Per call (POST /v1/_fake/calls): its sideband script, and its spoken replies (in order, then
        # "Okay."); a call listed here gets replies even with ``sideband_replies`` off.
        self.call_scripts: dict[str, list[dict[str, Any] | str | bytes | float]] = {}
        self.call_replies: dict[str, list[str]] = {}
        # What POST /v1/_fake/calls scripts when its body does not say (``--tool``, ``--tool-args``).
        self.demo_tool: str | None = DEMO_TOOL
        self.demo_tool_arguments: str = DEMO_TOOL_ARGUMENTS

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> Self:
        """Start uvicorn in a daemon thread on 127.0.0.1 and wait until it serves; returns self."""
        if self._thread is not None:
            raise RuntimeError("FakeOpenAI is already running")
        config = uvicorn.Config(
            self._asgi,
            host="127.0.0.1",
            port=self._port,
            interface="asgi3",
            lifespan="off",
            log_config=None,
            log_level=self._log_level,
            access_log=self._log_level in ("debug", "trace", "info"),
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name=f"fake-openai:{self._port}", daemon=True)
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + 10.0
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self._server = self._thread = None
                server.should_exit = True
                raise RuntimeError(f"FakeOpenAI failed to start on 127.0.0.1:{self._port}")
            time.sleep(0.005)
        self._bound_port = server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        """Stop the server (open sidebands get close code 1012) and join its thread."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._stopping.set()  # cuts injected delays short
        if self.webrtc is not None:
            self.webrtc.close_all_threadsafe()
        server.should_exit = True
        thread.join(timeout=5.0)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout=5.0)
        self._server = self._thread = None
        self._bound_port = None
        self._stopping.clear()

    def __enter__(self) -> Self:
        return self if self._thread is not None else self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def is_running(self) -> bool:
        """True while the server thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def port(self) -> int:
        """The bound TCP port (only while running)."""
        if self._bound_port is None:
            raise RuntimeError("FakeOpenAI is not running; call start() first")
        return self._bound_port

    @property
    def base_url(self) -> str:
        """The API base, e.g. ``http://127.0.0.1:54321/v1`` (what OPENAI_BASE_URL should be)."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def ws_url(self) -> str:
        """The sideband WebSocket URL without the query, e.g. ``ws://127.0.0.1:54321/v1/realtime``."""
        return f"ws://127.0.0.1:{self.port}/v1/realtime"

    # ----------------------------------------------------------------- test helpers

    def requests_to(self, path_suffix: str) -> list[RecordedRequest]:
        """Recorded requests whose path (without query) ends with ``path_suffix``."""
        with self._lock:
            return [r for r in self.requests if r.path.endswith(path_suffix)]

    @property
    def webrtc_calls(self) -> dict[str, WebRTCCall]:
        """What the WebRTC peer saw, by call id (empty unless ``webrtc=True``)."""
        return {} if self.webrtc is None else self.webrtc.calls

    def reset(self) -> None:
        """Clear recordings, faults, calls and minted keys; restore the default sideband behaviour."""
        if self.webrtc is not None:
            self.webrtc.close_all_threadsafe()
            self.webrtc.calls.clear()
            self.webrtc.wrong_fingerprint = False
            self.webrtc.script = default_sideband_script
        with self._lock:
            self.requests.clear()
            self.sidebands.clear()
            self.known_calls.clear()
            self._faults.clear()
            self._ephemeral_keys.clear()
            self._ephemeral_sessions.clear()
            self._call_sessions.clear()
            self._set_defaults()
        self.live.reset()

    def fail_next(self, path_suffix: str, status: int, body: Any = None, *, times: int = 1) -> None:
        """Answer the next ``times`` requests whose path ends with ``path_suffix`` with ``status``.

        ``body``: dict/list -> JSON, str/bytes -> raw, None -> an OpenAI error JSON. Applies to
        WebSocket handshakes too (the handshake is denied with that status).
        """
        with self._lock:
            self._faults.append(_Fault(path_suffix, times, status=status, body=body))

    def delay_next(self, path_suffix: str, seconds: float, *, times: int = 1) -> None:
        """Wait ``seconds`` before answering the next ``times`` requests whose path ends with the suffix.

        Combines with ``fail_next`` (delay first, then the failure); cut short by ``stop()``.
        """
        with self._lock:
            self._faults.append(_Fault(path_suffix, times, delay=seconds))

    def reset_next(self, path_suffix: str, *, times: int = 1) -> None:
        """Drop the connection (no HTTP answer at all) on the next ``times`` matching HTTP requests."""
        with self._lock:
            self._faults.append(_Fault(path_suffix, times, status=0, reset=True))

    def register_call(self, call_id: str, session: dict[str, Any] | None = None) -> None:
        """Make ``call_id`` known (e.g. an incoming SIP call), so accept/sideband work for it."""
        with self._lock:
            self.known_calls.add(call_id)
            if session is not None:
                self._call_sessions[call_id] = session

    def register_pending_sip_call(
        self, *, call_id: str | None = None, session_id: str | None = None
    ) -> PendingSipCall:
        """An incoming SIP call reachable as Realtime ``call_id`` and Live ``session_id``: the first
        accept/reject through either API decides (see tests/fake_live.py)."""
        return self.live.register_pending_sip_call(call_id=call_id, session_id=session_id)

    def mint_ephemeral_key(self, ttl_seconds: float = 600, session: dict[str, Any] | None = None) -> str:
        """Mint an ``ek_...`` key directly, as ``/realtime/client_secrets`` would; calls made with it
        get ``session`` (default: a bare realtime session, which does not transcribe the caller)."""
        value = _new_id("ek_", 32)
        with self._lock:
            self._ephemeral_keys[value] = time.time() + ttl_seconds
            self._ephemeral_sessions[value] = session or {"type": "realtime"}
        return value

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Poll ``predicate`` every 10 ms until it is true (-> True) or ``timeout`` passes (-> False)."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)

    # ----------------------------------------------------------------- internals

    async def _asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("websocket", "http"):
            # uvicorn's `send` is a bound method of its WebSocket protocol object (which owns the TCP
            # transport): keep it so a sideband can drop the connection without a close frame.
            scope = dict(scope)
            scope[_PROTOCOL_SCOPE_KEY] = getattr(send, "__self__", None)
        if self.webrtc is not None and scope["type"] == "http" and scope["method"] == "OPTIONS":
            # CORS preflight of a browser posting its offer from another origin (no auth on preflights).
            request = Request(scope, receive)
            self._record(
                RecordedRequest(
                    "OPTIONS",
                    scope["path"],
                    dict(request.query_params),
                    dict(request.headers),
                    b"",
                    None,
                    None,
                    time.monotonic(),
                )
            )
            ok = scope["path"] == _CALLS_PATH
            response = Response(
                status_code=204 if ok else 404, headers=_CORS_PREFLIGHT_HEADERS if ok else None
            )
            await response(scope, receive, send)
            return
        await self._app(scope, receive, send)

    async def _sleep(self, seconds: float) -> None:
        """asyncio.sleep that ends early when stop() is called, so shutdown stays quick."""
        steps = max(1, math.ceil(seconds / 0.02))
        for _ in range(steps):
            if self._stopping.is_set():
                return
            await asyncio.sleep(seconds / steps)

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)
        logger.info("%s %s %s", request.method, request.path, request.form or request.json or "")

    def _take_faults(self, path: str) -> tuple[float, _Fault | None]:
        """Consume the first matching delay and the first matching failure for ``path``."""
        delay: _Fault | None = None
        failure: _Fault | None = None
        with self._lock:
            for fault in self._faults:
                if not path.endswith(fault.path_suffix):
                    continue
                if fault.delay is not None and delay is None:
                    delay = fault
                elif fault.status is not None and failure is None:
                    failure = fault
            for taken in (delay, failure):
                if taken is not None:
                    taken.remaining -= 1
                    if taken.remaining <= 0:
                        self._faults.remove(taken)
        return (delay.delay or 0.0) if delay is not None else 0.0, failure

    @staticmethod
    def _fault_response(fault: _Fault) -> Response:
        assert fault.status is not None
        body = fault.body
        if isinstance(body, bytes):
            return Response(body, status_code=fault.status, media_type="application/octet-stream")
        if isinstance(body, str):
            return PlainTextResponse(body, status_code=fault.status)
        if body is None:
            type_ = "server_error" if fault.status >= 500 else "invalid_request_error"
            body = _error_body(f"Injected failure (HTTP {fault.status})", type_=type_)
        return JSONResponse(body, status_code=fault.status)

    def _key_ok(self, key: str | None, *, allow_ephemeral: bool) -> bool:
        if key is None:
            return False
        if secrets.compare_digest(key.encode(), self.api_key.encode()):
            return True
        if allow_ephemeral:
            with self._lock:
                expires_at = self._ephemeral_keys.get(key)
            return expires_at is not None and expires_at > time.time()
        return False

    def _http(
        self, handler: Callable[[Request, RecordedRequest], Awaitable[Response]], *, auth: bool = True
    ) -> Callable[[Request], Awaitable[Response]]:
        """Wrap an endpoint: record, apply injected delays/failures, check the key, then handle."""

        async def endpoint(request: Request) -> Response:
            body = await request.body()
            headers = {k.lower(): v for k, v in request.headers.items()}
            content_type = headers.get("content-type", "")
            form = _parse_multipart(content_type, body)
            recorded = RecordedRequest(
                method=request.method,
                path=request.url.path,
                query=dict(request.query_params),
                headers=headers,
                body=body,
                form=form,
                json=_parse_json(body) if form is None else None,
                received_at=time.monotonic(),
            )
            self._record(recorded)
            delay, failure = self._take_faults(recorded.path)
            if delay:
                await self._sleep(delay)
            if failure is not None and failure.reset:
                transport = getattr(request.scope.get(_PROTOCOL_SCOPE_KEY), "transport", None)
                if transport is not None:
                    transport.abort()  # the client sees the connection reset, with no answer
                response = Response(b"", status_code=500)  # never delivered
            elif failure is not None:
                response = self._fault_response(failure)
            elif auth and not self._key_ok(
                _bearer(headers), allow_ephemeral=recorded.path == "/v1/realtime/calls"
            ):
                response = _unauthorized()
            else:
                response = await handler(request, recorded)
            response.headers.setdefault("x-request-id", _new_id("req_", 32))
            if self.webrtc is not None and recorded.path == _CALLS_PATH:
                response.headers.update(_CORS_HEADERS)  # errors too: the page shows their reason
                if not self.cors_expose_location:
                    del response.headers["access-control-expose-headers"]
            return response

        return endpoint

    async def _health(self, request: Request, recorded: RecordedRequest) -> Response:
        return PlainTextResponse("ok")

    async def _not_found(self, request: Request, recorded: RecordedRequest) -> Response:
        return _error(404, f"Invalid URL ({recorded.method} {recorded.path})")

    async def _create_call(self, request: Request, recorded: RecordedRequest) -> Response:
        if recorded.method != "POST":
            return _error(405, f"Method {recorded.method} not allowed")
        content_type = recorded.headers.get("content-type", "").lower()
        session: dict[str, Any]
        if recorded.form is not None:
            sdp = recorded.form.get("sdp")
            session_text = recorded.form.get("session")
            if sdp is None:
                return _error(
                    400, "Missing required parameter: 'sdp'.", param="sdp", code="missing_required_parameter"
                )
            if session_text is None:
                return _error(
                    400,
                    "Missing required parameter: 'session'.",
                    param="session",
                    code="missing_required_parameter",
                )
            try:
                parsed = json.loads(session_text)
            except ValueError:
                return _error(400, "Invalid 'session': expected a JSON object.", param="session")
            if not isinstance(parsed, dict) or parsed.get("type") != "realtime":
                return _error(400, "Invalid 'session.type': expected 'realtime'.", param="session.type")
            unknown = unknown_session_key(parsed)
            if unknown is not None:
                return _unknown_parameter(unknown)
            session = parsed
        elif content_type.startswith("application/sdp"):
            sdp = recorded.body.decode("utf-8", errors="replace")
            key = _bearer(recorded.headers) or ""
            with self._lock:  # browser form: the session comes from the ephemeral key
                session = copy.deepcopy(self._ephemeral_sessions.get(key, {"type": "realtime"}))
        else:
            return _error(
                400, "Expected multipart/form-data with 'sdp' and 'session', or an application/sdp body."
            )
        if not sdp.lstrip().startswith("v=0"):
            return _error(
                400, "Invalid SDP offer: it must start with 'v=0'.", param="sdp", code="invalid_offer"
            )
        call_id = _new_id("rtc_")
        answer = _sdp_answer(sdp)
        if self.webrtc is not None:
            try:
                answer = await self.webrtc.answer(call_id, sdp, session)
            except Exception as exc:  # aiortc refuses offers it cannot answer (no ICE/DTLS lines, ...)
                return _error(400, f"Invalid SDP offer: {exc}", param="sdp", code="invalid_offer")
        self.register_call(call_id, session)
        return Response(
            answer,
            status_code=201,
            media_type="application/sdp",
            headers={"Location": f"/v1/realtime/calls/{call_id}"},
        )

    async def _client_secrets(self, request: Request, recorded: RecordedRequest) -> Response:
        if recorded.method != "POST":
            return _error(405, f"Method {recorded.method} not allowed")
        body = recorded.json if recorded.body else {}
        if not isinstance(body, dict):
            return _error(400, "The request body must be a JSON object.")
        expires_after = body.get("expires_after") or {}
        seconds = expires_after.get("seconds", 600) if isinstance(expires_after, dict) else None
        if not isinstance(seconds, int) or isinstance(seconds, bool) or not 10 <= seconds <= 7200:
            return _error(
                400,
                "Invalid 'expires_after.seconds': expected an integer between 10 and 7200.",
                param="expires_after.seconds",
            )
        session = body.get("session") or {"type": "realtime"}
        if not isinstance(session, dict) or session.get("type") not in ("realtime", "transcription"):
            return _error(
                400, "Invalid 'session.type': expected 'realtime' or 'transcription'.", param="session.type"
            )
        # Transcription sessions have their own schema (not checked here: the project never asks for one).
        unknown = unknown_session_key(session) if session["type"] == "realtime" else None
        if unknown is not None:
            return _unknown_parameter(unknown)
        value = self.mint_ephemeral_key(seconds, session)
        with self._lock:
            expires_at = int(self._ephemeral_keys[value])
        effective = {"object": "realtime.session", "id": _new_id("sess_"), **session}
        return JSONResponse({"value": value, "expires_at": expires_at, "session": effective})

    async def _call_action(self, request: Request, recorded: RecordedRequest) -> Response:
        call_id = str(request.path_params["call_id"])
        action = str(request.path_params["action"])
        if action not in _CALL_ACTIONS:
            return _error(404, f"Invalid URL ({recorded.method} {recorded.path})")
        if recorded.method != "POST":
            return _error(405, f"Method {recorded.method} not allowed")
        with self._lock:
            known = call_id in self.known_calls
        if not known:
            return _call_not_found(call_id)
        body = recorded.json
        if action == "accept":
            if not isinstance(body, dict) or body.get("type") != "realtime":
                return _error(
                    400, 'Invalid \'type\': the session must have "type": "realtime".', param="type"
                )
            unknown = unknown_session_key(body, prefix="")  # the body is the session itself
            if unknown is not None:
                return _unknown_parameter(unknown)
            with self._lock:
                self._call_sessions[call_id] = body
        elif action == "reject":
            if recorded.body.strip() and not isinstance(body, dict):
                return _error(400, "The request body must be a JSON object.")
            status_code = (body or {}).get("status_code", 603)
            if not isinstance(status_code, int) or not 400 <= status_code <= 699:
                return _error(400, "Invalid 'status_code'.", param="status_code")
        elif action == "refer":
            target = body.get("target_uri") if isinstance(body, dict) else None
            if not isinstance(target, str) or not target.startswith(("tel:", "sip:", "sips:")):
                return _error(400, "Invalid 'target_uri': expected a tel: or sip: URI.", param="target_uri")
        decided_by_live = self.live.realtime_decision(call_id, action)  # one pending call, two APIs
        if decided_by_live is not None:
            return decided_by_live
        if action in ("reject", "hangup") or (action == "refer" and self.refer_outcome == "transfer"):
            for ended in self._call_ended.get(call_id, []):
                ended.set()  # open sidebands of this call close now (the id stays in known_calls)
        return Response(b"", status_code=200)

    def _live_browser_event(self, session_id: str, event: dict[str, Any]) -> None:
        self.live.browser_event(session_id, event)

    def _end_call_sidebands(self, call_id: str) -> None:
        """The WebRTC peer of ``call_id`` went away: its open sidebands close (on the server loop); a
        GPT-Live session ends (``session.closed``)."""
        for ended in self._call_ended.get(call_id, []):
            ended.set()
        self.live.peer_left(call_id)

    # ----------------------------------------------------------------- control (make call)

    async def _control_new_call(self, request: Request, recorded: RecordedRequest) -> Response:
        body = recorded.json if recorded.body.strip() else {}
        if not isinstance(body, dict):
            return _error(400, "The request body must be a JSON object.")
        call_id = body.get("call_id") or _new_id("rtc_")
        tool = body.get("tool", self.demo_tool)
        arguments = body.get("tool_arguments", self.demo_tool_arguments)
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments)
        caller_says = body.get("caller_says", DEMO_CALLER_SAYS)
        end_call = body.get("end_call", True)
        if not (isinstance(call_id, str) and re.fullmatch(r"rtc_[A-Za-z0-9_-]{1,200}", call_id)):
            return _error(400, "Invalid 'call_id': expected rtc_ and letters or digits.", param="call_id")
        if not (tool is None or isinstance(tool, str)) or not isinstance(caller_says, str):
            return _error(400, "Invalid 'tool' or 'caller_says': expected strings.")
        if not isinstance(end_call, bool):
            return _error(400, "Invalid 'end_call': expected a boolean.", param="end_call")
        script = demo_call_script(tool or None, arguments, caller_says=caller_says, end_call=end_call)
        self.register_call(call_id)
        with self._lock:
            self.call_scripts[call_id] = list(script)
            self.call_replies[call_id] = list(DEMO_REPLIES)
        logger.info("pending call %s: tool %s(%s), end_call %s", call_id, tool, arguments, end_call)
        plan = {"call_id": call_id, "tool": tool, "tool_arguments": arguments, "end_call": end_call}
        return JSONResponse(plan, status_code=201)

    async def _control_call_status(self, request: Request, recorded: RecordedRequest) -> Response:
        """What the fake saw of a call, each item with ``at`` (the fake's monotonic clock, seconds)."""
        call_id = str(request.path_params["call_id"])
        prefix = f"{_CALLS_PATH}/{call_id}/"
        with self._lock:
            if call_id not in self.known_calls:
                return _call_not_found(call_id)
            actions = [
                {"action": r.path.removeprefix(prefix), "at": r.received_at}
                for r in self.requests
                if r.path.startswith(prefix)
            ]
            sidebands = [s for s in self.sidebands if s.call_id == call_id]
        return JSONResponse(
            {
                "call_id": call_id,
                "actions": actions,  # accept, hangup, ... as the stack asked for them, in order
                "sidebands": [
                    {
                        "opened_at": s.opened_at,
                        "closed_at": s.closed_at,
                        "server_events": [
                            {"at": at, "event": event}
                            for at, event in zip(s.server_event_times, s.server_events, strict=False)
                        ],
                        "client_events": [{"at": at, "event": event} for at, event in s.client_events],
                    }
                    for s in sidebands
                ],
            }
        )

    # ----------------------------------------------------------------- sideband

    async def _sideband_denial(self, websocket: WebSocket) -> Response | None:
        """Record the handshake, apply faults and checks; the HTTP response refusing it, or None."""
        headers = {k.lower(): v for k, v in websocket.headers.items()}
        query = dict(websocket.query_params)
        path = websocket.url.path
        self._record(RecordedRequest("GET", path, query, headers, b"", None, None, time.monotonic()))
        delay, failure = self._take_faults(path)
        if delay:
            await self._sleep(delay)
        call_id = query.get("call_id", "")
        key = _bearer(headers)
        with self._lock:
            known = call_id in self.known_calls
            ephemeral = key is not None and key in self._ephemeral_keys
        if failure is not None:
            return self._fault_response(failure)
        if ephemeral:  # OpenAI refuses sidebands opened with an ephemeral key like an unknown call
            return _call_not_found(call_id)
        if not self._key_ok(key, allow_ephemeral=False):
            return _unauthorized()
        if not call_id:
            return _error(
                404, "Missing required parameter: 'call_id'.", param="call_id", code="call_id_not_found"
            )
        if not known:
            return _call_not_found(call_id)
        return None

    async def _sideband(self, websocket: WebSocket) -> None:
        denial = await self._sideband_denial(websocket)
        if denial is not None:
            # Starlette's denial-response extension: uvicorn answers the upgrade with this HTTP response.
            await websocket.send_denial_response(denial)
            # uvicorn 0.54's websockets-sansio protocol does not count a denial response as a finished
            # handshake and would log "ASGI callable returned without completing handshake." Mark it done.
            protocol = websocket.scope.get(_PROTOCOL_SCOPE_KEY)
            if protocol is not None and hasattr(protocol, "handshake_complete"):
                protocol.handshake_complete = True
            return
        call_id = websocket.query_params["call_id"]
        headers = {k.lower(): v for k, v in websocket.headers.items()}
        transport = getattr(websocket.scope.get(_PROTOCOL_SCOPE_KEY), "transport", None)
        await websocket.accept()
        session = SidebandSession(call_id=call_id, headers=headers, opened_at=time.monotonic())
        with self._lock:
            self.sidebands.append(session)
            config = dict(self._call_sessions.get(call_id, {"type": "realtime"}))
            per_call = self.call_scripts.pop(call_id, None)
            script = copy.deepcopy(
                per_call
                if per_call is not None
                else self.sideband_scripts.pop(0)
                if self.sideband_scripts
                else self.sideband_script
            )
            interval, hold, abrupt = (
                self.sideband_event_interval,
                self.sideband_hold_seconds,
                self.sideband_abrupt_close,
            )
        session_state: dict[str, Any] = {"object": "realtime.session", "id": _new_id("sess_"), **config}
        send_lock = asyncio.Lock()

        async def send_event(event: dict[str, Any]) -> None:
            event = dict(event)
            if event.get("type") not in EVENTS_WITHOUT_ID:
                event.setdefault("event_id", _new_id("event_"))
            async with send_lock:
                await websocket.send_text(json.dumps(event))
                session.server_events.append(event)
                session.server_event_times.append(time.monotonic())

        call_ended = asyncio.Event()
        self._call_ended.setdefault(call_id, []).append(call_ended)
        receiver = asyncio.create_task(
            self._receive_client_events(websocket, session, session_state, send_event)
        )
        try:
            await send_event({"type": "session.created", "session": copy.deepcopy(session_state)})
            for event in script:
                if receiver.done():
                    break
                if interval > 0:
                    await asyncio.sleep(interval)
                if isinstance(event, float):  # a pause in the script
                    await asyncio.sleep(event)
                    continue
                if isinstance(event, str):  # a raw text frame, sent as is
                    async with send_lock:
                        await websocket.send_text(event)
                    continue
                if isinstance(event, bytes):  # a raw binary frame
                    async with send_lock:
                        await websocket.send_bytes(event)
                    continue
                if not events_for_session([event], session_state):
                    continue  # the caller's words as text: only when the session asked for transcription
                await send_event(event)
            # Hold the socket open until the client closes, the call is hung up/rejected, or `hold` passes.
            ended_waiter = asyncio.create_task(call_ended.wait())
            try:
                await asyncio.wait(
                    {receiver, ended_waiter},
                    timeout=None if hold < 0 else hold,
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                ended_waiter.cancel()
            if not receiver.done():
                if abrupt and callable(getattr(transport, "abort", None)):
                    await self._drop_connection(transport)
                else:
                    await websocket.close(1000)
                await asyncio.wait({receiver}, timeout=1.0)
        except (WebSocketDisconnect, OSError, RuntimeError):
            pass  # the client went away mid-script
        finally:
            if not receiver.done():
                receiver.cancel()
            self._call_ended[call_id].remove(call_ended)
            if not self._call_ended[call_id]:
                del self._call_ended[call_id]
            if session.closed_at is None:
                session.closed_at = time.monotonic()

    @staticmethod
    async def _drop_connection(transport: Any) -> None:
        """Close the TCP connection without a WebSocket close frame (after flushing queued events)."""
        for _ in range(200):  # up to ~1 s
            if not transport.get_write_buffer_size():
                break
            await asyncio.sleep(0.005)
        transport.abort()

    async def _receive_client_events(
        self,
        websocket: WebSocket,
        session: SidebandSession,
        session_state: dict[str, Any],
        send_event: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                session.close_code = message.get("code")
                session.closed_at = time.monotonic()
                return
            text = message.get("text")
            if text is None:
                text = (message.get("bytes") or b"").decode("utf-8", errors="replace")
            received_at = time.monotonic()
            try:
                event = json.loads(text)
            except ValueError:
                event = None
            if not isinstance(event, dict):
                session.client_events.append((received_at, {"type": None, "raw": text}))
                await self._safe_send(send_event, error_event("Invalid JSON event.", code="invalid_json"))
                continue
            session.client_events.append((received_at, event))
            logger.info("sideband %s <- %s", session.call_id, event.get("type"))
            if event.get("type") == "response.create" and (
                self.sideband_replies or session.call_id in self.call_replies
            ):
                reply = asyncio.create_task(self._reply(send_event, self._reply_text(session.call_id)))
                self._replies.add(reply)
                reply.add_done_callback(self._replies.discard)
            if event.get("type") == "session.update" and isinstance(event.get("session"), dict):
                unknown = unknown_session_key(event["session"])
                if unknown is not None:  # refused as a whole; the session goes on unchanged
                    refusal = error_event(
                        f"Unknown parameter: '{unknown}'.", code="unknown_parameter", param=unknown
                    )
                    refusal["error"]["event_id"] = event.get("event_id")
                    await self._safe_send(send_event, refusal)
                    continue
                _merge(session_state, event["session"])
                await self._safe_send(
                    send_event, {"type": "session.updated", "session": copy.deepcopy(session_state)}
                )

    def _reply_text(self, call_id: str) -> str:
        with self._lock:
            queued = self.call_replies.get(call_id)
            return queued.pop(0) if queued else "Okay."

    async def _reply(
        self, send_event: Callable[[dict[str, Any]], Awaitable[None]], transcript: str = "Okay."
    ) -> None:
        """A short spoken answer to a response.create; playback ends ``reply_audio_seconds`` later."""
        resp = _new_id("resp_")
        audio = self.reply_audio_seconds
        events = spoken_response_events(transcript, response_id=resp)
        if audio is not None:  # WebRTC and SIP report playback; None: no playback events at all
            events.insert(1, {"type": "output_audio_buffer.started", "response_id": resp})
        for event in events:
            await self._safe_send(send_event, event)
        if audio is not None:
            await asyncio.sleep(audio)
            await self._safe_send(send_event, audio_stopped_event(resp))

    @staticmethod
    async def _safe_send(
        send_event: Callable[[dict[str, Any]], Awaitable[None]], event: dict[str, Any]
    ) -> None:
        with contextlib.suppress(WebSocketDisconnect, OSError, RuntimeError):
            await send_event(event)


# --------------------------------------------------------------------------- CLI


def _json_object_text(text: str) -> str:
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"not a JSON object: {text!r}")
    return text


def main(argv: list[str] | None = None) -> None:
    """Run the fake in the foreground until Ctrl+C."""
    parser = argparse.ArgumentParser(description="Local fake of the OpenAI Realtime API (127.0.0.1 only).")
    parser.add_argument("--port", type=int, default=9100, help="TCP port (0 = any free port); default 9100")
    parser.add_argument(
        "--api-key",
        default=os.environ.get("FAKE_OPENAI_API_KEY", DEFAULT_API_KEY),
        help="the only accepted standard key (env FAKE_OPENAI_API_KEY; default %(default)s)",
    )
    parser.add_argument(
        "--hold",
        type=float,
        default=-1.0,
        help="seconds to keep a sideband open after the script (<0: until the client closes)",
    )
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between sideband script events")
    parser.add_argument("--abrupt-close", action="store_true", help="drop sidebands without a close frame")
    parser.add_argument(
        "--call",
        action="append",
        default=[],
        metavar="CALL_ID",
        help="pre-register a call id (e.g. for /sip)",
    )
    parser.add_argument(
        "--webrtc", action="store_true", help="answer offers with a real aiortc peer (tone + oai-events)"
    )
    parser.add_argument(
        "--tool",
        default=DEMO_TOOL,
        help="the tool the model calls in calls made with POST /v1/_fake/calls (make call), before "
        "end_call; '' for none (default %(default)s)",
    )
    parser.add_argument(
        "--tool-args",
        default=DEMO_TOOL_ARGUMENTS,
        type=_json_object_text,
        metavar="JSON",
        help="that tool call's arguments, a JSON object (default %(default)s)",
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    fake = FakeOpenAI(args.api_key, port=args.port, log_level=args.log_level, webrtc=args.webrtc)
    fake.sideband_hold_seconds = args.hold
    fake.sideband_event_interval = args.interval
    fake.sideband_abrupt_close = args.abrupt_close
    fake.demo_tool, fake.demo_tool_arguments = args.tool or None, args.tool_args
    for call_id in args.call:
        fake.register_call(call_id)
    fake.start()
    print(f"Fake OpenAI listening: OPENAI_BASE_URL={fake.base_url} OPENAI_API_KEY={fake.api_key}", flush=True)
    try:
        while fake.is_running:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
