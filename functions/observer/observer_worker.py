"""The observer worker: holds the sideband WebSocket of one call for as long as the call lives.

It makes the model speak first (`response.create` shortly after the socket opens), writes one
structured log line per server event except the noisy `*.delta` streams, logs every finished
transcript whole, and ends when the call ends or when the call id is unknown.

Exactly one observer per call: it takes the call's lease (shared/store.py) before connecting, so a
duplicate event or request never opens a second sideband nor greets twice. Calls longer than one
invocation: shortly before the Lambda deadline it hands the lease to a successor invocation (async
invoke with the call's start time and generation + 1) and reads on until that one has taken over.
At the call limit (`MAX_CALL_SECONDS`) it asks the model to wrap up, then hangs up.
Server-side tools (the model's function calls, `end_call`, `transfer_call`, keypad presses) are run
by `observer_tools.ToolCalls`, fed the events it acts on (`TOOL_EVENTS`) as the reader parses them.
The call's record (shared/records.py) is kept by `observer_records.Recorder`, fed `RECORD_EVENTS` and
the answered tool calls; the end reason comes from the outcome (a handed-off generation writes none).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus

from observer_records import SESSION_EVENTS, Recorder
from observer_tools import TOOL_EVENTS, CallControl, ToolCalls, ToolKnobs
from shared import deps, limits, metrics, tls
from shared.errors import ServiceError, UpstreamError
from shared.launcher import ObserveRequest
from shared.log import logger
from shared.settings import Settings
from shared.store import CallStore
from shared.tools import select_tools
from shared.upstream import call_api, is_call_id, make_headers

# Finished transcripts, GA and beta names: event type -> (speaker, field holding the text).
TRANSCRIPT_EVENTS = {
    "response.output_audio_transcript.done": ("assistant", "transcript"),
    "response.audio_transcript.done": ("assistant", "transcript"),
    "response.output_text.done": ("assistant", "text"),
    "response.text.done": ("assistant", "text"),
    "conversation.item.input_audio_transcription.completed": ("caller", "transcript"),
}
# What the call's record is fed (shared/records.py): transcripts, usage, the session's model.
RECORD_EVENTS = frozenset({*TRANSCRIPT_EVENTS, "response.done", *SESSION_EVENTS})

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
]
ENDED_OUTCOMES = ("closed", "max_duration", "not_found", "model_ended", "transferred", "transfer_failed")
HANGUP_GRACE_SECONDS = 5.0  # after /hangup, read the last events until the socket closes
HANDOFF_POLL_SECONDS = 0.2
# Sent once, `wrap_up_seconds` before the call limit (the caller hears the model say goodbye).
WRAP_UP = {
    "type": "response.create",
    "response": {
        "instructions": (
            "The call is about to end because it reached its time limit. In one or two short "
            "sentences, tell the caller the time is up, thank them, and say goodbye."
        )
    },
}
Connect = Callable[..., Any]
DAY_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")  # ObserveRequest.minutes_day


@dataclass
class ObserveResult:
    outcome: Outcome
    events: int = 0


def is_logged(event_type: str) -> bool:
    """Audio and transcript deltas (GA and beta: every `*.delta`) arrive many times a second: skip them."""
    return not event_type.endswith(".delta")


def log_event(call_id: str, event: dict[str, Any]) -> None:
    event_type = str(event.get("type", ""))
    fields: dict[str, Any] = {"call_id": call_id, "event_type": event_type, "event_id": event.get("event_id")}
    if event_type in TRANSCRIPT_EVENTS:
        speaker, key = TRANSCRIPT_EVENTS[event_type]
        logger.info("transcript", extra={**fields, "speaker": speaker, "text": event.get(key, "")})
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
    logger.info("sideband event", extra=fields)


async def observe(
    request: ObserveRequest,
    *,
    url: str,
    api_key: str,
    greeting_delay: float,
    time_budget: float,
    greet: bool = True,
    greeting: str = "",
    call_deadline: float | None = None,
    wrap_up_lead: float = 20.0,
    wrap_up_after: float | None = None,
    hangup: Callable[[], Awaitable[None]] | None = None,
    hand_off: Callable[[], Awaitable[bool]] | None = None,
    on_open: Callable[[], None] | None = None,
    tool_calls: ToolCalls | None = None,
    recorder: Recorder | None = None,
    connect: Connect = websockets.connect,
) -> ObserveResult:
    """Watch one call until it ends, reaches `call_deadline` (unix s: wrap up, then `hangup`), or
    `time_budget` seconds pass (then `hand_off` to a successor, reading on until it has taken over).

    `wrap_up_after` (unix s): a successor sends the wrap-up only if it falls due after its
    predecessor handed off; earlier ones were the predecessor's to send."""
    call_id = request.call_id
    try:
        # No permessage-deflate: inflating every small event costs the observer more CPU (and a zlib
        # context's memory) than the bytes it saves on a loopback-to-region socket.
        tls_context = {"ssl": tls.client_context()} if url.startswith("wss://") else {}
        websocket: ClientConnection = await connect(
            url, additional_headers=make_headers(api_key), compression=None, **tls_context
        )
    except InvalidStatus as exc:
        status = exc.response.status_code
        # 404: the call id is unknown or the call already ended. Terminal: never retried.
        outcome: Outcome = "not_found" if status == 404 else "refused"
        logger.warning("sideband refused", extra={"call_id": call_id, "status": status})
        return ObserveResult(outcome)

    result = ObserveResult("closed")
    logger.info("sideband open", extra={"call_id": call_id, "source": request.source, "greet": greet})
    if on_open is not None:
        on_open()
    if tool_calls is not None:
        tool_calls.attach(lambda event: websocket.send(json.dumps(event)))
    if recorder is not None:
        recorder.start()
    reader = asyncio.create_task(_read(websocket, call_id, result, tool_calls, recorder))
    opening = asyncio.create_task(_greet(websocket, greeting_delay, greeting)) if greet else None
    start = time.monotonic()
    timers: list[tuple[float, str]] = [(start + time_budget, "budget")]
    if call_deadline is not None:
        hang_at = start + (call_deadline - time.time())
        timers.append((hang_at, "hangup"))
        wrap_due = call_deadline - wrap_up_lead
        if wrap_up_lead > 0 and (wrap_up_after is None or wrap_due >= wrap_up_after):
            timers.append((max(start, hang_at - wrap_up_lead), "wrap_up"))
    try:
        for at, kind in sorted(timers):
            await asyncio.wait({reader}, timeout=max(0.0, at - time.monotonic()))
            if reader.done():
                break  # the call ended
            if kind == "wrap_up":
                logger.info("call limit near: asking the model to wrap up", extra={"call_id": call_id})
                with contextlib.suppress(ConnectionClosed):
                    await websocket.send(json.dumps(WRAP_UP))
            elif kind == "hangup":
                result.outcome = "max_duration"
                logger.info("call limit reached: hanging up", extra={"call_id": call_id})
                if hangup is not None:
                    await hangup()
                await asyncio.wait({reader}, timeout=HANGUP_GRACE_SECONDS)
                break
            else:
                result.outcome = "deadline"
                logger.info("observer time running out", extra={"call_id": call_id})
                # The reader keeps logging events while the successor starts up.
                if hand_off is not None and await hand_off():
                    result.outcome = "handed_off"
                break
    finally:
        if opening is not None:
            opening.cancel()
        if tool_calls is not None:
            await tool_calls.close()  # tools in flight answer first, also at a hand-off
            if tool_calls.outcome is not None and result.outcome == "closed":
                result.outcome = tool_calls.outcome
        reader.cancel()
        if recorder is not None:
            await recorder.stop()  # the rest and the end: `Recorder.finish`, once the outcome is final
        await websocket.close()
    logger.info(
        "sideband closed", extra={"call_id": call_id, "outcome": result.outcome, "events": result.events}
    )
    return result


