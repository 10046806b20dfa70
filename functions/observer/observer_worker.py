"""The observer worker: holds the sideband WebSocket of one call for as long as the call lives.

One implementation for both voice APIs: the call id says which (`rtc_...` Realtime, `live_...`
GPT-Live), and the API's adapter (shared/voice_api) turns its server events into typed ones and
builds what is sent back. The observer makes the model speak first (Realtime `response.create`,
Live `session.instructions.append`, shortly after the socket opens), writes one structured log line
per server event except the noisy `*.delta` streams and the reflected audio (never JSON-parsed),
logs every finished Realtime transcript whole, and ends when the call ends (Live: `session.closed`,
whose reason becomes the outcome) or when the call id is unknown.

Exactly one observer per call: it takes the call's lease (shared/store) before connecting, so a
duplicate event or request never opens a second sideband nor greets twice. Calls longer than one
invocation: shortly before the Lambda deadline it hands the lease to a successor invocation (async
invoke with the call's start time and generation + 1) and reads on until that one has taken over.
At the call limit (`MAX_CALL_SECONDS`) it asks the model to wrap up, then hangs up.
A GPT-Live attach replays the last 3 s of events with their original ids: each event id is acted on
once (`SeenEvents`), a lost Live socket is re-attached, and an observer that is not the call's first
acts on nothing until its replay has passed (a marker command's answer; observer_session.py).
Server-side tools (the model's function calls, `end_call`, `transfer_call`, keypad presses) are run
by `observer_tools.ToolCalls`; the call's record is kept by `observer_records.Recorder`; hang-up,
transfer and hand-off belong to `observer_session.CallSession`. The end reason comes from the outcome
(a handed-off generation writes none).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import websockets
from observer_session import CallSession, Lease, handoff_token
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus

from observer_records import RECORD_EVENTS, ROLES, Recorder
from observer_tools import TOOL_EVENTS, CallControl, ToolCalls, ToolKnobs
from shared import deps, limits, metrics, recordings
from shared.agents import Agent
from shared.errors import ServiceError
from shared.launcher import ObserveRequest
from shared.log import logger
from shared.settings import Settings
from shared.store import CallStore
from shared.tools import Channel, Tool, call_tools
from shared.upstream import call_api, is_call_id
from shared.voice_api import (
    ADAPTERS,
    CallProgress,
    Closed,
    Keypad,
    ObserverEvent,
    TokenUsage,
    ToolCall,
    Transcript,
    adapter_for_call,
)
from shared.voice_api.base import json_event
from shared.voice_api.realtime import TRANSCRIPTS

__all__ = [
    "CallSession",
    "ObserveResult",
    "Timing",
    "handoff_token",
    "new_call_session",
    "observe",
    "run_worker",
]

Outcome = Literal[
    "closed",
    "not_found",
    "refused",
    "deadline",
    "max_duration",
    "handed_off",
    "model_ended",  # the model called end_call
    "transferred",  # transfer_call: the REFER took the call away
    "transfer_failed",  # transfer_call: refused, or the call stayed; the caller was told, then hung up
    "session_error",  # GPT-Live ended the session itself: `content` (safety) or `connection_lost`
    "call_failed",  # outbound: `transport.failed` (busy, declined, unreachable, ...)
    "no_answer",  # outbound: still ringing at OpenAI's 3 min ringing limit: the observer hung up
]
ENDED_OUTCOMES = (
    "closed",
    "max_duration",
    "not_found",
    "model_ended",
    "transferred",
    "transfer_failed",
    "session_error",
    "call_failed",
    "no_answer",
)
# GPT-Live `session.closed.reason` -> the outcome, unless the observer already knows better (its own
# hang-up at the limit, end_call, a transfer: `close_requested` is whoever asked).
CLOSED_OUTCOMES: dict[str, Outcome] = {
    "remote_hangup": "closed",
    "close_requested": "closed",
    "expired": "max_duration",
    "content": "session_error",
    "connection_lost": "session_error",
}
HANGUP_GRACE_SECONDS = 5.0  # after /hangup, read the last events until the socket closes
REATTACH_ATTEMPTS = 3  # GPT-Live: a socket lost without `session.closed` is attached again
REATTACH_PAUSE_SECONDS = 0.3
REPLAY_MARK_WAIT_SECONDS = 2.0  # the replay marker's answer, at most: then act on events anyway
# Sent once, `wrap_up_seconds` before the call limit (the caller hears the model say goodbye).
WRAP_UP_TEXT = (
    "The call is about to end because it reached its time limit. In one or two short "
    "sentences, tell the caller the time is up, thank them, and say goodbye."
)
WRAP_UP = ADAPTERS["realtime"].instruct(WRAP_UP_TEXT)[0]
# What a replay may not make an observer that is not the call's first act on again.
REPLAYED_ACTIONS = (ToolCall, Keypad, Transcript, TokenUsage)
Connect = Callable[..., Any]
DAY_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")  # ObserveRequest.minutes_day
# An outbound call still ringing this long is hung up (OpenAI's own ringing limit is 3 min).
RING_LIMIT_SECONDS = 180.0
METADATA_ENTRIES, METADATA_CHARS = 16, 256  # ObserveRequest.metadata: a few short strings


@dataclass
class ObserveResult:
    outcome: Outcome
    events: int = 0
    closed_reason: str | None = None  # GPT-Live `session.closed`


@dataclass(frozen=True)
class Timing:
    """When `observe` greets, wraps up, hangs up and hands off.

    `call_deadline` (unix s): wrap up `wrap_up_lead` s before, then hang up. `time_budget`: seconds
    this invocation may read, then hand off. `wrap_up_after` (unix s): a successor sends the wrap-up
    only if it falls due after its predecessor handed off; earlier ones were the predecessor's.
    `first`: the call's first observer (greets; a replay holds nothing anyone acted on)."""

    time_budget: float
    greeting_delay: float = 0.25
    greet: bool = True
    greeting: str = ""
    first: bool = True
    call_deadline: float | None = None
    wrap_up_lead: float = 20.0
    wrap_up_after: float | None = None
    ring_limit: float | None = None  # outbound: hang up a call not answered within this many s


