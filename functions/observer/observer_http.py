"""POST /observer/{call_id}: answers 202 at once and starts the observer worker by an async invoke."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from shared import deps
from shared.launcher import ObserveRequest
from shared.voice_api import VOICE_CALL_ID_PATTERN
from shared.web import create_app, error_responses, make_handler, read_body

# The route takes no body; anything beyond a token amount is refused.
MAX_BODY_BYTES = 1024


class ObserverStarting(BaseModel):
    call_id: str
    status: Literal["starting"]


app = create_app()


@app.post(
    "/observer/{call_id}",
    operation_id="observe_call",
    summary="Starts the observer for a call made directly from the browser; answers at once.",
    status_code=202,
    response_class=JSONResponse,
    responses={
        202: {"model": ObserverStarting, "description": "The observer is starting."},
        **error_responses(400, 413, 500),
    },
)
async def observe_call(
    request: Request, call_id: Annotated[str, Path(pattern=VOICE_CALL_ID_PATTERN.pattern)]
) -> JSONResponse:
    await read_body(request, max_bytes=MAX_BODY_BYTES)
    # The worker needs the key for the sideband: without one, say so now, as /rtc and /token do.
    deps.secret_store().api_key()
    deps.observer_launcher().launch(ObserveRequest(call_id=call_id, source="api"))
    return JSONResponse(ObserverStarting(call_id=call_id, status="starting").model_dump(), status_code=202)


handler = make_handler(app)