# Deltas (audio and transcript chunks) are most of a call's events and are only counted, never
# logged: their type is read from the frame's head instead of parsing the whole JSON (19.1 -> 16.9 ms
# of CPU per 1,000 events, `make bench` measure 5). Any other head, or an event_id/type order this does not
# expect, falls back to the full parse. A delta frame broken after its head is counted, not warned.
_DELTA_HEAD = re.compile(r'\{\s*(?:"event_id"\s*:\s*"[^"\\]*"\s*,\s*)?"type"\s*:\s*"[a-z0-9_.]+\.delta"')


async def _read(
    websocket: ClientConnection,
    call_id: str,
    result: ObserveResult,
    tool_calls: ToolCalls | None = None,
    recorder: Recorder | None = None,
) -> None:
    try:
        async for message in websocket:
            if isinstance(message, str) and _DELTA_HEAD.match(message):
                result.events += 1
                continue
            event = _parse(message)
            if event is None:
                logger.warning("sideband frame is not a JSON event", extra={"call_id": call_id})
                continue
            result.events += 1
            event_type: str = event["type"]  # _parse: always a str
            if is_logged(event_type):
                log_event(call_id, event)
            # Most events are no tool's business: a set lookup, not a call into ToolCalls, for them.
            if tool_calls is not None and event_type in TOOL_EVENTS:
                try:
                    tool_calls.on_event(event)
                except Exception:  # a tool-handling bug must not stop the observation of the call
                    logger.exception("tool event handling failed", extra={"call_id": call_id})
            if recorder is not None and event_type in RECORD_EVENTS:
                try:
                    recorder.on_event(event)
                except Exception:  # nor may a recording bug
                    logger.exception("record event handling failed", extra={"call_id": call_id})
    except ConnectionClosed:
        pass  # calls often end without a close frame: that is a normal end
    finally:
        if tool_calls is not None:
            tool_calls.on_closed()


