"""Which web sites may use the page endpoints (/rtc, /token): `ALLOWED_ORIGINS`, checked on the server.

CORS alone only stops a browser from *reading* a cross-site answer; the upstream call (and its cost)
would already have happened. So a request whose `Origin` is not allowed is refused with 403 before
any route code runs. Requests without `Origin` are not from a browser page and pass (the other
limits still apply). The page's own origin (same host) is always allowed. In AWS the HTTP API's
`CorsConfiguration` answers preflights; locally this middleware does, so both behave alike.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from shared.log import logger
from shared.settings import get_settings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]
]

REFUSED_REASON = "Origin not allowed"
PREFLIGHT_MAX_AGE = "600"


def origin_allowed(origin: str, host: str, allowed: tuple[str, ...]) -> bool:
    """True if `origin` may call: no list configured, listed, or the page's own host."""
    if not allowed:
        return True
    normalized = origin.strip().rstrip("/").lower()
    if normalized in allowed:
        return True
    return bool(host) and urlsplit(normalized).netloc == host.strip().lower()


class OriginPolicy:
    """ASGI middleware: 403 for disallowed origins, CORS headers for allowed ones, preflight answers."""

    def __init__(self, app: ASGIApp, methods: tuple[str, ...]) -> None:
        self.app = app
        self.methods = methods

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        origin = headers.get("origin", "")
        allowed = get_settings().allowed_origin_list
        if not origin:
            await self.app(scope, receive, send)
            return
        if not origin_allowed(origin, headers.get("host", ""), allowed):
            logger.warning("origin refused", extra={"origin": origin[:100], "path": scope.get("path", "")})
            await _respond(send, 403, {"error": REFUSED_REASON}, [])
            return
        cors = (
            [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin")]
            if allowed
            else []
        )
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            preflight = [
                *cors,
                (b"access-control-allow-methods", ", ".join(self.methods).encode()),
                (b"access-control-allow-headers", b"content-type"),
                (b"access-control-max-age", PREFLIGHT_MAX_AGE.encode()),
            ]
            await _respond(send, 204, None, preflight)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start" and cors:
                message["headers"] = [*message.get("headers", []), *cors]
            await send(message)

        await self.app(scope, receive, send_with_cors)


async def _respond(
    send: Callable[[Message], Awaitable[None]], status: int, body: Any, extra: list[tuple[bytes, bytes]]
) -> None:
    raw = b"" if body is None else json.dumps(body).encode()
    headers = [*extra, (b"content-length", str(len(raw)).encode())]
    if body is not None:
        headers.append((b"content-type", b"application/json"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})
