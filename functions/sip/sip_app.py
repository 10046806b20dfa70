"""POST /sip: OpenAI's incoming-call webhooks (`realtime.call.incoming`, `live.transport.incoming`
and its deprecated name `live.call.incoming`) -> verify, decide, accept, launch the observer.

One pending SIP call fires both a Realtime and a Live webhook, with different ids; the first accept
or reject through either API decides it. So each webhook accepts only the calls whose agent profile
uses its API and leaves the others alone (200, never a reject: a reject would win the call).

Exactly once per delivery, across instances: the `webhook-id` is claimed in the call store before
anything happens (`store.delivery`), so a redelivered or concurrent duplicate is answered without a
second accept; a competing decision (`decision_already_made`) is a quiet 200.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel, ValidationError

from shared import deps, log, metrics, webhooks
from shared.calls import IncomingCall, answer_call, incoming_call
from shared.errors import ClientError
from shared.launcher import ObserveRequest
from shared.log import logger
from shared.policy import caller_number, mask_number
from shared.web import create_app, error_responses, make_handler, read_body

MAX_WEBHOOK_BYTES = 256 * 1024


class WebhookEvent(BaseModel):
    id: str = ""
    type: str
    data: dict[str, Any] = {}


app = create_app()

# The body is verified as raw bytes before it is parsed, so FastAPI never reads it: the contract states
# it (a WebhookEvent; scripts/make_openapi.py adds its schema) and the signature headers, which are no
# FastAPI parameters because a missing or bad one is a 401, not a 400.
WEBHOOK = {
    "parameters": [
        {"name": name, "in": "header", "required": True, "schema": {"type": "string"}}
        for name in webhooks.HEADERS
    ],
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/WebhookEvent"}}},
    },
}


@app.post(
    "/sip",
    operation_id="incoming_call",
    summary="OpenAI's incoming SIP call webhooks, Realtime and GPT-Live (Standard Webhooks signature); "
    "accepts the calls whose agent profile uses the webhook's API.",
    response_class=Response,
    responses={
        200: {"description": "Handled (accepted, refused by policy, ignored or a duplicate)."},
        **error_responses(400, 401, 409, 413, 500, 502, 503, 504),
    },
    openapi_extra=WEBHOOK,
)
async def incoming_call_webhook(request: Request) -> Response:
    body = await read_body(request, max_bytes=MAX_WEBHOOK_BYTES)
    webhooks.verify(body, request.headers, deps.secret_store().signing_secret())
    event = _parse_event(body)
    webhook_id = request.headers.get("webhook-id", "")
    call = incoming_call(event.type, event.data)
    if call is None:
        logger.info("webhook ignored", extra={"event_type": event.type[:80], "webhook_id": webhook_id})
        metrics.emit(metrics.WEBHOOKS_IGNORED, reason="event_type")
        return Response(status_code=200)
    # The profile follows the dialed number only: `From` is the caller's to write (allow/deny lists only).
    # Chosen before the delivery is claimed, so an invalid agents.yaml is a 500 that leaves no state.
    agent = deps.agents().route(call.header("To"))
    caller = mask_number(caller_number(call.header("From")))
    dialed = mask_number(caller_number(call.header("To")))
    log.append_keys(call_id=call.call_id, webhook_id=webhook_id, source="sip", agent=agent.name, api=call.api)
    logger.info("incoming call", extra={"from": caller, "to": dialed})
    if agent.settings.voice_api != call.api:
        _leave_to_other_api(call, agent.settings.voice_api)
        return Response(status_code=200)
    if call.media_security == "rtp":
        logger.warning("SIP call without SRTP: GPT-Live requires SRTP, the call may carry silence")

    store = deps.call_store()
    with store.delivery(webhook_id) as delivery:
        if delivery.duplicate:
            metrics.emit(metrics.DUPLICATES_SUPPRESSED, kind="webhook", api=call.api)
            logger.info("duplicate webhook suppressed", extra={"delivery_state": delivery.state})
            if delivery.state == "in_progress":
                # Not yet known whether that delivery will succeed: OpenAI retries later and learns then.
                raise ClientError(409, "This delivery is being handled; retry later")
            return Response(status_code=200)
        deps.prepare_call_start()  # AWS clients build in the background during the accept
        if delivery.state == "new":
            grant = await answer_call(
                call,
                body=deps.sip_accept_body(agent.name),
                client=deps.openai_client(),
                store=store,
                policy=deps.caller_policy(),
                settings=deps.settings(),
                webhook_sent_at=request.headers.get("webhook-timestamp", ""),
            )
            if grant is None:  # refused, the caller hung up first, or already decided elsewhere
                return Response(status_code=200)
            delivery.accept(grant)
        else:
            logger.info("call already accepted by an earlier delivery; starting its observer again")
        # In the background: the hangup at the call's time limit (its granted length).
        deps.hard_stop().schedule(call.call_id, limit_seconds=delivery.grant.seconds)
        deps.observer_launcher().launch(
            ObserveRequest(
                call_id=call.call_id,
                source="sip",
                call_started_at=time.time(),
                agent=agent.name,
                caller=caller,
                dialed=dialed,
                max_seconds=delivery.grant.seconds,
                minutes_day=delivery.grant.day,
            )
        )
    return Response(status_code=200)


def _leave_to_other_api(call: IncomingCall, profile_api: str) -> None:
    """The call's profile uses the other API, whose own webhook accepts it: answer 200 and do nothing
    (the project must be subscribed to that API's event too, or nobody answers the call)."""
    logger.info("call left to the other API", extra={"profile_api": profile_api})
    metrics.emit(metrics.WEBHOOKS_IGNORED, reason="other_api", api=call.api)


def _parse_event(body: bytes) -> WebhookEvent:
    try:
        return WebhookEvent.model_validate_json(body)
    except ValidationError:
        raise ClientError(400, "Webhook body is not a JSON event") from None


handler = make_handler(app)