async def _greet(websocket: ClientConnection, delay: float, greeting: str = "") -> None:
    """Make the model speak first, a moment after the socket opens (as hello-realtime does); a
    profile's `greeting` is that first response's instructions."""
    event: dict[str, Any] = {"type": "response.create"}
    if greeting:
        event["response"] = {"instructions": greeting}
    await asyncio.sleep(delay)
    with contextlib.suppress(ConnectionClosed):
        await websocket.send(json.dumps(event))


def _parse(message: str | bytes) -> dict[str, Any] | None:
    try:
        event = json.loads(message)
    except ValueError:
        return None
    return event if isinstance(event, dict) and isinstance(event.get("type"), str) else None


def _parse_request(event: dict[str, Any]) -> ObserveRequest | None:
    call_id = event.get("call_id")
    source = event.get("source", "api")
    generation = event.get("generation", 0)
    if (
        not isinstance(call_id, str)
        or not is_call_id(call_id)
        or source not in ("webrtc", "sip", "api")
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
    )


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
        tools = select_tools(
            agent.settings.tool_names,
            transfer_target=agent.settings.transfer_target,
            known=deps.tool_registry(),
            channel="sip" if request.source == "sip" else "webrtc",  # only a SIP call can be referred
        )
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
    client = deps.openai_client()

    async def hangup() -> None:
        for attempt in (1, 2):  # one retry: an unended call would run on unobserved
            try:
                await client.hangup_call(call_id)
                return
            except UpstreamError as exc:
                logger.warning("hangup failed", extra={"call_id": call_id, "reason": exc.reason})
                if exc.upstream_status == 404 or attempt == 2:  # 404: already over, which is the goal
                    return
                await asyncio.sleep(0.5)

    recorder = _recorder(request, agent.settings)  # the profile's model prices the call

    async def hand_off() -> bool:
        if recorder is not None:
            await recorder.flush()  # the successor appends after what this one has so far
        return await _hand_off(request, owner, store, started_at, settings)

    async def refer(target_uri: str) -> None:
        await client.refer_call(call_id, target_uri)

    tool_calls = ToolCalls(
        call_id,
        owner,
        tools=tools,
        store=store,
        control=CallControl(hangup=hangup, refer=refer),
        knobs=ToolKnobs.from_settings(agent.settings),
        on_answered=recorder.on_tool_call if recorder is not None else None,
    )

    time_budget = max(1.0, remaining - settings.observer_stop_margin_seconds)
    result = asyncio.run(
        observe(
            request,
            url=f"{settings.sideband_base}/realtime?call_id={call_id}",
            api_key=api_key,
            greeting_delay=settings.observer_greeting_delay_ms / 1000,
            greeting=agent.greeting,
            time_budget=time_budget,
            # Only the call's first observer greets: a successor or a retry must not repeat it.
            greet=request.generation == 0 and lease.fresh,
            call_deadline=started_at + limit if limit > 0 else None,
            wrap_up_lead=settings.wrap_up_seconds,
            wrap_up_after=request.requested_at if request.generation > 0 else None,
            hangup=hangup,
            hand_off=hand_off,
            on_open=lambda: store.mark_attached(call_id, owner),
            tool_calls=tool_calls,
            recorder=recorder,
        )
    )
    if recorder is not None:
        recorder.finish(result.outcome)
    if result.outcome in ENDED_OUTCOMES:
        _finish(request, owner, store, started_at, settings, result)
    elif result.outcome in ("refused", "deadline"):
        # The call may still be live: let a later observer (a retry, POST /observer) take over.
        with contextlib.suppress(ServiceError):
            store.release_lease(call_id, owner)
    return {"call_id": call_id, "outcome": result.outcome, "events": result.events}