def is_logged(event_type: str) -> bool:
    """Audio and transcript deltas (GA and beta: every `*.delta`) arrive many times a second: skip them."""
    return not event_type.endswith(".delta")


def log_event(call_id: str, event: dict[str, Any]) -> None:
    event_type = str(event.get("type", ""))
    fields: dict[str, Any] = {"call_id": call_id, "event_type": event_type, "event_id": event.get("event_id")}
    if event_type in TRANSCRIPTS:  # the Realtime adapter's table of finished transcripts
        speaker, key = TRANSCRIPTS[event_type]
        logger.info("transcript", extra={**fields, "speaker": ROLES[speaker], "text": event.get(key, "")})
        return
    if event_type == "response.done":
        response = event.get("response") or {}
        fields.update(status=response.get("status"), usage=response.get("usage"))
    if event_type == "error":
        logger.warning("sideband error event", extra={**fields, "error": event.get("error")})
        return
    if event_type.startswith(("mcp_list_tools.", "response.mcp_call")):
        logger.info("mcp event", extra={**fields, "item_id": event.get("item_id")})
        return
    item = event.get("item") if event_type == "response.output_item.done" else None
    if isinstance(item, dict) and item.get("type") in ("mcp_call", "mcp_list_tools"):
        mcp = {"server_label": item.get("server_label"), "tool": item.get("name"), "error": item.get("error")}
        logger.info("mcp event", extra={**fields, "item_type": item.get("type"), **mcp})
        return
    if event_type == "session.closed":
        fields.update(reason=event.get("reason"), usage=event.get("usage"))
    logger.info("sideband event", extra=fields)


