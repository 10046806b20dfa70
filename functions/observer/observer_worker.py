"""The observer worker: holds the sideband WebSocket of one call for as long as the call lives.

It makes the model speak first (`response.create` shortly after the socket opens), writes one
structured log line per server event except the noisy `*.delta` streams, logs every finished
transcript whole, and ends when the call ends, when the call id is unknown, or shortly before
the Lambda invocation would be cut off.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus

from shared import deps
from shared.errors import ServiceError
from shared.launcher import ObserveRequest
from shared.log import logger
from shared.upstream import CALL_ID_PATTERN, make_headers

# Finished transcripts, GA and beta names: event type -> (speaker, field holding the text).
TRANSCRIPT_EVENTS = {
    "response.output_audio_transcript.done": ("assistant", "transcript"),
    "response.audio_transcript.done": ("assistant", "transcript"),
    "response.output_text.done": ("assistant", "text"),
    "response.text.done": ("assistant", "text"),
    "conversation.item.input_audio_transcription.completed": ("caller", "transcript"),
}

Outcome = Literal["closed", "not_found", "refused", "deadline", "invalid"]
Connect = Callable[..., Any]


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
    logger.info("sideband event", extra=fields)


async def observe(
    request: ObserveRequest,
    *,
    url: str,
    api_key: str,
    greeting_delay: float,
    time_budget: float,
    connect: Connect = websockets.connect,
) -> ObserveResult:
    """Watch one call until it ends or `time_budget` seconds pass."""
    call_id = request.call_id
    try:
        # No permessage-deflate: inflating every small event costs the observer more CPU (and a zlib
        # context's memory) than the bytes it saves on a loopback-to-region socket.
        websocket: ClientConnection = await connect(
            url, additional_headers=make_headers(api_key), compression=None
        )
    except InvalidStatus as exc:
        status = exc.response.status_code
        # 404: the call id is unknown or the call already ended. Terminal: never retried.
        outcome: Outcome = "not_found" if status == 404 else "refused"
        logger.warning("sideband refused", extra={"call_id": call_id, "status": status})
        return ObserveResult(outcome)

    result = ObserveResult("closed")
    logger.info("sideband open", extra={"call_id": call_id, "source": request.source})
    greeting = asyncio.create_task(_greet(websocket, greeting_delay))
    try:
        async with asyncio.timeout(time_budget):
            async for message in websocket:
                event = _parse(message)
                if event is None:
                    logger.warning("sideband frame is not a JSON event", extra={"call_id": call_id})
                    continue
                result.events += 1
                if is_logged(str(event.get("type", ""))):
                    log_event(call_id, event)
    except ConnectionClosed:
        pass  # calls often end without a close frame: that is a normal end
    except TimeoutError:
        result.outcome = "deadline"
        logger.info("observer stopping before its time runs out", extra={"call_id": call_id})
    finally:
        greeting.cancel()
        await websocket.close()
    logger.info(
        "sideband closed", extra={"call_id": call_id, "outcome": result.outcome, "events": result.events}
    )
    return result


async def _greet(websocket: ClientConnection, delay: float) -> None:
    """Make the model speak first, a moment after the socket opens (as hello-realtime does)."""
    await asyncio.sleep(delay)
    with contextlib.suppress(ConnectionClosed):
        await websocket.send(json.dumps({"type": "response.create"}))


def _parse(message: str | bytes) -> dict[str, Any] | None:
    try:
        event = json.loads(message)
    except ValueError:
        return None
    return event if isinstance(event, dict) and isinstance(event.get("type"), str) else None


def _parse_request(event: dict[str, Any]) -> ObserveRequest | None:
    call_id = event.get("call_id")
    source = event.get("source", "api")
    if (
        not isinstance(call_id, str)
        or not CALL_ID_PATTERN.match(call_id)
        or source not in ("webrtc", "sip", "api")
    ):
        return None
    requested_at = event.get("requested_at")
    return ObserveRequest(
        call_id=call_id,
        source=source,
        requested_at=float(requested_at) if isinstance(requested_at, int | float) else time.time(),
    )


@logger.inject_lambda_context(clear_state=True)
def run_worker(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Entry point for the async invoke: `{"call_id": "rtc_...", "source": ..., "requested_at": ...}`."""
    request = _parse_request(event)
    if request is None:
        logger.error("observer event is not valid", extra={"keys": sorted(event)[:10]})
        return {"outcome": "invalid"}
    settings = deps.settings()
    try:
        api_key = deps.secret_store().api_key()
    except ServiceError as exc:
        logger.error("observer cannot start", extra={"call_id": request.call_id, "reason": exc.reason})
        return {"call_id": request.call_id, "outcome": "refused"}
    remaining = (
        context.get_remaining_time_in_millis() / 1000
        if hasattr(context, "get_remaining_time_in_millis")
        else settings.observer_max_seconds
    )
    result = asyncio.run(
        observe(
            request,
            url=f"{settings.sideband_base}/realtime?call_id={request.call_id}",
            api_key=api_key,
            greeting_delay=settings.observer_greeting_delay_ms / 1000,
            time_budget=max(1.0, remaining - settings.observer_stop_margin_seconds),
        )
    )
    return {"call_id": request.call_id, "outcome": result.outcome, "events": result.events}
