"""The GPT-Live side of the fake OpenAI (``/v1/live/sessions``), strict like the real API.

``FakeOpenAI`` owns one :class:`LiveState` (``fake.live``) and serves its routes (:func:`routes`) beside
the Realtime ones, on the same port, key, request log and fault injection (``fail_next`` etc.).
Facts: /work/shared/live-api.md; request and event shapes are checked against the ``openai`` SDK's
types (test-only dependency, imported lazily) with ``tests/sdk_strict.py``. Endpoints under ``/v1``
(standard key only, 401 otherwise):

- ``POST /live/sessions``: JSON ``{session, transport}`` only (multipart or raw SDP -> 400).
  ``transport.type:"webrtc"`` -> 201 ``{"session":{"id":"live_..."},"transport":{"type":"webrtc","sdp"}}``
  (a real aiortc answer with ``FakeOpenAI(webrtc=True)``); ``"sip"`` (outbound) -> 403
  ``outbound_sip_not_enabled`` unless ``fake.live.outbound_enabled``, then 201 ``{session:{id},
  transport:{type:"sip"}}``; the sideband then sees ``transport.ringing`` and ``transport.answered``.
- ``POST /live/sessions/{id}/accept|reject|refer|hangup`` for inbound SIP calls registered with
  ``fake.register_pending_sip_call(call_id=..., session_id=...)``: one pending call has a Realtime
  ``rtc_...`` id and a Live ``live_...`` id; the first successful accept/reject through either API
  decides, a later one answers 409 ``decision_already_made``. Unknown ids: 404 ``session_id_not_found``.
- ``GET /live/sessions/{id}/content``: 200 ``audio/wav`` (stereo, 24 kHz) when the session was
  started with ``store: true``; else 404.
- WebSocket ``/live/sessions/{id}/attach`` (the sideband): every event of the session's timeline with
  an ``event_id``; an attach replays the last ``replay_seconds`` (3 s) with the original ids. The
  timeline: ``session.started``, the script (``script``/``scripts``; it starts when the first
  sideband attaches), reflected audio (``session.input_audio.append`` all the call long, 50 chunks/s
  of 20 ms mono PCM16 24 kHz; ``session.output_audio.delta`` while the model speaks), cumulative
  ``session.usage.updated``, and answers to client commands (each validated against the SDK's
  ``ConnectClientEventParam``; anything else gets an ``error`` event): instructions -> ack then the
  model speaks ``greeting_text``; ``response.item.create`` + ``response.create`` -> a Responses answer
  and the model speaks ``tool_answer_text``; ``transport.dtmf.send`` -> ``transport.dtmf.sent``;
  ``session.close`` (or ``/hangup``) -> ``session.closed`` and the sockets close.

Script entries: a dict (a server event; ``event_id`` and missing timeline fields are filled in), a
float (a pause, in session seconds). Builders: :func:`live_caller_speech`,
:func:`live_assistant_speech`, :func:`live_tool_call_events`, :func:`live_dtmf_event`,
:func:`live_usage_event`, :func:`live_session_closed` (ends the session with that reason).
``speed`` runs the session clock (audio, usage, pauses) faster for tests; 1.0 is real time.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import functools
import io
import json
import math
import re
import struct
import time
import wave
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Required, TypedDict

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from tests.fake_openai import _PROTOCOL_SCOPE_KEY, RecordedRequest, _bearer, _error, _new_id, _sdp_answer
from tests.sdk_strict import Issue, strict_issues

if TYPE_CHECKING:
    from tests.fake_openai import FakeOpenAI

__all__ = [
    "LiveSession",
    "LiveSideband",
    "LiveState",
    "PendingSipCall",
    "default_live_script",
    "live_assistant_speech",
    "live_caller_speech",
    "live_dtmf_event",
    "live_session_closed",
    "live_tool_call_events",
    "live_transport_failed",
    "live_usage_event",
    "routes",
]

SAMPLE_RATE = 24_000
CHUNK_MS = 20
CHUNK_BYTES = SAMPLE_RATE * 2 * CHUNK_MS // 1000  # 960 bytes of mono PCM16LE = 1280 base64 chars
WORD_MS = 300  # how long the fake takes to say one word
DTMF_KEYS = frozenset("0123456789*#ABCD")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_SESSION_RESOURCE_KEYS = (
    "audio",
    "client",
    "delegation",
    "input",
    "instructions",
    "safety_identifier",
    "store",
)
_RESPONSES_MODEL = "gpt-5.5"


def _tone_chunk(hz: int, amplitude: float) -> str:
    """20 ms of a sine at speech-like level, base64 (``hz`` divides 50, so chunks join seamlessly)."""
    samples = CHUNK_BYTES // 2
    peak = int(32767 * amplitude)
    pcm = struct.pack(
        f"<{samples}h", *(int(peak * math.sin(2 * math.pi * hz * n / SAMPLE_RATE)) for n in range(samples))
    )
    return base64.b64encode(pcm).decode("ascii")


# Precomputed once: the reflected audio is 100 frames/s per call, so nothing is encoded per frame.
_SPEECH_B64 = _tone_chunk(250, 0.3)
_SILENCE_B64 = base64.b64encode(bytes(CHUNK_BYTES)).decode("ascii")
_INPUT_SPEECH_FRAME = json.dumps({"type": "session.input_audio.append", "audio": _SPEECH_B64})
_INPUT_SILENCE_FRAME = json.dumps({"type": "session.input_audio.append", "audio": _SILENCE_B64})
_OUTPUT_FRAME_HEAD = '{"type": "session.output_audio.delta", "delta": "' + _tone_chunk(200, 0.3) + '"'


class _SipTrunkAuth(TypedDict):
    type: Literal["digest"]
    username: str
    password: str


class _SipTrunk(TypedDict, total=False):
    provider_url: Required[str]
    auth: _SipTrunkAuth
    caller_number: str


class _SipTransport(TypedDict):
    """Outbound SIP transport (live-api.md §5; the SDK types only WebRTC)."""

    type: Literal["sip"]
    destination: str
    trunk: _SipTrunk


class _SipCreateParams(TypedDict):
    session: dict[str, Any]  # checked against the SDK's MediaSessionConfigParam separately
    transport: _SipTransport


@functools.cache
def _sdk() -> dict[str, Any]:
    """The SDK types the fake checks against (imported on first use: ``openai`` is a test dependency)."""
    from openai.types.live import ConnectClientEventParam
    from openai.types.live.live_create_params import LiveCreateParams
    from openai.types.live.media_session_config_param import MediaSessionConfigParam
    from openai.types.live.session_accept_params import SessionAcceptParams
    from openai.types.live.session_refer_params import SessionReferParams
    from openai.types.live.session_reject_params import SessionRejectParams

    return {
        "create": LiveCreateParams,
        "media_session": MediaSessionConfigParam,
        "accept": SessionAcceptParams,
        "reject": SessionRejectParams,
        "refer": SessionReferParams,
        "client_event": ConnectClientEventParam,
    }


# --------------------------------------------------------------------------- event builders


def live_caller_speech(text: str) -> list[dict[str, Any]]:
    """The caller says ``text``: one ``session.input_transcript.delta`` per word (timeline filled in,
    loud reflected input audio while the words last)."""
    return [{"type": "session.input_transcript.delta", "delta": word} for word in _words(text)]


def live_assistant_speech(text: str) -> list[dict[str, Any]]:
    """The model says ``text``: ``session.output_transcript.delta`` per word, with reflected output audio."""
    return [{"type": "session.output_transcript.delta", "delta": word} for word in _words(text)]


def live_dtmf_event(digit: str) -> dict[str, Any]:
    """The caller pressed a key (SIP, sideband only)."""
    return {"type": "transport.dtmf.received", "event": digit}


def live_usage_event(seconds: int) -> dict[str, Any]:
    """Cumulative billed seconds (do not sum them)."""
    return {
        "type": "session.usage.updated",
        "usage": {"seconds": seconds},
        "context_window": {"usage_ratio": 0.01},
    }


def live_session_closed(reason: str = "remote_hangup") -> dict[str, Any]:
    """Script entry: the session ends with ``reason`` (the fake adds the final session and usage)."""
    return {"type": "session.closed", "reason": reason}


def live_transport_failed(code: str = "busy", message: str = "The callee is busy.") -> dict[str, Any]:
    """An outbound SIP call failed after the create (the fake adds ``session_id``)."""
    return {"type": "transport.failed", "error": {"type": "call_error", "code": code, "message": message}}


def live_tool_call_events(
    call_id: str,
    name: str,
    arguments: str = "{}",
    *,
    delegation_id: str | None = None,
    response_id: str | None = None,
) -> list[dict[str, Any]]:
    """A Responses-delegation tool call: ``session.delegation.created``, then ``response.event`` wrappers
    of the backend's stream, ending in ``response.output_item.done`` (the ``function_call``) and a
    ``response.completed`` whose snapshot has ``output: []`` (it never lists the call)."""
    delegation = delegation_id or _new_id("item_")
    resp = response_id or _new_id("resp_")
    item_id = _new_id("fc_")
    item = {"id": item_id, "type": "function_call", "call_id": call_id, "name": name, "arguments": arguments}
    where = {"item_id": item_id, "output_index": 0}
    inner: list[dict[str, Any]] = [
        {"type": "response.created", "response": _response_snapshot(resp, "in_progress")},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {**item, "arguments": "", "status": "in_progress"},
        },
        {"type": "response.function_call_arguments.delta", **where, "delta": arguments},
        {"type": "response.function_call_arguments.done", **where, "arguments": arguments},
        {"type": "response.output_item.done", "output_index": 0, "item": {**item, "status": "completed"}},
        {"type": "response.completed", "response": _response_snapshot(resp, "completed")},
    ]
    created = {
        "type": "session.delegation.created",
        "delegation": {"id": delegation, "type": "delegation", "target": "responses", "response_id": resp},
    }
    return [created, *_wrap(delegation, inner)]


def live_answer_events(
    text: str, *, delegation_id: str, response_id: str | None = None
) -> list[dict[str, Any]]:
    """The backend's text answer (``response.event`` wrappers) after the tool results came in."""
    resp = response_id or _new_id("resp_")
    item_id = _new_id("msg_")
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    message = {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [part],
    }
    where = {"item_id": item_id, "output_index": 0, "content_index": 0, "logprobs": []}
    inner: list[dict[str, Any]] = [
        {"type": "response.created", "response": _response_snapshot(resp, "in_progress")},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {**message, "status": "in_progress", "content": []},
        },
        {"type": "response.output_text.delta", **where, "delta": text},
        {"type": "response.output_text.done", **where, "text": text},
        {"type": "response.output_item.done", "output_index": 0, "item": message},
        {"type": "response.completed", "response": _response_snapshot(resp, "completed")},
    ]
    return _wrap(delegation_id, inner)