async def observe(
    call: CallSession, timing: Timing, *, connect: Connect = websockets.connect
) -> ObserveResult:
    """Watch one call until it ends, reaches `timing.call_deadline` (wrap up, then hang up), or
    `timing.time_budget` seconds pass (then hand off to a successor, reading on until it has taken over)."""
    call_id = call.call_id
    try:
        websocket = await call.connect(connect)
    except InvalidStatus as exc:
        status = exc.response.status_code
        # 404: the call id is unknown or the call already ended. Terminal: never retried.
        outcome: Outcome = "not_found" if status == 404 else "refused"
        logger.warning("sideband refused", extra={"call_id": call_id, "status": status})
        return ObserveResult(outcome)

    result = ObserveResult("closed")
    logger.info(
        "sideband open",
        extra={
            "call_id": call_id,
            "source": call.request.source,
            "greet": timing.greet,
            "api": call.adapter.name,
        },
    )
    if call.recorder is not None:
        call.recorder.start(opened=call.live)  # a Live attach proves the session: no "started" may come
    tasks = [asyncio.create_task(_read_call(call, websocket, result, connect))]
    if call.live and not timing.first:
        await call.mark_replay()
        tasks.append(asyncio.create_task(_end_replay_wait(call)))
    else:
        call.attached()
    reader = tasks[0]
    if timing.greet:
        tasks.append(asyncio.create_task(_greet(call, timing)))
    try:
        await _run_timers(call, timing, reader, result)
    finally:
        for task in tasks[1:]:
            task.cancel()
        if call.tool_calls is not None:
            await call.tool_calls.close()  # tools in flight answer first, also at a hand-off
            if call.tool_calls.outcome is not None and result.outcome == "closed":
                result.outcome = call.tool_calls.outcome
        reader.cancel()
        if call.recorder is not None:
            await call.recorder.stop()  # the rest and the end: `Recorder.finish`, once the outcome is final
        if call.websocket is not None:
            await call.websocket.close()
    logger.info(
        "sideband closed",
        extra={
            "call_id": call_id,
            "outcome": result.outcome,
            "events": result.events,
            "closed_reason": result.closed_reason,
        },
    )
    return result


async def _run_timers(
    call: CallSession, timing: Timing, reader: asyncio.Task[None], result: ObserveResult
) -> None:
    start = time.monotonic()
    timers: list[tuple[float, str]] = [(start + timing.time_budget, "budget")]
    if timing.ring_limit is not None:
        timers.append((start + timing.ring_limit, "ring_limit"))
    if timing.call_deadline is not None:
        hang_at = start + (timing.call_deadline - time.time())
        timers.append((hang_at, "hangup"))
        wrap_due = timing.call_deadline - timing.wrap_up_lead
        if timing.wrap_up_lead > 0 and (timing.wrap_up_after is None or wrap_due >= timing.wrap_up_after):
            timers.append((max(start, hang_at - timing.wrap_up_lead), "wrap_up"))
    for at, kind in sorted(timers):
        await asyncio.wait({reader}, timeout=max(0.0, at - time.monotonic()))
        if reader.done():
            _closed_outcome(result)
            return  # the call ended
        if kind == "ring_limit":
            if call.answered.is_set() or call.failed:
                continue
            result.outcome = "no_answer"
            metrics.emit(metrics.OUTBOUND_CALLS, outcome="no_answer", api="live")
            logger.info("outbound call not answered in time: hanging up", extra={"call_id": call.call_id})
            await call.hangup()
            await asyncio.wait({reader}, timeout=HANGUP_GRACE_SECONDS)
            return
        if kind == "wrap_up":
            logger.info("call limit near: asking the model to wrap up", extra={"call_id": call.call_id})
            await call.send_all(call.adapter.instruct(WRAP_UP_TEXT))
        elif kind == "hangup":
            result.outcome = "max_duration"
            logger.info("call limit reached: hanging up", extra={"call_id": call.call_id})
            await call.hangup()
            await asyncio.wait({reader}, timeout=HANGUP_GRACE_SECONDS)
            return
        else:
            result.outcome = "deadline"
            logger.info("observer time running out", extra={"call_id": call.call_id})
            # The reader keeps logging events while the successor starts up.
            if await call.hand_off():
                result.outcome = "handed_off"
            return


