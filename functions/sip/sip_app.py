"""POST /sip: OpenAI's `realtime.call.incoming` webhook -> verify, accept the call, start the observer."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from pydantic import BaseModel, Field, ValidationError
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from shared import deps
from shared.errors import ClientError, ServiceError, UpstreamError
from shared.launcher import ObserveRequest, ObserverLauncher
from shared.log import logger
from shared.secrets import SecretStore
from shared.session import SessionConfig
from shared.upstream import CALL_ID_PATTERN, OpenAIClient
from shared.web import create_app, make_handler, read_body

MAX_WEBHOOK_BYTES = 256 * 1024
INCOMING_CALL = "realtime.call.incoming"

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


@app.post("/sip")
async def incoming_call(
    request: Request,
    client: Annotated[OpenAIClient, Depends(deps.use_openai_client)],
    session: Annotated[SessionConfig, Depends(deps.use_session_config)],
    launcher: Annotated[ObserverLauncher, Depends(deps.use_observer_launcher)],
    secrets: Annotated[SecretStore, Depends(deps.use_secret_store)],
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

    log = {"call_id": call.call_id, "webhook_id": delivery, "source": "sip"}
    logger.info(
        "incoming call", extra={**log, "from": call.header("From")[:80], "to": call.header("To")[:80]}
    )
    try:
        await client.accept_call(call.call_id, session.to_json())
    except UpstreamError as exc:
        if exc.upstream_status != 404:
            raise
        # The caller hung up before we answered (webhooks can arrive late): nothing left to do.
        logger.info("call gone before accept", extra=log)
        return Response(status_code=200)
    logger.info("call accepted", extra=log)
    launcher.launch(ObserveRequest(call_id=call.call_id, source="sip"))
    return Response(status_code=200)


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
        raise ClientError(401, "Invalid signature") from None


def _parse_event(body: bytes) -> WebhookEvent:
    try:
        return WebhookEvent.model_validate(json.loads(body))
    except (ValueError, ValidationError):
        raise ClientError(400, "Webhook body is not a JSON event") from None


handler = make_handler(app)