def default_live_script() -> list[dict[str, Any] | float]:
    """A fresh copy of the default script: a second of silence, then the caller asks something."""
    return [1.0, *live_caller_speech("Hi, I have a question about my order.")]


def _words(text: str) -> list[str]:
    words = text.split()
    return [word + " " for word in words[:-1]] + words[-1:]


def _wrap(delegation_id: str, inner: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"type": "response.event", "delegation_id": delegation_id, "event": {**event, "sequence_number": n}}
        for n, event in enumerate(inner)
    ]


def _response_snapshot(response_id: str, status: str) -> dict[str, Any]:
    """A Responses lifecycle snapshot as Live relays it: no input, output/tools empty, instructions null."""
    snapshot: dict[str, Any] = {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "model": _RESPONSES_MODEL,
        "status": status,
        "output": [],
        "tools": [],
        "instructions": None,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "error": None,
        "incomplete_details": None,
        "metadata": {},
    }
    if status == "completed":
        snapshot["usage"] = {
            "input_tokens": 120,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": 18,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 138,
        }
    return snapshot


# --------------------------------------------------------------------------- state


@dataclass
class PendingSipCall:
    """One inbound SIP call, reachable as Realtime ``call_id`` and/or Live ``session_id``."""

    call_id: str | None
    session_id: str | None
    decision: tuple[str, str] | None = None  # (api "realtime"/"live", action "accept"/"reject")


