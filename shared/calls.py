"""Answering a SIP call through either API: the incoming-call webhook of Realtime or GPT-Live, the
caller policy, concurrency cap, the day's call minutes, and an accept with the retry rules of a
webhook (bounded, jittered, inside the answer budget)."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from shared import limits, metrics
from shared.errors import ClientError, UpstreamError, UpstreamTimeout
from shared.limits import Grant
from shared.log import logger
from shared.policy import BUSY, CallerPolicy
from shared.settings import Settings, VoiceApi
from shared.store import Counters
from shared.upstream import (
    CALL_ID_PATTERN,
    LIVE_SESSION_ID_PATTERN,
    DecisionAlreadyMade,
    JsonBody,
    OpenAIClient,
)

# The webhooks that announce a pending SIP call, and the API each belongs to. One call fires both a
# Realtime and a Live one (different ids): the first accept or reject through either API decides it.
INCOMING_CALL_EVENTS: dict[str, VoiceApi] = {
    "realtime.call.incoming": "realtime",
    "live.transport.incoming": "live",
    "live.call.incoming": "live",  # deprecated name of the same event: kept while its retries drain
}

# A concurrency slot outlives the call limit by this much, in case its observer never releases it.
SLOT_GRACE_SECONDS = 120


class SipHeader(BaseModel):
    name: str
    value: str


class IncomingCall(BaseModel):
    """A pending SIP call as either API's webhook announces it."""

    api: VoiceApi
    call_id: str  # Realtime `data.call_id` (rtc_...) or Live `data.session_id` (live_...)
    sip_headers: list[SipHeader] = []  # untrusted caller metadata
    media_security: str | None = None  # Live only: "srtp", "rtp", ...; None when unknown

    def header(self, name: str) -> str:
        return next((h.value for h in self.sip_headers if h.name.lower() == name.lower()), "")


class _RealtimeCallData(BaseModel):
    call_id: str = Field(pattern=CALL_ID_PATTERN.pattern)
    sip_headers: list[SipHeader] = []


class _LiveCallData(BaseModel):
    session_id: str = Field(pattern=LIVE_SESSION_ID_PATTERN.pattern)
    type: str = "sip"  # absent from the deprecated live.call.incoming
    sip_headers: list[SipHeader] = []
    sip_media_security: str | None = None


def incoming_call(event_type: str, data: dict[str, Any]) -> IncomingCall | None:
    """The SIP call a verified webhook announces; None for any other event. A 400 when its data
    lacks a well-formed id (no upstream call is made for it)."""
    api = INCOMING_CALL_EVENTS.get(event_type)
    try:
        if api == "realtime":
            call = _RealtimeCallData.model_validate(data)
            return IncomingCall(api=api, call_id=call.call_id, sip_headers=call.sip_headers)
        if api == "live":
            live = _LiveCallData.model_validate(data)
            if live.type != "sip":  # only SIP is documented; nothing to accept otherwise
                return None
            return IncomingCall(
                api=api,
                call_id=live.session_id,
                sip_headers=live.sip_headers,
                media_security=live.sip_media_security,
            )
    except ValidationError:
        field = "call_id" if api == "realtime" else "session_id"
        raise ClientError(400, f"Webhook data.{field} is missing or malformed") from None
    return None


def is_retryable(exc: UpstreamError) -> bool:
    """Timeouts, unreachable upstream, 429 and 5xx may succeed on a retry; other answers will not, nor
    does a decision another delivery already made (whatever its status)."""
    if isinstance(exc, DecisionAlreadyMade):
        return False
    status = exc.upstream_status
    return isinstance(exc, UpstreamTimeout) or status is None or status == 429 or status >= 500


async def accept_with_retries(
    client: OpenAIClient, call: IncomingCall, body: JsonBody, settings: Settings
) -> int:
    """Accept the call through its API; returns the attempt that succeeded. Raises the last
    UpstreamError when the attempts or the deadline run out (the webhook then answers 5xx and OpenAI
    redelivers), and at once a 404 (the call is gone) or DecisionAlreadyMade (it is decided), unless
    an earlier attempt went unanswered: then that accept of ours is what decided the call."""
    deadline = time.monotonic() + settings.accept_deadline_seconds
    attempts = settings.accept_max_attempts
    unanswered = False  # an attempt timed out or failed in a way that may have accepted the call
    for attempt in range(1, attempts + 1):
        budget = min(settings.accept_attempt_timeout_seconds, deadline - time.monotonic())
        try:
            async with asyncio.timeout(budget):
                await _accept(client, call, body)
            return attempt
        except TimeoutError:
            error: UpstreamError = UpstreamTimeout("OpenAI did not answer the accept in time")
        except DecisionAlreadyMade:
            if not unanswered:
                raise
            # Observing a call someone else decided costs a sideband refused; leaving our own
            # accepted call unobserved would leave it without tools, limits or hard stop.
            logger.info("an earlier accept attempt decided the call", extra={"attempt": attempt})
            return attempt
        except UpstreamError as exc:
            if not is_retryable(exc):
                raise
            error = exc
        unanswered = unanswered or error.upstream_status is None or error.upstream_status >= 500
        # Full jitter: concurrent webhooks that failed together do not retry together.
        delay = random.uniform(0, settings.accept_backoff_seconds * 2 ** (attempt - 1))  # noqa: S311
        # Give up when no attempt of a useful length fits before the deadline any more.
        if attempt == attempts or time.monotonic() + delay + 0.2 >= deadline:
            raise error
        logger.warning(
            "accept failed, retrying",
            extra={
                "call_id": call.call_id,
                "attempt": attempt,
                "reason": error.reason,
                "delay": round(delay, 3),
            },
        )
        await asyncio.sleep(delay)
    raise AssertionError("unreachable")  # the loop returns or raises


