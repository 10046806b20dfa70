"""POST /sip: OpenAI's `realtime.call.incoming` webhook -> verify, accept the call, start the observer.

Exactly once per delivery, across instances: the `webhook-id` is claimed in the call store before
anything happens, so a redelivered or concurrent duplicate is answered without a second accept.
"""

from __future__ import annotations

import json
import time
from functools import lru_cache
from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel, Field, ValidationError
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from shared import deps, metrics, snapstart
from shared.calls import answer_call
from shared.errors import ClientError, ServiceError
from shared.launcher import ObserveRequest
from shared.limits import NO_GRANT
from shared.log import logger
from shared.policy import caller_number, mask_number
from shared.upstream import CALL_ID_PATTERN
from shared.web import create_app, error_responses, make_handler, read_body

MAX_WEBHOOK_BYTES = 256 * 1024
INCOMING_CALL = "realtime.call.incoming"
LIVE_EVENT_PREFIX = "live."  # OpenAI's Live API events (e.g. live.transport.incoming): never ours


class SipHeader(BaseModel):
    name: str
    value: str


class IncomingCall(BaseModel):
    call_id: str = Field(pattern=CALL_ID_PATTERN.pattern)
    sip_headers: list[SipHeader] = []  # untrusted caller metadata

    def header(self, name: str) -> str:
        return next((h.value for h in self.sip_headers if h.name.lower() == name.lower()), "")


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
        for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
    ],
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/WebhookEvent"}}},
    },
}


@app.post(
    "/sip",
    operation_id="incoming_call",
    summary="OpenAI's realtime.call.incoming webhook (Standard Webhooks signature); accepts the call.",
    response_class=Response,
    responses={
        200: {"description": "Handled (accepted, refused by policy, ignored or a duplicate)."},
        **error_responses(400, 401, 409, 413, 500, 502, 503, 504),
    },
    openapi_extra=WEBHOOK,
)
async def incoming_call(request: Request) -> Response:
    body = await read_body(request, max_bytes=MAX_WEBHOOK_BYTES)
    _verify(body, dict(request.headers), deps.secret_store().signing_secret())
    event = _parse_event(body)
    delivery = request.headers.get("webhook-id", "")
    if event.type != INCOMING_CALL:
        # Explicitly never accepted: live.* (OpenAI's Live API). One pending SIP call can fire both
        # live.transport.incoming and realtime.call.incoming, and whichever accept wins decides the API.
        live = event.type.startswith(LIVE_EVENT_PREFIX)
        logger.info(
            "webhook ignored", extra={"event_type": event.type[:80], "webhook_id": delivery, "live": live}
        )
        metrics.emit(metrics.WEBHOOKS_IGNORED)
        return Response(status_code=200)
    try:
        call = IncomingCall.model_validate(event.data)
    except ValidationError:
        raise ClientError(400, "Webhook data.call_id is missing or malformed") from None

    # The profile follows the dialed number only: `From` is the caller's to write (allow/deny lists only).
    # Chosen before the delivery is claimed, so an invalid agents.yaml is a 500 that leaves no state.
    agent = deps.agents().route(call.header("To"))
    caller = mask_number(caller_number(call.header("From")))
    dialed = mask_number(caller_number(call.header("To")))
    logger.append_keys(call_id=call.call_id, webhook_id=delivery, source="sip", agent=agent.name)
    logger.info("incoming call", extra={"from": caller, "to": dialed})
    store = deps.call_store()
    state = store.begin_delivery(delivery)
    if state in ("done", "in_progress"):
        metrics.emit(metrics.DUPLICATES_SUPPRESSED, kind="webhook")
        logger.info("duplicate webhook suppressed", extra={"delivery_state": state})
        if state == "in_progress":
            # Not yet known whether that delivery will succeed: OpenAI retries later and learns then.
            raise ClientError(409, "This delivery is being handled; retry later")
        return Response(status_code=200)

    deps.prepare_call_start()  # AWS clients build in the background during the accept
    grant = NO_GRANT
    if state == "new":
        try:
            accepted = await answer_call(
                call.call_id,
                call.header("From"),
                client=deps.openai_client(),
                session=deps.session_for(agent.name, "sip"),
                store=store,
                policy=deps.caller_policy(),
                settings=deps.settings(),
                webhook_sent_at=request.headers.get("webhook-timestamp", ""),
            )
        except BaseException:
            store.abandon_delivery(delivery)  # the redelivery starts from scratch
            raise
        if accepted is None:
            store.mark_delivery(delivery, "done")
            return Response(status_code=200)
        grant = accepted
        store.mark_delivery(delivery, "accepted", grant=grant)
    else:
        # Nothing is reserved again: the observer gets the grant the accepting delivery stored.
        grant = store.delivery_grant(delivery) or NO_GRANT
        logger.info("call already accepted by an earlier delivery; starting its observer again")
    # If this launch fails the record stays `accepted`: a redelivery only starts the observer (whose
    # lease keeps it to one), it never accepts twice.
    # In the background: the hangup at the call's time limit (its granted length).
    deps.hard_stop().schedule(call.call_id, limit_seconds=grant.seconds)
    deps.observer_launcher().launch(
        ObserveRequest(
            call_id=call.call_id,
            source="sip",
            call_started_at=time.time(),
            agent=agent.name,
            caller=caller,
            dialed=dialed,
            max_seconds=grant.seconds,
            minutes_day=grant.day,
        )
    )
    store.mark_delivery(delivery, "done")
    return Response(status_code=200)


@lru_cache(maxsize=4)  # keyed by the secret itself: emptied around a SnapStart snapshot (below)
def _webhook(secret: str) -> Webhook:
    return Webhook(secret)  # accepts `whsec_<base64>` and bare base64


def _verify(body: bytes, headers: dict[str, str], secret: str) -> None:
    try:
        webhook = _webhook(secret)
    except ValueError:
        raise ServiceError("Server misconfigured: OPENAI_SIGNING_SECRET is not a valid secret") from None
    try:
        webhook.verify(body, headers, json_parse=False)
    except (WebhookVerificationError, ValueError):
        # ValueError covers malformed entries (no comma, bad base64) and bodies that are not UTF-8.
        metrics.emit(metrics.SIGNATURE_REJECTED)
        raise ClientError(401, "Invalid signature") from None


def _parse_event(body: bytes) -> WebhookEvent:
    try:
        return WebhookEvent.model_validate(json.loads(body))
    except (ValueError, ValidationError):
        raise ClientError(400, "Webhook body is not a JSON event") from None


snapstart.on_restore(_webhook.cache_clear)
handler = make_handler(app)