@dataclass
class LiveSideband:
    """One accepted ``/attach`` WebSocket."""

    session_id: str
    headers: dict[str, str]  # lower-case names
    opened_at: float  # time.monotonic()
    client_events: list[tuple[float, dict[str, Any]]] = field(default_factory=list)  # (monotonic, event)
    server_events: list[dict[str, Any]] = field(default_factory=list)  # sent, reflected audio excluded
    audio_frames: int = 0  # reflected audio events sent
    audio_chars: int = 0  # their JSON text, in characters
    closed_at: float | None = None
    close_code: int | None = None

    def client_event_types(self) -> list[str]:
        return [str(event.get("type")) for _, event in self.client_events]

    def server_event_types(self) -> list[str]:
        return [str(event.get("type")) for event in self.server_events]


@dataclass
class LiveSession:
    """One Live session and its timeline (mutated on the fake's event loop; read from tests)."""

    id: str
    transport: Literal["webrtc", "sip"]
    config: dict[str, Any]  # the startup session config as the client sent it
    direction: Literal["browser", "inbound", "outbound"]
    status: Literal["active", "closed"] = "active"
    close_reason: str | None = None
    started_at: float = field(default_factory=time.monotonic)
    expires_at: int = field(default_factory=lambda: int(time.time()) + 3600)
    timeline: list[dict[str, Any]] = field(default_factory=list)  # every event with an event_id, in order
    caller_until_ms: int = 0  # the caller speaks until this session time (loud input audio)
    model_until_ms: int = 0  # the model speaks until then (output audio)
    pending_calls: dict[str, str] = field(default_factory=dict)  # call_id -> delegation_id (awaiting output)
    tool_outputs: list[dict[str, Any]] = field(default_factory=list)  # function_call_output items received
    speed: float = 1.0
    _log: deque[tuple[float, dict[str, Any]]] = field(default_factory=deque)
    _queues: list[tuple[LiveSideband, asyncio.Queue[str | None]]] = field(default_factory=list)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _first_attach: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def store(self) -> bool:
        return self.config.get("store") is True

    @property
    def delegation_type(self) -> str:
        delegation = self.config.get("delegation")
        return str(delegation.get("type")) if isinstance(delegation, dict) else "client"

    def now_ms(self) -> int:
        """Session time in ms (runs ``speed`` times faster than the wall clock)."""
        return int((time.monotonic() - self.started_at) * 1000 * self.speed)

    def resource(self) -> dict[str, Any]:
        """The resolved session, as ``session.started``/``session.closed`` carry it (SDK SessionResource)."""
        resolved = {
            key: copy.deepcopy(self.config[key]) for key in _SESSION_RESOURCE_KEYS if key in self.config
        }
        resolved.setdefault("audio", {}).setdefault("output", {}).setdefault("voice", "marin")
        if resolved.get("delegation") is None:
            resolved["delegation"] = {"type": "client"}
        resolved.setdefault("store", False)
        return {
            "id": self.id,
            "expires_at": self.expires_at,
            "model": self.config.get("model"),
            "status": "active",
            **resolved,
        }


