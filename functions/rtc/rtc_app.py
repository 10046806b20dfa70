"""POST /rtc: the browser's SDP offer -> OpenAI /realtime/calls -> the SDP answer; starts the observer."""

from __future__ import annotations

from fastapi import Request, Response
from starlette.middleware import Middleware

from shared import deps, limits, log, metrics
from shared.errors import ClientError
from shared.launcher import ObserveRequest
from shared.log import logger
from shared.origins import OriginPolicy
from shared.upstream import call_api
from shared.web import QueryFlag, create_app, error_responses, make_handler, read_body

# A real offer is 2-10 kB (audio plus video); anything far larger is not a browser's offer.
MAX_OFFER_BYTES = 64 * 1024

app = create_app(middleware=[Middleware(OriginPolicy, methods=("POST",))])

# The offer is read raw (checked here, not by FastAPI), so its schema is stated for the contract.
SDP_OFFER = {
    "required": True,
    "content": {
        "application/sdp": {"schema": {"type": "string", "pattern": "^v=0", "maxLength": MAX_OFFER_BYTES}}
    },
}
SDP_ANSWER = {
    "description": "The SDP answer. `X-Call-Id` names the call.",
    "headers": {
        "X-Call-Id": {"schema": {"type": "string"}},
        "Cache-Control": {"schema": {"const": "no-store"}},
    },
    "content": {"application/sdp": {"schema": {"type": "string"}}},
}


@app.post(
    "/rtc",
    operation_id="create_call",
    summary="Browser SDP offer -> OpenAI /v1/realtime/calls -> SDP answer; starts the observer.",
    response_class=Response,
    responses={200: SDP_ANSWER, **error_responses(400, 403, 413, 415, 429, 500, 502, 503, 504)},
    openapi_extra={"requestBody": SDP_OFFER},
)
async def create_call(request: Request, video: QueryFlag = False) -> Response:
    body = await read_body(request, max_bytes=MAX_OFFER_BYTES, content_types=("application/sdp",))
    offer = _sdp_text(body)
    session = deps.sessions()["webrtc"].to_json()  # a misconfigured session fails before anything starts
    # Spend limits: 429 before anything goes upstream.
    grant = limits.admit_rtc(request, deps.settings(), deps.call_store)
    deps.prepare_call_start()  # AWS clients build in the background while OpenAI answers
    try:
        call = await deps.openai_client().create_call(offer, session)
    except BaseException:
        limits.refund(grant, store=deps.call_store())  # no call, so none of its minutes were used
        raise
    log.append_keys(call_id=call.call_id)
    logger.info("call created", extra={"source": "webrtc", "video": video})
    metrics.emit(metrics.CALLS_STARTED, source="webrtc", api=call_api(call.call_id))
    # In the background: the hangup at the call's time limit (its granted length).
    deps.hard_stop().schedule(call.call_id, limit_seconds=grant.seconds)
    deps.observer_launcher().launch(
        ObserveRequest(
            call_id=call.call_id, source="webrtc", max_seconds=grant.seconds, minutes_day=grant.day
        )
    )
    # X-Call-Id: the page shows it (same origin, so no CORS exposure is needed).
    headers = {"Cache-Control": "no-store", "X-Call-Id": call.call_id}
    return Response(call.sdp, media_type="application/sdp", headers=headers)


def _sdp_text(body: bytes) -> str:
    try:
        offer = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ClientError(400, "SDP offer must be UTF-8 text") from None
    if not offer.startswith("v=0"):
        raise ClientError(400, "Body is not an SDP offer (must start with v=0)")
    return offer


handler = make_handler(app)
