"""GET|POST /token: mints an ephemeral client secret so a browser can connect to OpenAI directly.

Realtime only: GPT-Live has no ephemeral keys (a Live browser call goes through POST /rtc?api=live).
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.middleware import Middleware

from shared import deps, limits
from shared.errors import ClientError
from shared.log import logger
from shared.origins import OriginPolicy
from shared.settings import VoiceApi
from shared.web import ErrorBody, VoiceApiQuery, create_app, error_responses, make_handler, read_body

# A POST body is read (so its size is bounded) and then ignored: nothing in it changes the session.
MAX_BODY_BYTES = 4 * 1024


class Token(BaseModel):
    """An ephemeral client secret and where to post the offer with it."""

    value: str
    expires_at: int
    calls_url: str  # where the browser posts its offer
    model: str


app = create_app(middleware=[Middleware(OriginPolicy, methods=("GET", "POST"))])

MINTED = {
    "model": Token,
    "description": "An ephemeral client secret and where to post the offer with it.",
    "headers": {"Cache-Control": {"schema": {"const": "no-store"}}},
}
ERRORS = {
    **error_responses(400, 403, 413, 429, 500, 502, 503, 504),
    409: {
        "model": ErrorBody,
        "description": "The default agent profile uses GPT-Live, which has no ephemeral keys: use POST "
        "/rtc, or ask for a Realtime key with `?api=realtime`.",
    },
}
ANY_BODY = {"requestBody": {"required": False, "content": {"application/json": {"schema": {}}}}}


@app.get(
    "/token",
    operation_id="mint_token_get",
    summary="Mints an ephemeral client secret for a direct browser connection.",
    response_class=JSONResponse,
    responses={200: MINTED, **ERRORS},
)
@app.post(
    "/token",
    operation_id="mint_token_post",
    summary="The same as GET; a body is size-checked and otherwise ignored.",
    response_class=JSONResponse,
    responses={200: MINTED, **ERRORS},
    openapi_extra=ANY_BODY,
)
async def mint_token(request: Request, api: VoiceApiQuery = None) -> JSONResponse:
    await read_body(request, max_bytes=MAX_BODY_BYTES)
    _realtime_only(api)
    # Spend limits: 429 before anything goes upstream.
    limits.admit_token(request, deps.settings(), deps.call_store)
    client, session = deps.openai_client(), deps.sessions()["browser"]
    # The session comes from server settings only: nothing in the request can change it.
    body = deps.default_session_body("browser")
    secret = await client.create_client_secret(body, deps.settings().token_ttl_seconds)
    logger.info("client secret minted", extra={"expires_at": secret["expires_at"]})
    token = Token(
        value=secret["value"],
        expires_at=secret["expires_at"],
        calls_url=f"{client.base_url}/realtime/calls",
        model=session.model,
    )
    return JSONResponse(token.model_dump(), headers={"Cache-Control": "no-store"})


def _realtime_only(api: VoiceApi | None) -> None:
    """GPT-Live has no ephemeral keys: asking for one is a bad request (400); a server whose default
    profile is Live conflicts with a key request that names no API (409: the page then uses /rtc)."""
    if api == "live":
        raise ClientError(400, "GPT-Live has no ephemeral keys: use POST /rtc?api=live")
    if deps.browser_api(api) == "live":
        raise ClientError(
            409,
            "The default profile uses GPT-Live, which has no ephemeral keys: use POST /rtc "
            "(or /token?api=realtime)",
        )


handler = make_handler(app)
