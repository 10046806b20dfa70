"""GET /calls and GET /calls/{call_id}: the call records, for operators only.

API Gateway lets only IAM-signed requests through (template.yaml: `Auth: Authorizer: AWS_IAM` on both
routes); `make dev` serves them to loopback clients only (local_api). Records are written by the
observer (shared/records/); this function may only read them (GetItem, Query).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query

from shared import deps
from shared.errors import ClientError
from shared.records import MAX_CURSOR_CHARS, CallPage, CallRecord
from shared.voice_api import VOICE_CALL_ID_PATTERN
from shared.web import create_app, error_responses, make_handler

# Documents the IAM authorization API Gateway enforces (the scheme is declared in scripts/make_openapi.py).
SIGNED: dict[str, Any] = {"security": [{"sigv4": []}]}
app = create_app()


@app.get(
    "/calls",
    operation_id="list_calls",
    summary="Lists call records, newest first, a page at a time (IAM-signed requests only).",
    response_model=CallPage,
    responses=error_responses(400, 503),
    openapi_extra=SIGNED,
)
def list_calls(
    limit: Annotated[int, Query(ge=1, le=100, description="Calls per page.")] = 20,
    cursor: Annotated[
        str | None, Query(max_length=MAX_CURSOR_CHARS, description="A previous page's next_cursor.")
    ] = None,
) -> CallPage:
    return deps.record_store().list_calls(limit=limit, cursor=cursor)


@app.get(
    "/calls/{call_id}",
    operation_id="get_call",
    summary="One call's record: transcript, tool calls, usage (IAM-signed requests only).",
    response_model=CallRecord,
    responses=error_responses(400, 404, 503),
    openapi_extra=SIGNED,
)
def get_call(call_id: Annotated[str, Path(pattern=VOICE_CALL_ID_PATTERN.pattern)]) -> CallRecord:
    record = deps.record_store().get_call(call_id)
    if record is None:
        raise ClientError(404, "No such call")
    return record


handler = make_handler(app)