def _closed_outcome(result: ObserveResult) -> None:
    """A GPT-Live session's own end reason, where the observer did not end it itself."""
    if result.closed_reason is not None and result.outcome == "closed":
        result.outcome = CLOSED_OUTCOMES.get(result.closed_reason, "closed")


async def _read_call(
    call: CallSession, websocket: ClientConnection, result: ObserveResult, connect: Connect
) -> None:
    """Read the sideband until the call ends; a GPT-Live socket lost before `session.closed` is
    attached again (its replay is deduplicated by event id)."""
    try:
        attempts = 0
        while True:
            await _read(call, websocket, result)
            if result.closed_reason is not None or not call.live:
                return
            while True:
                attempts += 1
                if attempts > REATTACH_ATTEMPTS:
                    return
                await asyncio.sleep(REATTACH_PAUSE_SECONDS)
                logger.info("sideband lost: attaching again", extra={"call_id": call.call_id})
                try:
                    websocket = await call.connect(connect)
                    break
                except InvalidStatus as exc:
                    if exc.response.status_code == 404:  # the session is over
                        return
                except OSError:
                    continue
    finally:
        if call.tool_calls is not None:
            call.tool_calls.on_closed()


async def _read(call: CallSession, websocket: ClientConnection, result: ObserveResult) -> None:
    """One socket's events: deltas and reflected audio read from their frame's ends, the rest parsed
    once, logged, and handed (as typed events) to the tools and the recorder."""
    parser, call_id = call.parser, call.call_id
    quick_events = parser.quick  # looked up once: it runs for every frame
    try:
        async for message in websocket:
            quick = quick_events(message)
            if quick is not None:  # most of a call's frames: never JSON-parsed, never logged
                result.events += 1
                if quick:
                    _dispatch(call, quick, result)
                continue
            event = json_event(message)
            if event is None:
                logger.warning("sideband frame is not a JSON event", extra={"call_id": call_id})
                continue
            result.events += 1
            event_id = event.get("event_id")
            if isinstance(event_id, str) and not call.seen.first(event_id):
                continue  # replayed after a re-attach: acted on already
            event_type: str = event["type"]
            if is_logged(event_type):
                log_event(call_id, event)
            typed = parser.on_event(event)
            if call.replay_marker is not None:
                if call.replay_ended_by(event):
                    call.attached()
                else:  # a predecessor acted on these (it reads until this observer has attached)
                    typed = tuple(e for e in typed if not isinstance(e, REPLAYED_ACTIONS))
            if typed:
                _dispatch(call, typed, result)
    except ConnectionClosed:
        pass  # calls often end without a close frame: that is a normal end


# The typed events are final dataclasses: a set lookup on their type, not a chain of isinstance
# checks (this runs for each of the ~50 output audio frames a second of a GPT-Live call).
_TOOL_TYPES, _RECORD_TYPES = frozenset(TOOL_EVENTS), frozenset(RECORD_EVENTS)


def _dispatch(call: CallSession, events: tuple[ObserverEvent, ...], result: ObserveResult) -> None:
    tool_calls, recorder = call.tool_calls, call.recorder
    for event in events:
        kind = type(event)
        if type(event) is Closed:
            result.closed_reason = event.reason
        elif type(event) is CallProgress:
            _on_progress(call, event, result)
        if tool_calls is not None and kind in _TOOL_TYPES:
            try:
                tool_calls.on_event(event)
            except Exception:  # a tool-handling bug must not stop the observation of the call
                logger.exception("tool event handling failed", extra={"call_id": call.call_id})
        if recorder is not None and kind in _RECORD_TYPES:
            try:
                recorder.on_event(event)
            except Exception:  # nor may a recording bug
                logger.exception("record event handling failed", extra={"call_id": call.call_id})


