"""What every HTTP function shares: the FastAPI app with uniform errors, and the Lambda handler.

Each function is a FastAPI app behind Mangum. FastAPI validates the typed query and path parameters
(its 422 becomes our 400), and its generated OpenAPI is the API contract (`scripts/make_openapi.py`
writes `openapi.yaml` from the five apps). The bodies stay raw (`read_body`): the SDP offer and the
signed webhook bytes are checked by the routes themselves, so `openapi_extra` documents them.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any

from aws_lambda_powertools.logging.lambda_context import build_lambda_context_model
from aws_lambda_powertools.logging.logger import _is_cold_start
from fastapi import FastAPI, Query
from fastapi.exceptions import RequestValidationError
from mangum import Mangum
from mangum.adapter import DEFAULT_TEXT_MIME_TYPES
from mangum.handlers.api_gateway import HTTPGateway
from mangum.types import Scope
from pydantic import BaseModel, BeforeValidator
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Match, Route

from shared import audit, background, snapstart, startup
from shared.errors import ClientError, ServiceError
from shared.log import logger
from shared.settings import VoiceApi

SETTLE_SECONDS = 2.0  # at most this long after the response for background work (shared/background.py)
LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]

# Responses of these types go back to API Gateway as plain text, not base64 (the SDP answer above all).
TEXT_MIME_TYPES = [*DEFAULT_TEXT_MIME_TYPES, "application/sdp"]


class ErrorBody(BaseModel):
    """Every error body has one shape: `{"error": "<one-line reason>"}`."""

    error: str


# Why a route answers each error status; a route documents only the ones it really sends.
ERROR_REASONS: dict[int, str] = {
    400: "Malformed input (a parameter, the body); nothing was sent upstream.",
    401: "The webhook signature does not verify.",
    403: "A browser page whose Origin is not allowed; nothing was sent upstream.",
    404: "No such call record (never recorded, or expired).",
    409: "The same delivery is being handled elsewhere; retry later.",
    413: "The body is larger than the route allows.",
    415: "The body's Content-Type is not the one the route reads.",
    429: "A spend limit is reached (calls per client per hour, call minutes per day); nothing was sent "
    "upstream. `Retry-After` says when to try again.",
    500: "Server misconfigured (a secret or setting is missing) or the observer could not be started.",
    502: "OpenAI answered an error or could not be reached (its message, key-shaped text masked).",
    503: "A store (DynamoDB: call state, spend limits or call records) could not be reached or kept "
    "refusing; try again later.",
    504: "OpenAI did not answer in time.",
}


def error_responses(*status_codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a path operation: the error model, for each status it sends."""
    responses: dict[int | str, dict[str, Any]] = {
        code: {"model": ErrorBody, "description": ERROR_REASONS[code]} for code in status_codes
    }
    if 429 in responses:
        responses[429]["headers"] = {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}}
    return responses


def error_response(status_code: int, reason: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": reason}, status_code=status_code, headers=headers)


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


# A boolean query parameter (`name: QueryFlag = False`): the forms pydantic accepts ("true", "1", "yes",
# "off", ...), case-insensitive, surrounding spaces ignored; anything else is a 400.
QueryFlag = Annotated[bool, BeforeValidator(_strip), Query()]

# `?api=realtime|live`: the voice API a browser call asks for; absent (None) = the default profile's.
VoiceApiQuery = Annotated[
    VoiceApi | None,
    Query(description="`realtime` or `live` (GPT-Live); absent: the API of the default agent profile."),
]

# What a failed parameter check says, by pydantic error type (anything else "is invalid").
_VALIDATION_REASONS = {"bool_parsing": "must be true or false", "string_pattern_mismatch": "is malformed"}


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    log = logger.warning if exc.status_code < 500 else logger.error
    log("request failed", extra={"status": exc.status_code, "reason": exc.reason, "path": request.url.path})
    return error_response(exc.status_code, exc.reason, headers=getattr(exc, "headers", None))


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    # FastAPI would answer 422 with pydantic's details; clients get our 400 naming the parameter.
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ()))
    reason = _VALIDATION_REASONS.get(str(first.get("type")), "is invalid")
    if first.get("type") == "literal_error":  # a choice: name the values that are accepted
        reason = f"must be {first.get('ctx', {}).get('expected', 'one of the documented values')}"
    return await _service_error(request, ClientError(400, f"Invalid request: {where} {reason}"))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    headers = exc.headers
    if exc.status_code == 405:
        # A FastAPI route serves one method per decorator (GET and POST /token are two routes) and the
        # router names only the first one it tried; Allow lists every method this path serves.
        headers = {**(headers or {}), "Allow": ", ".join(_methods_served(request))}
    return error_response(exc.status_code, str(exc.detail), headers=headers)


