"""GET|POST /token: mints an ephemeral client secret so a browser can connect to OpenAI directly."""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from shared import deps
from shared.log import logger
from shared.origins import OriginPolicy
from shared.web import create_app, make_handler, read_body

# A POST body is read (so its size is bounded) and then ignored: nothing in it changes the session.
MAX_BODY_BYTES = 4 * 1024


async def mint_token(request: Request) -> JSONResponse:
    await read_body(request, max_bytes=MAX_BODY_BYTES)
    client, session = deps.openai_client(), deps.sessions()["browser"]
    # The session comes from server settings only: nothing in the request can change it.
    secret = await client.create_client_secret(session.to_json(), deps.settings().token_ttl_seconds)
    logger.info("client secret minted", extra={"expires_at": secret["expires_at"]})
    body = {
        "value": secret["value"],
        "expires_at": secret["expires_at"],
        "calls_url": f"{client.base_url}/realtime/calls",  # where the browser posts its offer
        "model": session.model,
    }
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


app = create_app(
    [Route("/token", mint_token, methods=["GET", "POST"])],
    middleware=[Middleware(OriginPolicy, methods=("GET", "POST"))],
)
handler = make_handler(app)
