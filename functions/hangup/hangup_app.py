"""The hard stop's target: EventBridge Scheduler invokes this with `{"call_id": ...}` at the call's time
limit (shared/hard_stop.py), whatever became of its observer; it hangs up through the call's API
(`/realtime/calls/{id}/hangup`, `/live/sessions/{id}/hangup`, or `session.close` for a Live WebRTC
session, which has no HTTP hangup).

A call OpenAI no longer knows is over already: nothing to do, not an error. Any other failure raises,
so that Scheduler retries (the schedule's RetryPolicy).
"""

from __future__ import annotations

import asyncio
from typing import Any

from shared import deps, startup
from shared.errors import UpstreamError
from shared.hard_stop import end_call
from shared.log import logger
from shared.upstream import is_call_id

_loop: list[asyncio.AbstractEventLoop] = []  # one per container: the OpenAI client pools per loop
startup.check_at_start()
MESSAGES = {
    "hung_up": "call hung up",
    "already_over": "call already over",
    "closed": "Live session closed",
}


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    call_id = event.get("call_id") if isinstance(event, dict) else None
    if not is_call_id(call_id):
        logger.error("hangup event is not valid", extra={"reason": "hard_stop"})
        return {"outcome": "invalid"}
    assert isinstance(call_id, str)  # is_call_id said so
    ending = end_call(
        call_id, client=deps.openai_client(), settings=deps.settings(), api_key=deps.secret_store().api_key
    )
    try:
        outcome = _event_loop().run_until_complete(ending)
    except UpstreamError:
        logger.error("hard stop hangup failed", extra={"call_id": call_id, "reason": "hard_stop"})
        raise
    logger.info(MESSAGES[outcome], extra={"call_id": call_id, "reason": "hard_stop"})
    return {"call_id": call_id, "outcome": outcome}


def _event_loop() -> asyncio.AbstractEventLoop:
    if not _loop or _loop[0].is_closed():
        _loop[:] = [asyncio.new_event_loop()]
    return _loop[0]
