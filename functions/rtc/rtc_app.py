"""POST /rtc: the browser's SDP offer -> OpenAI /realtime/calls -> the SDP answer; starts the observer."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Response

from shared import deps, metrics
from shared.errors import ClientError
from shared.launcher import ObserveRequest, ObserverLauncher
from shared.log import logger
from shared.origins import OriginPolicy
from shared.session import SessionConfig
from shared.upstream import OpenAIClient
from shared.web import create_app, make_handler, read_body

# A real offer is 2-10 kB (audio plus video); anything far larger is not a browser's offer.
MAX_OFFER_BYTES = 64 * 1024

app = create_app()
app.add_middleware(OriginPolicy, methods=("POST",))

# The body is read raw (`read_body`), so FastAPI cannot infer it: declare it for the OpenAPI document.
OFFER_BODY = {
    "required": True,
    "content": {
        "application/sdp": {"schema": {"type": "string", "pattern": "^v=0", "maxLength": MAX_OFFER_BYTES}}
    },
}


@app.post("/rtc", openapi_extra={"requestBody": OFFER_BODY})
async def create_call(
    request: Request,
    client: Annotated[OpenAIClient, Depends(deps.use_openai_client)],
    session: Annotated[SessionConfig, Depends(deps.use_session_config)],
    launcher: Annotated[ObserverLauncher, Depends(deps.use_observer_launcher)],
    video: bool = False,
) -> Response:
    body = await read_body(request, max_bytes=MAX_OFFER_BYTES, content_types=("application/sdp",))
    offer = _sdp_text(body)
    call = await client.create_call(offer, session.to_json())
    logger.append_keys(call_id=call.call_id)
    logger.info("call created", extra={"source": "webrtc", "video": video})
    metrics.emit(metrics.CALLS_STARTED, source="webrtc")
    launcher.launch(ObserveRequest(call_id=call.call_id, source="webrtc"))
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