def _on_progress(call: CallSession, event: CallProgress, result: ObserveResult) -> None:
    """An outbound call's line: ringing starts the ring clock, answered lets the greeting go, failed
    ends the call (the session may linger: it is hung up)."""
    fields = {"call_id": call.call_id, "progress": event.state, "code": event.code}
    logger.info("outbound call progress", extra=fields)
    if event.state == "ringing":
        call.ringing_at = call.ringing_at or time.monotonic()
    elif event.state == "answered" and not call.answered.is_set():
        call.answered.set()
        metrics.emit(metrics.OUTBOUND_CALLS, outcome="answered", api="live")
        if call.ringing_at is not None:
            metrics.seconds(metrics.RING_SECONDS, time.monotonic() - call.ringing_at, api="live")
    elif event.state == "failed" and not call.failed:
        call.failed = True
        result.outcome = "call_failed"
        metrics.emit(metrics.OUTBOUND_CALLS, outcome="failed", api="live")
        call.spawn(call.hangup())


async def _end_replay_wait(call: CallSession) -> None:
    """The replay marker's answer may never come (an `error` without its id): act on events anyway."""
    await asyncio.sleep(REPLAY_MARK_WAIT_SECONDS)
    if call.replay_marker is not None:
        logger.warning("replay marker not answered: acting on events now", extra={"call_id": call.call_id})
        call.attached()


async def _greet(call: CallSession, timing: Timing) -> None:
    """Make the model speak first, a moment after the socket opens (as hello-realtime does); a
    profile's `greeting` is what it opens with. Live: an instruction to the session, once."""
    if call.request.source == "outbound":
        await call.answered.wait()  # never greet a ringing phone
    await asyncio.sleep(timing.greeting_delay)
    await call.send_all(call.adapter.greeting(timing.greeting))


def _parse_request(event: dict[str, Any]) -> ObserveRequest | None:
    call_id = event.get("call_id")
    source = event.get("source", "api")
    generation = event.get("generation", 0)
    if (
        not isinstance(call_id, str)
        or not is_call_id(call_id)
        or source not in ("webrtc", "sip", "api", "outbound")
        or not isinstance(generation, int)
        or isinstance(generation, bool)
        or not 0 <= generation < 1000
    ):
        return None
    requested_at = _number(event.get("requested_at")) or time.time()
    max_seconds = event.get("max_seconds")
    if max_seconds is not None and (
        not isinstance(max_seconds, int) or isinstance(max_seconds, bool) or not 0 < max_seconds <= 7200
    ):
        return None
    minutes_day = event.get("minutes_day")
    if minutes_day is not None and (not isinstance(minutes_day, str) or not DAY_PATTERN.match(minutes_day)):
        return None
    return ObserveRequest(
        call_id=call_id,
        source=source,
        requested_at=requested_at,
        # Older events carry no start time: the call began about when its observer was requested.
        call_started_at=_number(event.get("call_started_at")) or requested_at,
        generation=generation,
        agent=_text(event.get("agent"), "default"),
        caller=_text(event.get("caller"), ""),
        dialed=_text(event.get("dialed"), ""),
        max_seconds=max_seconds,
        minutes_day=minutes_day,
        metadata=_metadata(event.get("metadata")),
    )


def _metadata(value: object) -> dict[str, str] | None:
    """An outbound call's operator metadata, as POST /calls checked it: a few short strings."""
    if not isinstance(value, dict):
        return None
    pairs = [(k, v) for k, v in value.items() if isinstance(k, str) and isinstance(v, str)]
    return {k[:METADATA_CHARS]: v[:METADATA_CHARS] for k, v in pairs[:METADATA_ENTRIES]} or None


