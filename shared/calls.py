"""Call control with the retry rules of a webhook: bounded, jittered, inside the answer budget."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from shared.errors import UpstreamError, UpstreamTimeout
from shared.log import logger
from shared.settings import Settings
from shared.upstream import OpenAIClient


def is_retryable(exc: UpstreamError) -> bool:
    """Timeouts, unreachable upstream, 429 and 5xx may succeed on a retry; other answers will not."""
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
