"""POST /observer/{call_id}: answers 202 at once and starts the observer worker by an async invoke."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from shared import deps
from shared.launcher import ObserveRequest
from shared.upstream import CALL_ID_PATTERN
from shared.web import create_app, make_handler, path_param, read_body

# The route takes no body; anything beyond a token amount is refused.
MAX_BODY_BYTES = 1024


async def observe_call(request: Request) -> JSONResponse:
    call_id = path_param(request, "call_id", CALL_ID_PATTERN)
    await read_body(request, max_bytes=MAX_BODY_BYTES)
    deps.observer_launcher().launch(ObserveRequest(call_id=call_id, source="api"))
    return JSONResponse({"call_id": call_id, "status": "starting"}, status_code=202)


app = create_app([Route("/observer/{call_id}", observe_call, methods=["POST"])])
handler = make_handler(app)
