"""What every HTTP function shares: the ASGI app with uniform errors, and the Lambda handler.

The apps are plain Starlette (what FastAPI is built on) behind Mangum. FastAPI itself was measured at
~280 ms of import on a cold start (`make bench`, docs/PERFORMANCE.md), nearly the whole 300 ms budget;
each route reads one raw body and validates it itself, so FastAPI's injection and OpenAPI machinery
bought nothing at run time. The API is described in `openapi.yaml` instead.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mangum import Mangum
from mangum.adapter import DEFAULT_TEXT_MIME_TYPES
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute

from shared import snapstart
from shared.errors import ClientError, ServiceError
from shared.log import logger

SETTLE_SECONDS = 2.0  # at most this long after the response for background work (shared/deps.py settle)
LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]

# Responses of these types go back to API Gateway as plain text, not base64 (the SDP answer above all).
TEXT_MIME_TYPES = [*DEFAULT_TEXT_MIME_TYPES, "application/sdp"]


def error_response(status_code: int, reason: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """Every error body has one shape: `{"error": "<one-line reason>"}`."""
    return JSONResponse({"error": reason}, status_code=status_code, headers=headers)


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    log = logger.warning if exc.status_code < 500 else logger.error
    log("request failed", extra={"status": exc.status_code, "reason": exc.reason, "path": request.url.path})
    return error_response(exc.status_code, exc.reason)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, str(exc.detail), headers=exc.headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # The trace goes to the log; the client gets no detail.
    logger.exception("unhandled error", extra={"path": request.url.path})
    return error_response(500, "Internal error")


def create_app(routes: Sequence[BaseRoute], middleware: Sequence[Middleware] = ()) -> Starlette:
    """An ASGI app with `{"error": ...}` bodies for every failure (404, 405 and 500 included)."""
    return Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={
            ServiceError: _service_error,
            HTTPException: _http_error,
            Exception: _unexpected,
        },
    )


async def read_body(request: Request, *, max_bytes: int, content_types: tuple[str, ...] = ()) -> bytes:
    """The raw body, checked for content type and size before anything else happens."""
    if content_types:
        media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type not in content_types:
            raise ClientError(415, f"Content-Type must be {' or '.join(content_types)}")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise ClientError(413, f"Body larger than {max_bytes} bytes")
    body = await request.body()
    if len(body) > max_bytes:
        raise ClientError(413, f"Body larger than {max_bytes} bytes")
    return body


# What a boolean query parameter may say (the forms pydantic accepts), case-insensitive.
_FLAGS = {
    **dict.fromkeys(("1", "true", "t", "yes", "y", "on"), True),
    **dict.fromkeys(("0", "false", "f", "no", "n", "off"), False),
}


def query_flag(request: Request, name: str, default: bool = False) -> bool:
    """A boolean query parameter (`?video=true`); anything else than a boolean is a 400."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    flag = _FLAGS.get(raw.strip().lower())
    if flag is None:
        raise ClientError(400, f"Invalid request: query.{name} must be true or false")
    return flag


def path_param(request: Request, name: str, pattern: re.Pattern[str]) -> str:
    """A path parameter that must match `pattern` whole; a 400 names the parameter otherwise."""
    value = str(request.path_params.get(name, ""))
    if not pattern.fullmatch(value):
        raise ClientError(400, f"Invalid request: path.{name} is malformed")
    return value


_thread_state = threading.local()


def _ensure_event_loop() -> None:
    # Mangum calls asyncio.get_event_loop(): give each thread one lasting loop so that the pooled
    # upstream connections opened in one invocation are reused by the next.
    loop: asyncio.AbstractEventLoop | None = getattr(_thread_state, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _thread_state.loop = loop
    asyncio.set_event_loop(loop)


def make_handler(app: Starlette) -> LambdaHandler:
    """The Lambda entry point for an HTTP function: API Gateway HTTP API (payload 2.0) -> ASGI app."""
    _ensure_event_loop()  # Mangum looks for a loop when it is built, too
    adapter = Mangum(app, lifespan="off", text_mime_types=TEXT_MIME_TYPES)
    # `_unexpected` already logged the trace as JSON; Mangum would log it again as plain text.
    logging.getLogger("mangum.http").setLevel(logging.CRITICAL)

    @logger.inject_lambda_context(clear_state=True)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        _ensure_event_loop()
        try:
            return adapter(event, context)
        finally:
            # Lambda freezes the container once this returns: let call-start work still running in
            # the background (a hard-stop schedule being created) finish first, within a bound.
            # Only functions that use `shared.deps` can have any, and the page never imports it.
            deps = sys.modules.get("shared.deps")
            if deps is not None:
                deps.settle(SETTLE_SECONDS)

    snapstart.prepare(prime=lambda: _prime(handler))
    return handler


# A request no route matches: it reaches no upstream, reads no secret, and answers 404, yet it makes
# Starlette build its middleware stack and Mangum, the error handlers and the JSON response run once.
PRIME_PATH = "/__snapstart_prime"


@dataclass(frozen=True)
class _PrimeContext:
    function_name: str = "snapstart-prime"
    function_version: str = "init"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:000000000000:function:snapstart-prime"
    memory_limit_in_mb: int = 128
    aws_request_id: str = "snapstart-prime"
    log_group_name: str = "-"
    log_stream_name: str = "-"


def _prime(handler: LambdaHandler) -> None:
    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": PRIME_PATH,
        "rawQueryString": "",
        "headers": {"host": "localhost"},
        "requestContext": {
            "http": {"method": "GET", "path": PRIME_PATH, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1"},
            "stage": "$default",
        },
        "isBase64Encoded": False,
    }
    answer = handler(event, _PrimeContext())
    if answer.get("statusCode") != 404:
        logger.warning("snapstart prime answered unexpectedly", extra={"status": answer.get("statusCode")})