def _methods_served(request: Request) -> list[str]:
    routes = request.app.router.routes
    matching = (r for r in routes if isinstance(r, Route) and r.matches(request.scope)[0] is not Match.NONE)
    return sorted({method for route in matching for method in route.methods or ()})


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, ServiceError):  # raised in a middleware (e.g. settings read by OriginPolicy)
        return await _service_error(request, exc)
    # The trace goes to the log; the client gets no detail.
    logger.exception("unhandled error", extra={"path": request.url.path})
    return error_response(500, "Internal error")


def create_app(middleware: Sequence[Middleware] = ()) -> FastAPI:
    """A FastAPI app with `{"error": ...}` bodies for every failure (400 for bad parameters, 404, 405, 500).

    It serves no /docs or /openapi.json (API Gateway routes only the template's routes);
    `scripts/make_openapi.py` builds the document from the apps' routes instead.
    """
    return FastAPI(
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        middleware=middleware,
        exception_handlers={
            ServiceError: _service_error,
            RequestValidationError: _invalid_request,
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


_thread_state = threading.local()


def _ensure_event_loop() -> None:
    # Mangum calls asyncio.get_event_loop(): give each thread one lasting loop so that the pooled
    # upstream connections opened in one invocation are reused by the next.
    loop: asyncio.AbstractEventLoop | None = getattr(_thread_state, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _thread_state.loop = loop
    asyncio.set_event_loop(loop)


class HttpApiEvent(HTTPGateway):
    """Mangum's reader of API Gateway HTTP API events, with the ASGI scope built once: Mangum's own
    builds it a second time when it writes the answer, only to read the event's version."""

    @cached_property
    def scope(self) -> Scope:
        return super().scope


def make_handler(app: FastAPI) -> LambdaHandler:
    """The Lambda entry point for an HTTP function: API Gateway HTTP API (payload 2.0) -> ASGI app."""
    startup.check_at_start()  # a bad setting stops the init with one line, not every request later
    _ensure_event_loop()  # Mangum looks for a loop when it is built, too
    adapter = Mangum(app, lifespan="off", text_mime_types=TEXT_MIME_TYPES, custom_handlers=[HttpApiEvent])
    # `_unexpected` already logged the trace as JSON; Mangum would log it again as plain text.
    logging.getLogger("mangum.http").setLevel(logging.CRITICAL)

    def invoke(event: dict[str, Any], context: Any) -> dict[str, Any]:
        _ensure_event_loop()
        _log_keys_of(context)
        http = event.get("requestContext", {}).get("http", {})
        with audit.request(method=http.get("method", ""), path=event.get("rawPath", "")) as record:
            try:
                answer = adapter(event, context)
            finally:
                # Lambda freezes the container once this returns: let call-start work still running in
                # the background (a hard-stop schedule being created) finish first, within a bound.
                background.settle(SETTLE_SECONDS)
            record.fields["status"] = answer.get("statusCode")
        return answer

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        # Each invocation in its own context: its log keys and its audit record are its alone, even
        # when one process serves concurrent requests (`make dev`).
        return contextvars.copy_context().run(invoke, event, context)

    # The adapter, not `handler`: that would mark the snapshot's cold start as spent (`_is_cold_start`).
    snapstart.prepare(prime=lambda: _prime(adapter))
    return handler


def _log_keys_of(context: Any) -> None:
    """The Lambda context's keys (function name, request id, cold start) on this invocation's lines:
    what Powertools' `inject_lambda_context` adds, kept per invocation instead of process-wide."""
    logger.thread_safe_clear_keys()
    lambda_keys = build_lambda_context_model(context).__dict__
    logger.thread_safe_append_keys(cold_start=_is_cold_start(), **lambda_keys)


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


def _prime(handler: Callable[[dict[str, Any], Any], Any]) -> None:
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
