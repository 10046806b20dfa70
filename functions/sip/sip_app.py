"""POST /sip: OpenAI's `realtime.call.incoming` webhook -> verify, accept the call, start the observer.

Exactly once per delivery, across instances: the `webhook-id` is claimed in the call store before
anything happens, so a redelivered or concurrent duplicate is answered without a second accept.
"""

from __future__ import annotations

import json
import time
from functools import lru_cache
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from pydantic import BaseModel, Field, ValidationError
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from shared import deps, metrics
from shared.calls import accept_with_retries
from shared.errors import ClientError, ServiceError, UpstreamError
from shared.launcher import ObserveRequest, ObserverLauncher
from shared.log import logger
from shared.policy import BUSY, CallerPolicy
from shared.secrets import SecretStore
from shared.session import SessionConfig, check_sip_session
from shared.settings import Settings
from shared.store import CallStore
from shared.upstream import CALL_ID_PATTERN, OpenAIClient
from shared.web import create_app, make_handler, read_body

MAX_WEBHOOK_BYTES = 256 * 1024
INCOMING_CALL = "realtime.call.incoming"
# A concurrency slot outlives the call limit by this much, in case its observer never releases it.
SLOT_GRACE_SECONDS = 120

app = create_app()


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


# The body is read raw (the signature covers its exact bytes): declare it and the signature headers.
WEBHOOK_OPENAPI: dict[str, Any] = {
    "parameters": [
        {"name": name, "in": "header", "required": True, "schema": {"type": "string"}}
        for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
    ],
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": WebhookEvent.model_json_schema()}},
    },
}


@app.post("/sip", openapi_extra=WEBHOOK_OPENAPI)
async def incoming_call(
    request: Request,
    client: Annotated[OpenAIClient, Depends(deps.use_openai_client)],
    session: Annotated[SessionConfig, Depends(deps.use_session_config)],
    launcher: Annotated[ObserverLauncher, Depends(deps.use_observer_launcher)],
    secrets: Annotated[SecretStore, Depends(deps.use_secret_store)],
    store: Annotated[CallStore, Depends(deps.use_call_store)],
    policy: Annotated[CallerPolicy, Depends(deps.use_caller_policy)],
    settings: Annotated[Settings, Depends(deps.use_settings)],
) -> Response:
    body = await read_body(request, max_bytes=MAX_WEBHOOK_BYTES)
    _verify(body, dict(request.headers), secrets.signing_secret())
    event = _parse_event(body)
    delivery = request.headers.get("webhook-id", "")
    if event.type != INCOMING_CALL:
        logger.info("webhook ignored", extra={"event_type": event.type, "webhook_id": delivery})
        return Response(status_code=200)
    try:
        call = IncomingCall.model_validate(event.data)
    except ValidationError:
        raise ClientError(400, "Webhook data.call_id is missing or malformed") from None

    logger.append_keys(call_id=call.call_id, webhook_id=delivery, source="sip")
    logger.info("incoming call", extra={"from": call.header("From")[:80], "to": call.header("To")[:80]})
    state = store.begin_delivery(delivery)
    if state in ("done", "in_progress"):
        metrics.emit(metrics.DUPLICATES_SUPPRESSED, kind="webhook")
        logger.info("duplicate webhook suppressed", extra={"delivery_state": state})
        if state == "in_progress":
            # Not yet known whether that delivery will succeed: OpenAI retries later and learns then.
            raise ClientError(409, "This delivery is being handled; retry later")
        return Response(status_code=200)

    if state == "new":
        try:
            accepted = await _answer(call, client, session, store, policy, settings, request)
        except BaseException:
            store.abandon_delivery(delivery)  # the redelivery starts from scratch
            raise
        if not accepted:
            store.mark_delivery(delivery, "done")
            return Response(status_code=200)
        store.mark_delivery(delivery, "accepted")
    else:
        logger.info("call already accepted by an earlier delivery; starting its observer again")
    # If this launch fails the record stays `accepted`: a redelivery only starts the observer (whose
    # lease keeps it to one), it never accepts twice.
    launcher.launch(ObserveRequest(call_id=call.call_id, source="sip", call_started_at=time.time()))
    store.mark_delivery(delivery, "done")
    return Response(status_code=200)


async def _answer(
    call: IncomingCall,
    client: OpenAIClient,
    session: SessionConfig,
    store: CallStore,
    policy: CallerPolicy,
    settings: Settings,
    request: Request,
) -> bool:
    """Apply the caller policy, then accept: True when the call is accepted and needs an observer."""
    payload = check_sip_session(session.to_json())
    decision = policy.check(call.header("From"))
    if not decision.allowed:
        await _reject(client, call.call_id, decision.status_code, decision.reason)
        return False
    slot = policy.max_concurrent_calls > 0
    if slot:
        until = time.time() + (settings.max_call_seconds or 3600) + SLOT_GRACE_SECONDS
        if not store.take_slot(call.call_id, limit=policy.max_concurrent_calls, until=until):
            await _reject(client, call.call_id, BUSY, "concurrent call limit reached")
            return False
    logger.info("caller policy: accept")
    try:
        attempt = await accept_with_retries(client, call.call_id, payload, settings)
    except UpstreamError as exc:
        if slot:
            store.release_slot(call.call_id)
        if exc.upstream_status == 404:
            # The caller hung up before we answered (webhooks can arrive late): nothing left to do.
            logger.info("call gone before accept")
            return False
        metrics.emit(metrics.ACCEPT_FAILURES)
        logger.error("accept failed", extra={"reason": exc.reason, "upstream_status": exc.upstream_status})
        raise
    except BaseException:
        if slot:
            store.release_slot(call.call_id)
        raise
    logger.info("call accepted", extra={"attempt": attempt})
    metrics.emit(metrics.CALLS_ACCEPTED)
    metrics.emit(metrics.CALLS_STARTED, source="sip")
    sent = request.headers.get("webhook-timestamp", "")
    if sent.isdigit():
        metrics.milliseconds(metrics.WEBHOOK_TO_ACCEPT, (time.time() - int(sent)) * 1000)
    return True


async def _reject(client: OpenAIClient, call_id: str, status_code: int, reason: str) -> None:
    logger.info("caller policy: reject", extra={"sip_status": status_code, "reason": reason})
    metrics.emit(metrics.CALLS_REJECTED, sip_status=str(status_code))
    try:
        await client.reject_call(call_id, status_code)
    except UpstreamError as exc:
        if exc.upstream_status != 404:  # 404: the caller hung up already, which is just as good
            raise


@lru_cache(maxsize=4)
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


handler = make_handler(app)
