"""POST /rtc: the browser's SDP offer -> OpenAI /realtime/calls -> the SDP answer; starts the observer."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Response

from shared import deps
from shared.errors import ClientError
from shared.launcher import ObserveRequest, ObserverLauncher
from shared.log import logger
from shared.session import SessionConfig
from shared.upstream import OpenAIClient
from shared.web import create_app, make_handler, read_body

# A real offer is 2-10 kB (audio plus video); anything far larger is not a browser's offer.
MAX_OFFER_BYTES = 64 * 1024

app = create_app()


@app.post("/rtc")
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
    launcher.launch(ObserveRequest(call_id=call.call_id, source="webrtc"))
    return Response(call.sdp, media_type="application/sdp", headers={"Cache-Control": "no-store"})


def _sdp_text(body: bytes) -> str:
    try:
        offer = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ClientError(400, "SDP offer must be UTF-8 text") from None
    if not offer.startswith("v=0"):
        raise ClientError(400, "Body is not an SDP offer (must start with v=0)")
    return offer


handler = make_handler(app)
