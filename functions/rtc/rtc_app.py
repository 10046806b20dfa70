"""POST /rtc: the browser's SDP offer -> OpenAI (/realtime/calls, or GPT-Live's /live/sessions) -> the SDP
answer; starts the observer."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from starlette.middleware import Middleware

from shared import deps, limits, log, metrics
from shared.errors import ClientError
from shared.launcher import ObserveRequest
from shared.live_session import live_session, webrtc_create_body
from shared.log import logger
from shared.origins import OriginPolicy
from shared.settings import VoiceApi
from shared.web import QueryFlag, VoiceApiQuery, create_app, error_responses, make_handler, read_body

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
    "description": "The SDP answer. `X-Call-Id` names the call (`rtc_...` on Realtime, the GPT-Live session "
    "`live_...`); `X-Voice-Api` says which API serves it.",
    "headers": {
        "X-Call-Id": {"schema": {"type": "string"}},
        "X-Voice-Api": {"schema": {"enum": ["realtime", "live"]}},
        "Cache-Control": {"schema": {"const": "no-store"}},
    },
    "content": {"application/sdp": {"schema": {"type": "string"}}},
}


@app.post(
    "/rtc",
    operation_id="create_call",
    summary="Browser SDP offer -> OpenAI (/v1/realtime/calls, or /v1/live/sessions for GPT-Live) -> SDP "
    "answer; starts the observer.",
    response_class=Response,
    responses={200: SDP_ANSWER, **error_responses(400, 403, 413, 415, 429, 500, 502, 503, 504)},
    openapi_extra={"requestBody": SDP_OFFER},
)
async def create_call(request: Request, video: QueryFlag = False, api: VoiceApiQuery = None) -> Response:
    body = await read_body(request, max_bytes=MAX_OFFER_BYTES, content_types=("application/sdp",))
    offer = _sdp_text(body)
    voice_api = deps.browser_api(api)
    if video and voice_api == "live":
        raise ClientError(400, "GPT-Live takes no video: send audio only, or use api=realtime")
    upstream_body = _upstream_body(voice_api, offer)  # a misconfigured session fails before anything starts
    # Spend limits: 429 before anything goes upstream.
    grant = limits.admit_rtc(request, deps.settings(), deps.call_store)
    deps.prepare_call_start()  # AWS clients build in the background while OpenAI answers
    try:
        call_id, answer = await _create(voice_api, offer, upstream_body)
    except BaseException:
        limits.refund(grant, store=deps.call_store())  # no call, so none of its minutes were used
        raise
    log.append_keys(call_id=call_id)
    logger.info("call created", extra={"source": "webrtc", "api": voice_api, "video": video})
    metrics.emit(metrics.CALLS_STARTED, source="webrtc", api=voice_api)
    # In the background: the hangup at the call's time limit (its granted length).
    deps.hard_stop().schedule(call_id, limit_seconds=grant.seconds)
    # The observer learns the API from the id (`rtc_` / `live_`): the request is the same for both.
    deps.observer_launcher().launch(
        ObserveRequest(call_id=call_id, source="webrtc", max_seconds=grant.seconds, minutes_day=grant.day)
    )
    # X-Call-Id: the page shows it (same origin, so no CORS exposure is needed).
    headers = {"Cache-Control": "no-store", "X-Call-Id": call_id, "X-Voice-Api": voice_api}
    return Response(answer, media_type="application/sdp", headers=headers)


def _upstream_body(voice_api: VoiceApi, offer: str) -> dict[str, Any]:
    """What goes upstream with the offer: the default profile's Realtime session, or GPT-Live's whole
    create body (JSON `{session, transport: {type: "webrtc", sdp}}`, the offer inside)."""
    if voice_api == "realtime":
        return deps.default_session_body("webrtc")
    session = live_session(deps.agents().default.settings, "webrtc", deps.tool_registry())
    return webrtc_create_body(session, offer).to_json()


async def _create(voice_api: VoiceApi, offer: str, upstream_body: dict[str, Any]) -> tuple[str, str]:
    """Creates the call upstream: -> (its id, `rtc_...` or `live_...`; the SDP answer)."""
    client = deps.openai_client()
    if voice_api == "live":
        created = await client.create_live_session(upstream_body)
        return created.session_id, created.sdp
    call = await client.create_call(offer, upstream_body)
    return call.call_id, call.sdp


def _sdp_text(body: bytes) -> str:
    try:
        offer = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ClientError(400, "SDP offer must be UTF-8 text") from None
    if not offer.startswith("v=0"):
        raise ClientError(400, "Body is not an SDP offer (must start with v=0)")
    return offer


handler = make_handler(app)
