"""Answering a SIP call: caller policy, concurrency cap, the day's call minutes, and an accept with
the retry rules of a webhook (bounded, jittered, inside the answer budget)."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from shared import limits, metrics
from shared.errors import UpstreamError, UpstreamTimeout
from shared.limits import Grant
from shared.log import logger
from shared.policy import BUSY, CallerPolicy
from shared.session import SessionConfig, check_sip_session
from shared.settings import Settings
from shared.store import Counters
from shared.upstream import DecisionAlreadyMade, OpenAIClient

# A concurrency slot outlives the call limit by this much, in case its observer never releases it.
SLOT_GRACE_SECONDS = 120


def is_retryable(exc: UpstreamError) -> bool:
    """Timeouts, unreachable upstream, 429 and 5xx may succeed on a retry; other answers will not, nor
    does a decision another delivery already made (whatever its status)."""
    if isinstance(exc, DecisionAlreadyMade):
        return False
    status = exc.upstream_status
    return isinstance(exc, UpstreamTimeout) or status is None or status == 429 or status >= 500


async def accept_with_retries(
    client: OpenAIClient, call_id: str, session: dict[str, Any], settings: Settings
) -> int:
    """Accept the call; returns the attempt that succeeded. Raises the last UpstreamError when the
    attempts or the deadline run out (the webhook then answers 5xx and OpenAI redelivers), and a 404
    at once (the call is gone: nothing to retry)."""
    deadline = time.monotonic() + settings.accept_deadline_seconds
    attempts = settings.accept_max_attempts
    for attempt in range(1, attempts + 1):
        budget = min(settings.accept_attempt_timeout_seconds, deadline - time.monotonic())
        try:
            async with asyncio.timeout(budget):
                await client.accept_call(call_id, session)
            return attempt
        except TimeoutError:
            error: UpstreamError = UpstreamTimeout("OpenAI did not answer the accept in time")
        except UpstreamError as exc:
            if not is_retryable(exc):
                raise
            error = exc
        # Full jitter: concurrent webhooks that failed together do not retry together.
        delay = random.uniform(0, settings.accept_backoff_seconds * 2 ** (attempt - 1))  # noqa: S311
        # Give up when no attempt of a useful length fits before the deadline any more.
        if attempt == attempts or time.monotonic() + delay + 0.2 >= deadline:
            raise error
        logger.warning(
            "accept failed, retrying",
            extra={"call_id": call_id, "attempt": attempt, "reason": error.reason, "delay": round(delay, 3)},
        )
        await asyncio.sleep(delay)
    raise AssertionError("unreachable")  # the loop returns or raises


async def answer_call(
    call_id: str,
    caller: str,
    *,
    client: OpenAIClient,
    session: SessionConfig,
    store: Counters,
    policy: CallerPolicy,
    settings: Settings,
    webhook_sent_at: str = "",
) -> Grant | None:
    """Answer an incoming SIP call: the caller policy, concurrency cap and daily minutes (reject with
    603/486), then the accept with retries. The call's grant when it is accepted and needs an
    observer (`limits.NO_GRANT` without a daily limit), else None."""
    payload = check_sip_session(session.to_json())
    decision = policy.check(caller)
    if not decision.allowed:
        await reject_call(client, call_id, decision.status_code, decision.reason)
        return None
    slot = policy.max_concurrent_calls > 0
    if slot:
        until = time.time() + (settings.max_call_seconds or 3600) + SLOT_GRACE_SECONDS
        if not store.take_slot(call_id, limit=policy.max_concurrent_calls, until=until):
            await reject_call(client, call_id, BUSY, "concurrent call limit reached")
            return None
    try:
        grant = limits.reserve(store, settings)  # the call's length from the day's minutes
    except BaseException:
        if slot:
            store.release_slot(call_id)
        raise
    if grant is None:
        if slot:
            store.release_slot(call_id)
        await reject_call(client, call_id, BUSY, "daily call minutes used up")
        return None
    logger.debug("caller policy: accept")  # "call accepted" (or "accept failed") follows at info
    try:
        attempt = await accept_with_retries(client, call_id, payload, settings)
    except BaseException as exc:
        if slot:
            store.release_slot(call_id)
        limits.refund(grant, store=store)  # not accepted: none of its minutes were used
        if isinstance(exc, UpstreamError):
            if exc.upstream_status == 404:
                # The caller hung up before we answered (webhooks can arrive late): nothing left to do.
                logger.info("call gone before accept")
                return None
            metrics.emit(metrics.ACCEPT_FAILURES)
            failure = {"reason": exc.reason, "upstream_status": exc.upstream_status}
            logger.error("accept failed", extra=failure)
        raise
    logger.info("call accepted", extra={"attempt": attempt})
    metrics.emit(metrics.CALLS_ACCEPTED)
    metrics.emit(metrics.CALLS_STARTED, source="sip")
    if webhook_sent_at.isdigit():
        metrics.milliseconds(metrics.WEBHOOK_TO_ACCEPT, (time.time() - int(webhook_sent_at)) * 1000)
    return grant


async def reject_call(client: OpenAIClient, call_id: str, status_code: int, reason: str) -> None:
    logger.info("caller policy: reject", extra={"sip_status": status_code, "reason": reason})
    metrics.emit(metrics.CALLS_REJECTED, sip_status=str(status_code))
    try:
        await client.reject_call(call_id, status_code)
    except UpstreamError as exc:
        if exc.upstream_status != 404:  # 404: the caller hung up already, which is just as good
            raise