def _text(value: object, default: str) -> str:
    """A short label from the event (agent name, masked number), else the default."""
    return value[:64] if isinstance(value, str) and value else default


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@logger.inject_lambda_context(clear_state=True)
def run_worker(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Entry point for the async invoke (`events/observer_async.json`)."""
    request = _parse_request(event)
    if request is None:
        logger.error("observer event is not valid", extra={"keys": sorted(event)[:10]})
        return {"outcome": "invalid"}
    # Context-local keys: the local server runs several observers in one process at once.
    logger.thread_safe_append_keys(call_id=request.call_id, generation=request.generation)
    try:
        return _run(request, context)
    finally:
        logger.thread_safe_clear_keys()


def _run(request: ObserveRequest, context: Any) -> dict[str, Any]:
    settings = deps.settings()
    call_id = request.call_id
    try:
        api_key = deps.secret_store().api_key()
        store = deps.call_store()
        # The profile the call was routed to: its tools, transfer target and greeting.
        agent = deps.agents().get(request.agent)
        # Only a phone call can be referred or press keys.
        channel: Channel = "sip" if request.source in ("sip", "outbound") else "webrtc"
        tools = call_tools(agent.settings, channel, call_api(call_id), deps.tool_registry())
    except ServiceError as exc:
        logger.error("observer cannot start", extra={"call_id": call_id, "reason": exc.reason})
        return {"call_id": call_id, "outcome": "refused"}
    remaining = (
        context.get_remaining_time_in_millis() / 1000
        if hasattr(context, "get_remaining_time_in_millis")
        else settings.observer_max_seconds
    )
    # One observer per call: the lease lasts as long as this invocation can possibly live.
    owner = f"{request.generation}:{uuid.uuid4().hex}"
    claim = handoff_token(request.generation) if request.generation > 0 else None
    try:
        lease = store.acquire_lease(call_id, owner, until=time.time() + remaining + 5, claim=claim)
    except ServiceError as exc:
        logger.error("observer cannot take its lease", extra={"call_id": call_id, "reason": exc.reason})
        return {"call_id": call_id, "outcome": "refused"}
    if lease is None:
        logger.info(
            "call already observed (or over): not opening a second sideband", extra={"call_id": call_id}
        )
        metrics.emit(metrics.DUPLICATES_SUPPRESSED, kind="observer", api=call_api(call_id))
        return {"call_id": call_id, "outcome": "duplicate"}

    started_at = request.call_started_at or request.requested_at
    # The granted length (the daily minutes budget may have shortened it), else MAX_CALL_SECONDS.
    limit = request.max_seconds if request.max_seconds is not None else settings.max_call_seconds
    call = new_call_session(
        request, agent, tools, store=store, owner=owner, api_key=api_key, settings=settings
    )
    recorder = call.recorder
    first = request.generation == 0 and lease.fresh
    timing = Timing(
        time_budget=max(1.0, remaining - settings.observer_stop_margin_seconds),
        greeting_delay=settings.observer_greeting_delay_ms / 1000,
        greeting=agent.greeting,
        greet=first,  # only the call's first observer greets: a successor or a retry must not repeat it
        first=first,
        call_deadline=started_at + limit if limit > 0 else None,
        wrap_up_lead=settings.wrap_up_seconds,
        wrap_up_after=request.requested_at if request.generation > 0 else None,
        # Only the first observer of an outbound call hears it ring (a successor's call was answered).
        ring_limit=RING_LIMIT_SECONDS if request.source == "outbound" and first else None,
    )
    if not first:
        call.answered.set()
    store_recording = agent.settings.live_store and call.live and recorder is not None
    result = asyncio.run(_observe_call(call, timing, settings, store_recording=store_recording))
    if result.outcome in ENDED_OUTCOMES:
        _finish(request, owner, store, started_at, settings, result)
    elif result.outcome in ("refused", "deadline"):
        # The call may still be live: let a later observer (a retry, POST /observer) take over.
        with contextlib.suppress(ServiceError):
            store.release_lease(call_id, owner)
    return {"call_id": call_id, "outcome": result.outcome, "events": result.events}


async def _observe_call(
    call: CallSession, timing: Timing, settings: Settings, *, store_recording: bool
) -> ObserveResult:
    """Observe the call, write its record's end, then (a `store: true` profile's call that was
    answered and has ended) copy its recording into the stack's bucket: one event loop for all, so
    the OpenAI client's connections stay usable."""
    result = await observe(call, timing)
    recorder = call.recorder
    if recorder is None:
        return result
    recorder.finish(result.outcome)
    answered = call.request.source != "outbound" or call.answered.is_set()
    if store_recording and answered and result.outcome in ENDED_OUTCOMES and call.client is not None:
        await recordings.copy_recording(
            recorder.meta(),
            client=call.client,
            records=recorder.store,
            bucket=settings.recordings_bucket_name,
        )
    return result


