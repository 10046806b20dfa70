"""GET|POST /token: mints an ephemeral client secret so a browser can connect to OpenAI directly."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import JSONResponse

from shared import deps
from shared.log import logger
from shared.origins import OriginPolicy
from shared.session import SessionConfig
from shared.settings import Settings
from shared.upstream import OpenAIClient
from shared.web import create_app, make_handler, read_body

# A POST body is read (so its size is bounded) and then ignored: nothing in it changes the session.
MAX_BODY_BYTES = 4 * 1024

app = create_app()
app.add_middleware(OriginPolicy, methods=("GET", "POST"))


@app.get("/token", operation_id="mint_token_get")
@app.post(
    "/token",
    operation_id="mint_token_post",
    openapi_extra={"requestBody": {"required": False, "content": {"application/json": {"schema": {}}}}},
)
async def mint_token(
    request: Request,
    client: Annotated[OpenAIClient, Depends(deps.use_openai_client)],
    session: Annotated[SessionConfig, Depends(deps.use_session_config)],
    settings: Annotated[Settings, Depends(deps.use_settings)],
) -> JSONResponse:
    await read_body(request, max_bytes=MAX_BODY_BYTES)
    # The session comes from server settings only: nothing in the request can change it.
    secret = await client.create_client_secret(session.to_json(), settings.token_ttl_seconds)
    logger.info("client secret minted", extra={"expires_at": secret["expires_at"]})
    body = {
        "value": secret["value"],
        "expires_at": secret["expires_at"],
        "calls_url": f"{client.base_url}/realtime/calls",  # where the browser posts its offer
        "model": session.model,
    }
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


handler = make_handler(app)
