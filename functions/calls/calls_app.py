"""The operator API, IAM-signed requests only: the call records (GET /calls, GET /calls/{call_id}), a
call's recording (GET /calls/{call_id}/recording) and placing an outbound call (POST /calls).

API Gateway lets only IAM-signed requests through (template.yaml: `Auth: Authorizer: AWS_IAM` on every
route); `make dev` serves them to loopback clients only (local_api). Records are written by the
observer (shared/records/); this function reads them. Outbound calls: shared/outbound.py.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from shared import deps, limits, log
from shared.errors import ClientError
from shared.outbound import check_destination, outbound_agent, place_call
from shared.recordings import URL_SECONDS, presigned_url
from shared.records import MAX_CURSOR_CHARS, CallPage, CallRecord
from shared.upstream import ANY_CALL_ID_PATTERN, LIVE_SESSION_ID_PATTERN
from shared.web import create_app, error_responses, make_handler

# Documents the IAM authorization API Gateway enforces (the scheme is declared in scripts/make_openapi.py).
SIGNED: dict[str, Any] = {"security": [{"sigv4": []}]}
app = create_app()

MetadataKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
MetadataValue = Annotated[str, StringConstraints(max_length=256)]


class DialRequest(BaseModel):
    """What to dial, and with which agent profile (one with `api: live`)."""

    model_config = ConfigDict(extra="forbid")

    to: str = Field(max_length=32, description="The number to call, E.164 (+14155550123).")
    agent: str = Field(min_length=1, max_length=64, description="An agent profile of agents.yaml.")
    metadata: dict[MetadataKey, MetadataValue] | None = Field(
        default=None, max_length=10, description="Up to 10 short labels kept with the call."
    )


class DialedCall(BaseModel):
    call_id: str = Field(description="The GPT-Live session id (`live_...`): GET /calls/{call_id}.")
    agent: str
    to: str = Field(description="The number dialed, masked as records keep it.")
    max_seconds: int = Field(description="Ringing plus the connected length granted.")


class RecordingLink(BaseModel):
    url: str = Field(description="A presigned GET URL of the WAV (stereo: caller left, agent right).")
    expires_in: int = Field(description="Seconds the URL stays valid.")


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


@app.post(
    "/calls",
    operation_id="dial",
    status_code=201,
    summary="Places an outbound phone call through GPT-Live; answers the call id at once (IAM only).",
    response_model=DialedCall,
    responses=error_responses(400, 403, 429, 500, 502, 503, 504),
    openapi_extra=SIGNED,
)
async def dial(request: DialRequest) -> DialedCall:
    settings = deps.settings()
    check_destination(request.to, settings)  # the toll-fraud guard first: with no prefixes, nothing else
    agent = outbound_agent(deps.agents(), request.agent)
    counted = settings.max_concurrent_calls > 0 or limits.enabled(settings)
    deps.prepare_call_start()  # AWS clients build in the background while OpenAI answers
    placed = await place_call(
        request.to,
        agent,
        settings=settings,
        client=deps.openai_client(),
        secrets=deps.secret_store(),
        store=deps.call_store() if counted else None,
        launcher=deps.observer_launcher(),
        hard_stop=deps.hard_stop(),
        metadata=request.metadata,
    )
    log.append_keys(call_id=placed.call_id)
    return DialedCall(
        call_id=placed.call_id, agent=placed.agent, to=placed.to, max_seconds=placed.max_seconds
    )


@app.get(
    "/calls/{call_id}",
    operation_id="get_call",
    summary="One call's record: transcript, tool calls, usage (IAM-signed requests only).",
    response_model=CallRecord,
    responses=error_responses(400, 404, 503),
    openapi_extra=SIGNED,
)
def get_call(call_id: Annotated[str, Path(pattern=ANY_CALL_ID_PATTERN.pattern)]) -> CallRecord:
    record = deps.record_store().get_call(call_id)
    if record is None:
        raise ClientError(404, "No such call")
    return record


@app.get(
    "/calls/{call_id}/recording",
    operation_id="get_recording",
    summary="A short-lived download URL of a GPT-Live call's stored recording (IAM-signed requests only).",
    response_model=RecordingLink,
    responses=error_responses(400, 404, 500, 503),
    openapi_extra=SIGNED,
)
def get_recording(call_id: Annotated[str, Path(pattern=LIVE_SESSION_ID_PATTERN.pattern)]) -> RecordingLink:
    record = deps.record_store().get_call(call_id)
    if record is None:
        raise ClientError(404, "No such call")
    if record.recording == "failed":
        raise ClientError(404, f"The recording was not copied: {record.recording_error or 'unknown error'}")
    if record.recording != "stored":
        raise ClientError(404, "No recording for this call (its profile has no `store: true`, or it is live)")
    url = presigned_url(call_id, deps.settings().recordings_bucket_name)
    return RecordingLink(url=url, expires_in=URL_SECONDS)


handler = make_handler(app)