def new_call_session(
    request: ObserveRequest,
    agent: Agent,
    tools: dict[str, Tool],
    *,
    store: CallStore,
    owner: str,
    api_key: str,
    settings: Settings,
) -> CallSession:
    """The session of the call `request` names, as its lease `owner` observes it: the API's adapter,
    the record (priced by the `agent` profile's model) and the profile's `tools`."""
    call_id = request.call_id
    adapter = adapter_for_call(call_id) or ADAPTERS["realtime"]
    recorder = _recorder(request, agent.settings)
    tool_calls = ToolCalls(
        call_id,
        owner,
        tools=tools,
        store=store,
        control=CallControl(hangup=_unset, refer=_unset_refer),  # the session's, set below
        knobs=ToolKnobs.from_settings(agent.settings),
        on_answered=recorder.on_tool_call if recorder is not None else None,
        adapter=adapter,
    )
    call = CallSession(
        request,
        url=adapter.sideband_url(settings.sideband_base, call_id),
        api_key=api_key,
        client=deps.openai_client(),
        lease=Lease(store, owner, settings),
        tool_calls=tool_calls,
        recorder=recorder,
        adapter=adapter,
    )
    tool_calls.control = CallControl(hangup=call.hangup, refer=call.refer)
    return call


async def _unset() -> None:
    raise AssertionError("call control not set")


async def _unset_refer(target_uri: str) -> None:
    raise AssertionError("call control not set")


def _recorder(request: ObserveRequest, settings: Settings) -> Recorder | None:
    """The call's recorder; without a usable records store the call goes on unrecorded."""
    try:
        store = deps.record_store()
    except ServiceError as exc:
        logger.error("call records unavailable", extra={"call_id": request.call_id, "reason": exc.reason})
        metrics.emit(metrics.RECORD_WRITE_FAILURES)
        return None
    live = request.call_id.startswith("live_")
    return Recorder(
        store,
        request,
        model=settings.live_model if live else settings.realtime_model,
        backend_model=settings.live_backend_model if live else "",
        retention_days=settings.record_retention_days,
        flush_seconds=settings.record_flush_seconds,
    )


def _finish(
    request: ObserveRequest,
    owner: str,
    store: CallStore,
    started_at: float,
    settings: Settings,
    result: ObserveResult,
) -> None:
    """The call is over: close the lease for good, free its concurrency slot, refund its unused
    minutes, record its length."""
    deps.hard_stop().cancel(request.call_id)  # its hangup schedule is not needed any more
    try:
        store.end_lease(request.call_id, owner)
        if request.source in ("sip", "outbound") and settings.max_concurrent_calls > 0:
            store.release_slot(request.call_id)
    except ServiceError as exc:  # the lease lapses and the slot expires on their own
        logger.error("call store cleanup failed", extra={"call_id": request.call_id, "reason": exc.reason})
    # What the call did not use of its reserved minutes goes back to that day's budget.
    grant = limits.Grant(seconds=request.max_seconds, day=request.minutes_day)
    limits.refund(grant, time.time() - started_at, store=store)
    if result.outcome != "not_found":
        metrics.seconds(
            metrics.CALL_DURATION,
            time.time() - started_at,
            source=request.source,
            api=call_api(request.call_id),
        )