def _recorder(request: ObserveRequest, settings: Settings) -> Recorder | None:
    """The call's recorder; without a usable records store the call goes on unrecorded."""
    try:
        store = deps.record_store()
    except ServiceError as exc:
        logger.error("call records unavailable", extra={"call_id": request.call_id, "reason": exc.reason})
        metrics.emit(metrics.RECORD_WRITE_FAILURES)
        return None
    return Recorder(
        store,
        request,
        model=settings.realtime_model,
        retention_days=settings.record_retention_days,
        flush_seconds=settings.record_flush_seconds,
        transcripts=TRANSCRIPT_EVENTS,
    )


def handoff_token(generation: int) -> str:
    """The lease owner while a call waits for its observer of this generation to claim it."""
    return f"handoff:{generation}"


async def _hand_off(
    request: ObserveRequest, owner: str, store: CallStore, started_at: float, settings: Settings
) -> bool:
    """Start the successor and hand it the lease; True once it has claimed the lease."""
    # Everything but the generation and the request time carries over (agent, numbers, granted length).
    successor = dataclasses.replace(
        request, requested_at=time.time(), call_started_at=started_at, generation=request.generation + 1
    )
    token = handoff_token(successor.generation)
    # Hand over first, so the successor finds the lease waiting for it however fast it starts.
    if not store.hand_over(
        request.call_id, owner, token, until=time.time() + settings.observer_handoff_seconds
    ):
        logger.error("lease lost before hand-off", extra={"call_id": request.call_id})
        return False
    try:
        deps.observer_launcher().launch(successor)
    except Exception:
        logger.exception("successor launch failed", extra={"call_id": request.call_id})
        # Take the lease back from the token no successor will claim, so it can be released.
        store.hand_over(request.call_id, token, owner, until=time.time() + settings.observer_handoff_seconds)
        return False
    logger.info("successor started", extra={"call_id": request.call_id, "successor": successor.generation})
    # Read on (the reader task runs meanwhile) until the successor's own sideband is open.
    wait_until = time.monotonic() + max(0.5, settings.observer_stop_margin_seconds / 2)
    while time.monotonic() < wait_until:
        if store.attached_owner(request.call_id) not in (None, token, owner):
            metrics.emit(metrics.OBSERVER_HANDOFFS, api=call_api(request.call_id))
            logger.info("successor took over", extra={"call_id": request.call_id})
            return True
        await asyncio.sleep(HANDOFF_POLL_SECONDS)
    logger.error("successor did not take over in time", extra={"call_id": request.call_id})
    return False


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
        if request.source == "sip" and settings.max_concurrent_calls > 0:
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
