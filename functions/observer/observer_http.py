"""POST /observer/{call_id}: answers 202 at once and starts the observer worker by an async invoke."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.responses import JSONResponse

from shared import deps
from shared.launcher import ObserveRequest, ObserverLauncher
from shared.upstream import CALL_ID_PATTERN
from shared.web import create_app, make_handler, read_body

# The route takes no body; anything beyond a token amount is refused.
MAX_BODY_BYTES = 1024

app = create_app()


@app.post("/observer/{call_id}", status_code=202)
async def observe_call(
    request: Request,
    call_id: Annotated[str, Path(pattern=CALL_ID_PATTERN.pattern)],
    launcher: Annotated[ObserverLauncher, Depends(deps.use_observer_launcher)],
) -> JSONResponse:
    await read_body(request, max_bytes=MAX_BODY_BYTES)
    launcher.launch(ObserveRequest(call_id=call_id, source="api"))
    return JSONResponse({"call_id": call_id, "status": "starting"}, status_code=202)


handler = make_handler(app)
