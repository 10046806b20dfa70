"""The hard stop's target: EventBridge Scheduler invokes this with `{"call_id": ...}` at the call's time
limit (shared/hard_stop.py), whatever became of its observer; it POSTs `/realtime/calls/{id}/hangup`.

A 404 means the call is over already: nothing to do, not an error. Any other failure raises, so that
Scheduler retries (the schedule's RetryPolicy).
"""

from __future__ import annotations

import asyncio
from typing import Any

from shared import deps, startup
from shared.errors import UpstreamError
from shared.log import logger
from shared.upstream import CALL_ID_PATTERN

_loop: list[asyncio.AbstractEventLoop] = []  # one per container: the OpenAI client pools per loop
startup.check_at_start()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    call_id = event.get("call_id") if isinstance(event, dict) else None
    if not isinstance(call_id, str) or not CALL_ID_PATTERN.match(call_id):
        logger.error("hangup event is not valid", extra={"reason": "hard_stop"})
        return {"outcome": "invalid"}
    try:
        _event_loop().run_until_complete(deps.openai_client().hangup_call(call_id))
    except UpstreamError as exc:
        if exc.upstream_status != 404:
            logger.error("hard stop hangup failed", extra={"call_id": call_id, "reason": "hard_stop"})
            raise
        logger.info("call already over", extra={"call_id": call_id, "reason": "hard_stop"})
        return {"call_id": call_id, "outcome": "already_over"}
    logger.info("call hung up", extra={"call_id": call_id, "reason": "hard_stop"})
    return {"call_id": call_id, "outcome": "hung_up"}


def _event_loop() -> asyncio.AbstractEventLoop:
    if not _loop or _loop[0].is_closed():
        _loop[:] = [asyncio.new_event_loop()]
    return _loop[0]