class LiveState:
    """Everything Live of one FakeOpenAI (``fake.live``): recordings and knobs (see the module docstring)."""

    def __init__(self, fake: FakeOpenAI) -> None:
        self._fake = fake
        self.sessions: dict[str, LiveSession] = {}
        self.sidebands: list[LiveSideband] = []
        self.creates: list[dict[str, Any]] = []  # bodies of successful POST /live/sessions
        self.pending: list[PendingSipCall] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._set_defaults()

    def _set_defaults(self) -> None:
        self.outbound_enabled = False
        self.outbound_outcome: Literal["answered", "failed"] = "answered"
        self.outbound_ring_seconds = 0.2
        self.script: list[dict[str, Any] | float] = default_live_script()
        self.scripts: list[list[dict[str, Any] | float]] = []  # one each for the next sessions, then `script`
        self.script_waits_for_sideband = True  # a fake convenience: the real timeline does not wait
        self.speed = 1.0
        self.reflect_audio = True
        self.replay_seconds = 3.0
        self.replay_audio = False  # reflected audio has no event_id: the fake does not replay it
        self.usage_interval_seconds: float | None = 10.0
        self.max_session_seconds: float | None = None  # then session.closed reason "expired"
        self.greeting_text = "Hello! Thanks for calling. How can I help you today?"
        self.tool_answer_text = "All done. Is there anything else I can help with?"
        self.refer_ends_session = True  # a completed transfer ends the session (reason remote_hangup)

    # ----------------------------------------------------------------- test helpers

    @property
    def create_count(self) -> int:
        return len(self.creates)

    def sidebands_of(self, session_id: str) -> list[LiveSideband]:
        return [sideband for sideband in self.sidebands if sideband.session_id == session_id]

    def client_events(self, session_id: str) -> list[dict[str, Any]]:
        """Every client event the session's sidebands received, in arrival order."""
        received = [entry for sideband in self.sidebands_of(session_id) for entry in sideband.client_events]
        return [event for _, event in sorted(received, key=lambda entry: entry[0])]

    def register_pending_sip_call(
        self, *, call_id: str | None = None, session_id: str | None = None
    ) -> PendingSipCall:
        """An incoming SIP call both APIs can decide (ids made up when omitted; ``call_id=""``: Live only)."""
        pending = PendingSipCall(
            call_id=_new_id("rtc_") if call_id is None else call_id or None,
            session_id=session_id or _new_id("live_u0_", 32),
        )
        with self._fake._lock:
            self.pending.append(pending)
        if pending.call_id:
            self._fake.register_call(pending.call_id)
        return pending

    def realtime_decision(self, call_id: str, action: str) -> Response | None:
        """Called by the Realtime fake before it answers accept/reject: the 409 if Live already decided."""
        if action not in ("accept", "reject"):
            return None
        with self._fake._lock:
            pending = next((p for p in self.pending if p.call_id == call_id), None)
            if pending is None:
                return None  # a call registered only the old way: Realtime behaviour unchanged
            if pending.decision is not None:
                return _decision_already_made()
            pending.decision = ("realtime", action)
        return None

    def reset(self) -> None:
        """Close every session, clear recordings, restore the defaults (from the test thread)."""
        loop = self._loop
        sessions = list(self.sessions.values())
        if loop is not None and loop.is_running() and sessions:
            future = asyncio.run_coroutine_threadsafe(self._close_all(sessions), loop)
            with contextlib.suppress(Exception):
                future.result(5.0)
        with self._fake._lock:
            self.sessions.clear()
            self.sidebands.clear()
            self.creates.clear()
            self.pending.clear()
            self._set_defaults()

    async def _close_all(self, sessions: list[LiveSession]) -> None:
        for session in sessions:
            for task in list(session._tasks):
                task.cancel()
            self._end_sockets(session)

    # ----------------------------------------------------------------- the timeline

    def _start(self, session: LiveSession) -> None:
        """Start a session's timeline on the fake's loop (called from an HTTP handler)."""
        self._loop = asyncio.get_running_loop()
        session.speed = self.speed
        session._first_attach = asyncio.Event()
        with self._fake._lock:
            self.sessions[session.id] = session
            script = copy.deepcopy(self.scripts.pop(0) if self.scripts else self.script)
        self._emit(session, {"type": "session.started", "session": session.resource()})
        self._spawn(session, self._run_script(session, script))
        self._spawn(session, self._pump(session))
        if session.direction == "outbound":
            self._spawn(session, self._ring(session))

    def _spawn(self, session: LiveSession, coroutine: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coroutine)
        session._tasks.add(task)
        task.add_done_callback(session._tasks.discard)

    def _emit(
        self, session: LiveSession, event: dict[str, Any], *, client_event_id: str | None = None
    ) -> None:
        """Put one event on the timeline: fill ids and times, log it for replay, queue it to each sideband."""
        if session.status != "active":
            return
        event = dict(event)
        now = session.now_ms()
        event.setdefault("event_id", _new_id("event_"))
        if client_event_id is not None:
            event["client_event_id"] = client_event_id
        kind = event["type"]
        if kind in ("session.input_transcript.delta", "session.output_transcript.delta"):
            speaking = "caller_until_ms" if kind.startswith("session.input") else "model_until_ms"
            start = event.setdefault("start_ms", max(now, getattr(session, speaking)))
            end = event.setdefault("end_ms", start + WORD_MS * max(1, len(str(event["delta"]).split())))
            setattr(session, speaking, max(getattr(session, speaking), end))
        elif kind.endswith(".appended"):
            event.setdefault("start_ms", now)
            event.setdefault("end_ms", now)
        elif kind == "session.delegation.created":
            event.setdefault("offset_ms", now)
        elif (
            kind.startswith("transport.")
            and kind != "transport.dtmf.received"
            and kind != "transport.dtmf.sent"
        ):
            event.setdefault("session_id", session.id)
        wall = time.monotonic()
        session.timeline.append(event)
        session._log.append((wall, event))
        while session._log and session._log[0][0] < wall - max(self.replay_seconds, 0.0):
            session._log.popleft()
        text = json.dumps(event)
        for sideband, queue in session._queues:
            sideband.server_events.append(event)
            queue.put_nowait(text)
        webrtc = self._fake.webrtc
        if session.transport == "webrtc" and webrtc is not None and _data_channel_allows(session, event):
            webrtc.relay(session.id, event)

    def _emit_audio(self, session: LiveSession, text: str) -> None:
        for sideband, queue in session._queues:
            sideband.audio_frames += 1
            sideband.audio_chars += len(text)
            queue.put_nowait(text)

    async def _wait_session_ms(self, session: LiveSession, until_ms: int) -> None:
        delay = (until_ms - session.now_ms()) / 1000 / session.speed
        if delay > 0:
            await asyncio.sleep(delay)

    async def _run_script(self, session: LiveSession, script: list[dict[str, Any] | float]) -> None:
        if self.script_waits_for_sideband:
            await session._first_attach.wait()
        for entry in script:
            if isinstance(entry, (int, float)):
                await asyncio.sleep(float(entry) / session.speed)
                continue
            if entry.get("type") == "session.closed":
                self._close(session, str(entry.get("reason", "remote_hangup")))
                return
            self._emit(session, entry)
            if entry.get("type") == "session.input_transcript.delta":
                await self._wait_session_ms(session, session.caller_until_ms)
            elif entry.get("type") == "session.output_transcript.delta":
                await self._wait_session_ms(session, session.model_until_ms)
            elif entry.get("type") == "response.event":
                self._note_tool_call(session, entry)

    async def _speak(self, session: LiveSession, text: str, *, client_event_id: str | None = None) -> None:
        """The model says ``text`` (transcript deltas paced like speech; output audio meanwhile)."""
        for event in live_assistant_speech(text):
            self._emit(session, event, client_event_id=client_event_id)
            await self._wait_session_ms(session, session.model_until_ms)

    async def _ring(self, session: LiveSession) -> None:
        self._emit(session, {"type": "transport.ringing"})
        await asyncio.sleep(self.outbound_ring_seconds / session.speed)
        if self.outbound_outcome == "failed":
            self._emit(session, live_transport_failed())
            self._close(session, "connection_lost")
        else:
            self._emit(session, {"type": "transport.answered"})

    async def _pump(self, session: LiveSession) -> None:
        """Reflected audio (input all call long, output while the model speaks), usage, expiry."""
        sent = 0  # 20 ms chunks so far
        next_usage = self.usage_interval_seconds
        while session.status == "active":
            now = session.now_ms()
            if self.max_session_seconds is not None and now >= self.max_session_seconds * 1000:
                self._close(session, "expired")
                return
            if self.reflect_audio and session._queues:
                while (sent + 1) * CHUNK_MS <= now:
                    start = sent * CHUNK_MS
                    loud = start < session.caller_until_ms
                    self._emit_audio(session, _INPUT_SPEECH_FRAME if loud else _INPUT_SILENCE_FRAME)
                    if start < session.model_until_ms:
                        end = start + CHUNK_MS
                        self._emit_audio(
                            session, f'{_OUTPUT_FRAME_HEAD}, "start_ms": {start}, "end_ms": {end}}}'
                        )
                    sent += 1
            else:
                sent = now // CHUNK_MS
            if next_usage is not None and now >= next_usage * 1000:
                self._emit(session, live_usage_event(int(now // 1000)))
                next_usage += self.usage_interval_seconds or 0.0
            await asyncio.sleep(CHUNK_MS / 1000)  # one wake-up per real 20 ms, however fast the clock

    def _close(self, session: LiveSession, reason: str, *, client_event_id: str | None = None) -> None:
        """``session.closed`` (final session and usage) then every sideband closes after flushing."""
        if session.status != "active":
            return
        usage = {"seconds": session.now_ms() // 1000}
        event = {"type": "session.closed", "reason": reason, "session": session.resource(), "usage": usage}
        self._emit(session, event, client_event_id=client_event_id)
        session.status = "closed"
        session.close_reason = reason
        if session.transport == "webrtc" and self._fake.webrtc is not None:
            self._fake.webrtc.close_soon(session.id)  # the browser's peer connection ends too
        current = asyncio.current_task()
        for task in list(session._tasks):
            if task is not current:
                task.cancel()
        self._end_sockets(session)

    def browser_event(self, session_id: str, event: dict[str, Any]) -> None:
        """An event from the browser's data channel (on the fake's loop): one its permissions forbid gets
        an ``info`` (``data_channel_permissions``) on the channel; an allowed ``session.close`` ends the
        session; other allowed commands are only recorded (``fake.webrtc_calls[id].client_events``)."""
        session = self.sessions.get(session_id)
        if session is None or session.status != "active":
            return
        client = session.config.get("client") or {}
        allowed = (client.get("data_channel") or {}).get("allowed_client_events", "all")
        kind = event.get("type")
        client_event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
        webrtc = self._fake.webrtc
        if allowed != "all" and kind not in allowed:
            message = f"The client event '{kind}' is not allowed on this data channel."
            if webrtc is not None:
                webrtc.relay(
                    session_id,
                    {
                        "type": "info",
                        "event_id": _new_id("event_"),
                        "code": "data_channel_permissions",
                        "message": message,
                    },
                )
        elif kind == "session.close":
            self._close(session, "close_requested", client_event_id=client_event_id)

    def peer_left(self, session_id: str) -> None:
        """The browser's peer connection of a WebRTC session ended (on the fake's loop)."""
        session = self.sessions.get(session_id)
        if session is not None and session.transport == "webrtc":
            self._close(session, "remote_hangup")

    @staticmethod
    def _end_sockets(session: LiveSession) -> None:
        session.status = "closed"
        for _, queue in session._queues:
            queue.put_nowait(None)  # the writer flushes, then closes with 1000

    def _note_tool_call(self, session: LiveSession, wrapper: dict[str, Any]) -> None:
        inner = wrapper.get("event") or {}
        item = inner.get("item") or {}
        if inner.get("type") == "response.output_item.done" and item.get("type") == "function_call":
            session.pending_calls[str(item.get("call_id"))] = str(wrapper.get("delegation_id"))

    # ----------------------------------------------------------------- client commands

    async def _on_client_event(self, session: LiveSession, event: dict[str, Any]) -> None:
        client_event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
        issues = strict_issues(_sdk()["client_event"], event)
        if issues:
            self._emit_error(session, issues[0], client_event_id)
            return
        kind = event["type"]
        if kind == "session.close":
            self._close(session, "close_requested", client_event_id=client_event_id)
        elif kind == "session.instructions.append":
            await self._on_instructions(session, event, client_event_id)
        elif kind in ("session.thinking.append", "session.commentary.append"):
            self._emit(
                session, {"type": kind.replace(".append", ".appended")}, client_event_id=client_event_id
            )
            if kind == "session.commentary.append":  # commentary is spoken; thinking stays silent
                await self._speak(session, str(event["content"]))
        elif kind == "transport.dtmf.send":
            if session.transport != "sip":
                self._refuse(session, "DTMF is only supported for SIP sessions.", "type", client_event_id)
            elif event["event"] not in DTMF_KEYS:
                self._refuse(session, f"Invalid DTMF key: {event['event']!r}.", "event", client_event_id)
            else:
                self._emit(
                    session,
                    {"type": "transport.dtmf.sent", "event": event["event"]},
                    client_event_id=client_event_id,
                )
        elif kind in ("session.input_audio.mute", "session.input_audio.unmute"):
            self._emit(session, {"type": kind.replace("mute", "muted")}, client_event_id=client_event_id)
        elif kind == "session.output_audio.fixture.play":
            await self._play_fixture(session, str(event["audio"]), client_event_id)
        elif kind == "session.update":
            self._on_update(session, event, client_event_id)
        elif kind in ("response.item.create", "response.create"):
            await self._on_responses_command(session, event, client_event_id)
        else:  # decision.* commands: this fake has no Decisions delegation
            self._refuse(session, f"'{kind}' requires Decisions delegation.", "type", client_event_id)

    async def _on_instructions(
        self, session: LiveSession, event: dict[str, Any], client_event_id: str | None
    ) -> None:
        delegation_id = event.get("delegation_id")
        if delegation_id is not None:
            if session.delegation_type == "responses":
                message = "delegation_id must be null with Responses delegation."
            else:
                message = f"Unknown client delegation: {delegation_id!r}."
            self._refuse(session, message, "delegation_id", client_event_id)
            return
        self._emit(session, {"type": "session.instructions.appended"}, client_event_id=client_event_id)
        await self._speak(session, self.greeting_text)

    def _on_update(self, session: LiveSession, event: dict[str, Any], client_event_id: str | None) -> None:
        update = event["session"]
        delegation = update.get("delegation")
        if "delegation" in update and (delegation or {}).get("type", "client") != session.delegation_type:
            error = Issue(
                "invalid_value",
                "session.delegation.type",
                "The delegation type cannot change after session startup.",
            )
            self._emit_error(session, error, client_event_id, code="immutable_field_update")
            return
        if isinstance(delegation, dict) and isinstance(session.config.get("delegation"), dict):
            current = session.config["delegation"]
            for key, value in delegation.items():
                if key == "responses" and isinstance(value, dict):
                    current.setdefault("responses", {}).update(value)  # sparse: omitted keys are kept
                else:
                    current[key] = value
        if "triggers" in update:
            session.config["triggers"] = update["triggers"]
        self._emit(
            session,
            {"type": "session.updated", "session": session.resource()},
            client_event_id=client_event_id,
        )

    async def _on_responses_command(
        self, session: LiveSession, event: dict[str, Any], client_event_id: str | None
    ) -> None:
        if session.delegation_type != "responses":
            self._refuse(
                session, f"'{event['type']}' requires Responses delegation.", "type", client_event_id
            )
            return
        if event["type"] == "response.item.create":
            item = event["item"]
            if (
                item.get("type") == "function_call_output"
                and item.get("call_id") not in session.pending_calls
            ):
                self._refuse(
                    session,
                    f"No tool call found for call_id {item.get('call_id')!r}.",
                    "item.call_id",
                    client_event_id,
                )
                return
            session.tool_outputs.append(item)
            return  # no success ack: the next inner events show it worked
        answered = [
            item["call_id"] for item in session.tool_outputs if item.get("call_id") in session.pending_calls
        ]
        delegation_id = session.pending_calls[answered[-1]] if answered else _new_id("item_")
        for call_id in answered:
            session.pending_calls.pop(call_id, None)
        if not answered:
            self._emit(
                session,
                {
                    "type": "session.delegation.created",
                    "delegation": {
                        "id": delegation_id,
                        "type": "delegation",
                        "target": "responses",
                        "response_id": _new_id("resp_"),
                    },
                },
            )
        for wrapper in live_answer_events(self.tool_answer_text, delegation_id=delegation_id):
            self._emit(session, wrapper, client_event_id=client_event_id)
        await self._speak(session, self.tool_answer_text)

    async def _play_fixture(self, session: LiveSession, audio: str, client_event_id: str | None) -> None:
        try:
            seconds = len(base64.b64decode(audio, validate=True)) / (SAMPLE_RATE * 2)
        except ValueError:
            self._refuse(session, "Invalid 'audio': expected base64 PCM16.", "audio", client_event_id)
            return
        if seconds > 30:
            self._refuse(session, "Audio fixtures are limited to 30 seconds.", "audio", client_event_id)
            return
        self._emit(session, {"type": "session.output_audio.fixture.playing"}, client_event_id=client_event_id)
        session.model_until_ms = max(session.model_until_ms, session.now_ms()) + int(seconds * 1000)
        await self._wait_session_ms(session, session.model_until_ms)
        self._emit(session, {"type": "session.output_audio.fixture.played"}, client_event_id=client_event_id)

    def _refuse(self, session: LiveSession, message: str, param: str, client_event_id: str | None) -> None:
        self._emit_error(session, Issue("invalid_value", param, message), client_event_id)

    def _emit_error(
        self, session: LiveSession, issue: Issue, client_event_id: str | None, *, code: str | None = None
    ) -> None:
        error: dict[str, Any] = {
            "type": "invalid_request_error",
            "code": code or issue.code,
            "message": issue.message,
        }
        if issue.path:
            error["param"] = issue.path
        if client_event_id is not None:
            error["client_event_id"] = client_event_id
        self._emit(session, {"type": "error", "error": error})

    # ----------------------------------------------------------------- HTTP

    async def create(self, request: Request, recorded: RecordedRequest) -> Response:
        content_type = recorded.headers.get("content-type", "").lower()
        if not content_type.startswith("application/json") or not isinstance(recorded.json, dict):
            return _error(400, "The Live endpoint requires a JSON body, not multipart or raw SDP.")
        body = recorded.json
        transport = body.get("transport")
        transport_type = transport.get("type") if isinstance(transport, dict) else None
        if transport_type == "sip":
            issues = strict_issues(_SipCreateParams, body)
            issues += strict_issues(_sdk()["media_session"], body.get("session"), path="session")
        else:
            issues = strict_issues(_sdk()["create"], body)
        if issues:
            return _invalid(issues[0])
        if transport_type == "sip":
            return self._create_outbound(body)
        offer = str(transport["sdp"]) if isinstance(transport, dict) else ""
        if not offer.lstrip().startswith("v=0"):
            return _error(
                400,
                "Invalid SDP offer: it must start with 'v=0'.",
                param="transport.sdp",
                code="invalid_offer",
            )
        session = LiveSession(_new_id("live_", 32), "webrtc", dict(body["session"]), "browser")
        answer = _sdp_answer(offer)
        if self._fake.webrtc is not None:
            # The data channel speaks Live: no Realtime replies; the session's timeline (session.started
            # first), as its data-channel permissions allow, comes by `_emit`'s relay.
            try:
                answer = await self._fake.webrtc.answer(session.id, offer, greeting=[])
            except Exception as exc:  # aiortc refuses offers it cannot answer
                return _error(400, f"Invalid SDP offer: {exc}", param="transport.sdp", code="invalid_offer")
        self._start(session)
        self.creates.append(body)
        sdp = {"type": "webrtc", "sdp": answer}
        return JSONResponse({"session": {"id": session.id}, "transport": sdp}, status_code=201)

    def _create_outbound(self, body: dict[str, Any]) -> Response:
        if not self.outbound_enabled:
            return _error(
                403, "Outbound SIP is not enabled for this organization.", code="outbound_sip_not_enabled"
            )
        transport = body["transport"]
        for path, number in (
            ("transport.destination", transport["destination"]),
            ("transport.trunk.caller_number", transport["trunk"].get("caller_number", "+10000000")),
        ):
            if not _E164.match(number):
                return _error(
                    400, f"Invalid '{path}': expected an E.164 number.", param=path, code="invalid_value"
                )
        if not _provider_url_ok(transport["trunk"]["provider_url"]):
            path = "transport.trunk.provider_url"
            return _error(
                400, f"Invalid '{path}': expected sips:host[:port].", param=path, code="invalid_value"
            )
        session = LiveSession(_new_id("live_", 32), "sip", dict(body["session"]), "outbound")
        self._start(session)
        self.creates.append(body)
        return JSONResponse({"session": {"id": session.id}, "transport": {"type": "sip"}}, status_code=201)

    async def action(self, request: Request, recorded: RecordedRequest) -> Response:
        session_id = str(request.path_params["session_id"])
        action = str(request.path_params["action"])
        if action == "content":
            if recorded.method != "GET":
                return _error(405, f"Method {recorded.method} not allowed")
            return self._content(session_id)
        if action not in ("accept", "reject", "refer", "hangup"):
            return _error(404, f"Invalid URL ({recorded.method} {recorded.path})")
        if recorded.method != "POST":
            return _error(405, f"Method {recorded.method} not allowed")
        if action in ("accept", "reject"):
            return self._decide(session_id, action, recorded)
        session = self.sessions.get(session_id)
        if session is None or session.status != "active":
            return _session_not_found(session_id)
        if action == "hangup":
            if recorded.body.strip():
                return _error(400, "This endpoint takes no request body.")
            if session.transport != "sip":
                return _error(
                    400, "Hangup ends SIP calls; end a WebRTC session with session.close.", param="session_id"
                )
            self._close(session, "close_requested")
            return Response(b"", status_code=200)
        issues = strict_issues(_sdk()["refer"], recorded.json)
        if issues:
            return _invalid(issues[0])
        body: dict[str, Any] = recorded.json or {}
        target = str(body["target_uri"]).strip()
        if not target.startswith(("tel:", "sip:", "sips:")) or len(target) < 5:
            return _error(
                400,
                "Invalid 'target_uri': expected a tel: or sip: URI.",
                param="target_uri",
                code="invalid_value",
            )
        if session.transport != "sip":
            return _error(400, "Refer transfers SIP calls only.", param="session_id")
        if self.refer_ends_session:
            self._close(session, "remote_hangup")
        return Response(b"", status_code=200)

    def _decide(self, session_id: str, action: str, recorded: RecordedRequest) -> Response:
        with self._fake._lock:
            pending = next((p for p in self.pending if p.session_id == session_id), None)
        if pending is None:
            return _session_not_found(session_id)
        issues = strict_issues(_sdk()[action], recorded.json)
        if issues:
            return _invalid(issues[0])
        body: dict[str, Any] = recorded.json or {}
        if action == "reject" and not 300 <= body["status_code"] <= 699:
            return _error(
                400, "Invalid 'status_code': expected 300 to 699.", param="status_code", code="invalid_value"
            )
        with self._fake._lock:
            if pending.decision is not None:
                return _decision_already_made()
            pending.decision = ("live", action)
        if action == "accept":
            self._start(LiveSession(session_id, "sip", dict(body["session"]), "inbound"))
        return Response(b"", status_code=200)

    def _content(self, session_id: str) -> Response:
        session = self.sessions.get(session_id)
        if session is None:
            return _session_not_found(session_id)
        if not session.store:
            return _error(
                404,
                f"Session '{session_id}' has no stored recording (start it with store: true).",
                code="recording_not_found",
            )
        return Response(_stereo_wav(), status_code=200, media_type="audio/wav")

    # ----------------------------------------------------------------- sideband

    async def attach(self, websocket: WebSocket) -> None:
        fake = self._fake
        headers = {k.lower(): v for k, v in websocket.headers.items()}
        path = websocket.url.path
        fake._record(
            RecordedRequest(
                "GET", path, dict(websocket.query_params), headers, b"", None, None, time.monotonic()
            )
        )
        delay, failure = fake._take_faults(path)
        if delay:
            await fake._sleep(delay)
        session = self.sessions.get(str(websocket.path_params["session_id"]))
        denial: Response | None = None
        if failure is not None:
            denial = fake._fault_response(failure)
        elif not fake._key_ok(_bearer(headers), allow_ephemeral=False):
            denial = _error(401, "Incorrect API key provided", code="invalid_api_key")
        elif session is None or session.status != "active":
            denial = _session_not_found(str(websocket.path_params["session_id"]))
        if denial is not None or session is None:
            await websocket.send_denial_response(denial or Response(status_code=500))
            protocol = websocket.scope.get(_PROTOCOL_SCOPE_KEY)
            if protocol is not None and hasattr(protocol, "handshake_complete"):
                protocol.handshake_complete = True  # see FakeOpenAI._sideband
            return
        await websocket.accept()
        sideband = LiveSideband(session.id, headers, time.monotonic())
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.sidebands.append(sideband)
        replay_from = time.monotonic() - self.replay_seconds
        for at, event in session._log:  # replay, original event_ids; registered in the same step: no gap
            if at < replay_from:
                continue
            sideband.server_events.append(event)
            queue.put_nowait(json.dumps(event))
        session._queues.append((sideband, queue))
        session._first_attach.set()
        writer = asyncio.create_task(self._write(websocket, queue))
        reader = asyncio.create_task(self._read(websocket, session, sideband))
        try:
            await asyncio.wait({writer, reader}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            session._queues[:] = [entry for entry in session._queues if entry[0] is not sideband]
            for task in (writer, reader):
                task.cancel()
            if sideband.closed_at is None:
                sideband.closed_at = time.monotonic()

    @staticmethod
    async def _write(websocket: WebSocket, queue: asyncio.Queue[str | None]) -> None:
        with contextlib.suppress(WebSocketDisconnect, OSError, RuntimeError):
            while (text := await queue.get()) is not None:
                await websocket.send_text(text)
            await websocket.close(1000)

    async def _read(self, websocket: WebSocket, session: LiveSession, sideband: LiveSideband) -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                sideband.close_code = message.get("code")
                sideband.closed_at = time.monotonic()
                return
            text = message.get("text") or (message.get("bytes") or b"").decode("utf-8", errors="replace")
            try:
                event = json.loads(text)
            except ValueError:
                event = None
            received_at = time.monotonic()
            if not isinstance(event, dict):
                sideband.client_events.append((received_at, {"type": None, "raw": text}))
                self._emit_error(
                    session, Issue("invalid_value", "", "Invalid JSON event."), None, code="invalid_json"
                )
                continue
            sideband.client_events.append((received_at, event))
            if session.status == "active":
                self._spawn(session, self._on_client_event(session, event))


# --------------------------------------------------------------------------- helpers


def routes(fake: FakeOpenAI) -> list[BaseRoute]:
    """The Live routes of ``fake`` (inserted before its catch-all 404)."""
    live = fake.live
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    return [
        Route("/v1/live/sessions", fake._http(live.create), methods=methods),
        WebSocketRoute("/v1/live/sessions/{session_id}/attach", live.attach),
        Route("/v1/live/sessions/{session_id}/{action}", fake._http(live.action), methods=methods),
    ]


def _data_channel_allows(session: LiveSession, event: dict[str, Any]) -> bool:
    """Whether the session's `client.data_channel.allowed_server_events` lets the browser see ``event``
    (omitted or ``"all"``: everything; a selector with ``response_event`` matches the inner type)."""
    client = session.config.get("client") or {}
    allowed = (client.get("data_channel") or {}).get("allowed_server_events", "all")
    if allowed == "all":
        return True
    inner = (event.get("event") or {}).get("type") if event["type"] == "response.event" else None
    return any(
        selector["type"] == event["type"] and selector.get("response_event") in (None, inner)
        for selector in allowed
    )


def _provider_url_ok(url: str) -> bool:
    match = re.fullmatch(r"sips:(\[[0-9A-Fa-f:]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?(;transport=tcp)?", url)
    if match is None:
        return False
    host = match.group(1).strip("[]").lower()
    private = re.match(
        r"^(127\.|10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|169\.254\.|0\.|22[4-9]\.|2[3-5]\d\.)", host
    )
    return host not in ("localhost", "::1") and not host.endswith(".local") and private is None


def _invalid(issue: Issue) -> JSONResponse:
    return _error(400, issue.message, param=issue.path or None, code=issue.code)


def _session_not_found(session_id: str) -> JSONResponse:
    return _error(
        404, f"Session with id '{session_id}' not found.", code="session_id_not_found", param="session_id"
    )


def _decision_already_made() -> JSONResponse:
    message = "This call was already accepted or rejected; a later competing decision is refused."
    return _error(409, message, code="decision_already_made")


@functools.cache
def _stereo_wav(seconds: float = 1.0) -> bytes:
    """A small valid recording: stereo PCM16 24 kHz, caller (left) and model (right) tones."""
    frames = int(SAMPLE_RATE * seconds)
    pcm = bytearray()
    for n in range(frames):
        left = int(8000 * math.sin(2 * math.pi * 250 * n / SAMPLE_RATE))
        right = int(8000 * math.sin(2 * math.pi * 200 * n / SAMPLE_RATE))
        pcm += struct.pack("<hh", left, right)
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(bytes(pcm))
    return out.getvalue()