async def answer_call(
    call: IncomingCall,
    *,
    body: JsonBody,
    client: OpenAIClient,
    store: Counters,
    policy: CallerPolicy,
    settings: Settings,
    webhook_sent_at: str = "",
) -> Grant | None:
    """Answer an incoming SIP call through its API with the accept `body` of that API: the caller
    policy, concurrency cap and daily minutes (reject with 603/486), then the accept with retries.
    The call's grant when it is accepted and needs an observer (`limits.NO_GRANT` without a daily
    limit), else None (refused, gone, or already decided by a competing delivery)."""
    decision = policy.check(call.header("From"))
    if not decision.allowed:
        await reject_call(client, call, decision.status_code, decision.reason)
        return None
    slot = policy.max_concurrent_calls > 0
    if slot:
        until = time.time() + (settings.max_call_seconds or 3600) + SLOT_GRACE_SECONDS
        if not store.take_slot(call.call_id, limit=policy.max_concurrent_calls, until=until):
            await reject_call(client, call, BUSY, "concurrent call limit reached")
            return None
    try:
        grant = limits.reserve(store, settings)  # the call's length from the day's minutes
    except BaseException:
        if slot:
            store.release_slot(call.call_id)
        raise
    if grant is None:
        if slot:
            store.release_slot(call.call_id)
        await reject_call(client, call, BUSY, "daily call minutes used up")
        return None
    logger.debug("caller policy: accept")  # "call accepted" (or "accept failed") follows at info
    try:
        attempt = await accept_with_retries(client, call, body, settings)
    except BaseException as exc:
        limits.refund(grant, store=store)  # not accepted by this delivery: none of its minutes were used
        if isinstance(exc, DecisionAlreadyMade):
            # Another delivery decided first (the deprecated and the current Live event of one call,
            # or a redelivery): the slot stays, as that delivery holds it under the same id (one
            # taken for a call the other API won lapses after its grace).
            _already_decided(call)
            return None
        if slot:
            store.release_slot(call.call_id)
        if isinstance(exc, UpstreamError):
            if exc.upstream_status == 404:
                # The caller hung up before we answered (webhooks can arrive late): nothing left to do.
                logger.info("call gone before accept")
                return None
            metrics.emit(metrics.ACCEPT_FAILURES, api=call.api)
            failure = {"reason": exc.reason, "upstream_status": exc.upstream_status}
            logger.error("accept failed", extra=failure)
        raise
    logger.info("call accepted", extra={"attempt": attempt})
    metrics.emit(metrics.CALLS_ACCEPTED, api=call.api)
    metrics.emit(metrics.CALLS_STARTED, source="sip", api=call.api)
    if webhook_sent_at.isdigit():
        elapsed_ms = (time.time() - int(webhook_sent_at)) * 1000
        metrics.milliseconds(metrics.WEBHOOK_TO_ACCEPT, elapsed_ms, api=call.api)
    return grant


async def reject_call(client: OpenAIClient, call: IncomingCall, status_code: int, reason: str) -> None:
    """Reject with `status_code` on either API (Live requires it; Realtime gets it too, not its
    default). A call already gone or already decided is as good as rejected."""
    logger.info("caller policy: reject", extra={"sip_status": status_code, "reason": reason})
    metrics.emit(metrics.CALLS_REJECTED, sip_status=str(status_code), api=call.api)
    try:
        if call.api == "live":
            await client.reject_live_session(call.call_id, status_code)
        else:
            await client.reject_call(call.call_id, status_code)
    except DecisionAlreadyMade:
        _already_decided(call)
    except UpstreamError as exc:
        if exc.upstream_status != 404:  # 404: the caller hung up already, which is just as good
            raise


async def _accept(client: OpenAIClient, call: IncomingCall, body: JsonBody) -> None:
    if call.api == "live":
        await client.accept_live_session(call.call_id, body)
    else:
        await client.accept_call(call.call_id, body)


def _already_decided(call: IncomingCall) -> None:
    """A competing decision won (`decision_already_made`): a quiet success, never retried."""
    logger.info("call already decided by another delivery")
    metrics.emit(metrics.DUPLICATES_SUPPRESSED, kind="decision", api=call.api)
