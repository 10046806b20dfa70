"""POST /rtc: the browser's SDP offer -> OpenAI /realtime/calls -> the SDP answer; starts the observer."""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared import deps, metrics
from shared.errors import ClientError
from shared.launcher import ObserveRequest
from shared.log import logger
from shared.origins import OriginPolicy
from shared.web import create_app, make_handler, query_flag, read_body

# A real offer is 2-10 kB (audio plus video); anything far larger is not a browser's offer.
MAX_OFFER_BYTES = 64 * 1024


async def create_call(request: Request) -> Response:
    video = query_flag(request, "video")
    body = await read_body(request, max_bytes=MAX_OFFER_BYTES, content_types=("application/sdp",))
    offer = _sdp_text(body)
    call = await deps.openai_client().create_call(offer, deps.sessions()["webrtc"].to_json())
    logger.append_keys(call_id=call.call_id)
    logger.info("call created", extra={"source": "webrtc", "video": video})
    metrics.emit(metrics.CALLS_STARTED, source="webrtc")
    deps.observer_launcher().launch(ObserveRequest(call_id=call.call_id, source="webrtc"))
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


app = create_app(
    [Route("/rtc", create_call, methods=["POST"])],
    middleware=[Middleware(OriginPolicy, methods=("POST",))],
)
handler = make_handler(app)
