"""Outbound phone calls: GPT-Live dials a number through the stack's SIP trunk (`POST /calls`,
`python -m scripts.calls dial`). Live only: the Realtime API cannot place calls.

In order, before anything goes upstream: the agent profile must exist and use `api: live`; the
destination must be E.164 and start with one of OUTBOUND_ALLOWED_PREFIXES (empty by default: outbound
off, the toll-fraud guard); the trunk (a Secrets Manager secret, read through the cached
`SecretStore`, so a new value applies within SECRETS_CACHE_SECONDS) must be usable. Then a concurrency
slot (MAX_CONCURRENT_CALLS) and the call's minutes (MAX_CALL_MINUTES_PER_DAY) are reserved, and the
create is sent once: every create dials the phone and OpenAI does not dedupe them, so an ambiguous
timeout is reported, never retried. A failed create gives the slot and the minutes back. A placed call
gets its observer (which must attach within the sideband's 3 s replay) and its hard stop, at
OpenAI's own limits for outbound calls: 3 min ringing + 2 h connected.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass

from pydantic import ValidationError

from shared import limits, metrics
from shared.agents import Agent, Agents
from shared.errors import ClientError, ServiceError, TooManyRequests, UpstreamError, UpstreamTimeout
from shared.hard_stop import HardStop
from shared.launcher import ObserveRequest, ObserverLauncher
from shared.live_session import E164_PATTERN, SipTrunk, live_session, outbound_create_body
from shared.log import logger
from shared.policy import mask_number
from shared.secrets import SecretStore
from shared.settings import Settings
from shared.store import Counters
from shared.upstream import OpenAIClient

RINGING_SECONDS = 3 * 60  # OpenAI gives up ringing after 3 minutes
CONNECTED_MAX_SECONDS = 2 * 3600  # and ends a connected outbound call after 2 hours
OUTBOUND_MAX_SECONDS = CONNECTED_MAX_SECONDS + RINGING_SECONDS
SLOT_GRACE_SECONDS = 120  # as for SIP calls: a slot outlives the call's limit, should no one release it
NOT_ENABLED = "outbound_sip_not_enabled"
TRUNK_FIELDS = "{provider_url (sips:host[:port]), username, password, caller_number (E.164)}"
_E164 = re.compile(E164_PATTERN)


class OutboundError(UpstreamError):
    """OpenAI did not place the call: one line for the operator, with the status it is answered with."""

    def __init__(self, status_code: int, reason: str, cause: UpstreamError) -> None:
        super().__init__(
            reason,
            upstream_status=cause.upstream_status,
            upstream_code=cause.upstream_code,
            upstream_message=cause.upstream_message,
        )
        self.status_code = status_code


@dataclass(frozen=True)
class PlacedCall:
    call_id: str  # the Live session id (`live_...`)
    agent: str
    to: str  # masked, as records and logs keep numbers
    max_seconds: int  # ringing + the connected length granted


def call_seconds(settings: Settings) -> int:
    """An outbound call's longest life: ringing plus MAX_CALL_SECONDS (or OpenAI's 2 h when that is 0
    or longer)."""
    connected = min(settings.max_call_seconds or CONNECTED_MAX_SECONDS, CONNECTED_MAX_SECONDS)
    return connected + RINGING_SECONDS


def outbound_agent(agents: Agents, name: str) -> Agent:
    """The named profile, which must use GPT-Live (outbound calls exist only there)."""
    agent = agents.profiles.get(name)
    if agent is None:
        raise ClientError(
            400, f"No agent profile {name[:64]!r} (known: {', '.join(sorted(agents.profiles))})"
        )
    if agent.settings.voice_api != "live":
        raise ClientError(
            400,
            f"Agent profile {name!r} uses the Realtime API: outbound calls need a profile with `api: live`",
        )
    return agent


def check_destination(number: str, settings: Settings) -> None:
    """400 unless `number` is E.164; 403 unless it starts with an allowed prefix (none set: all refused)."""
    if not _E164.match(number):
        raise ClientError(
            400, "Invalid request: `to` must be an E.164 number (+, country code, up to 15 digits)"
        )
    prefixes = settings.outbound_prefixes
    if not prefixes:
        raise ClientError(
            403,
            "Outbound calls are off: OUTBOUND_ALLOWED_PREFIXES "
            "(template parameter OutboundAllowedPrefixes) is empty",
        )
    if not any(number.startswith(prefix) for prefix in prefixes):
        raise ClientError(403, f"Destination {mask_number(number)} is not in OUTBOUND_ALLOWED_PREFIXES")


def load_trunk(secrets: SecretStore, settings: Settings) -> SipTrunk:
    """The trunk from its secret (cached); 500 naming what is wrong, never a value."""
    raw = secrets.outbound_trunk()
    where = "OUTBOUND_TRUNK_SECRET_ARN" if settings.outbound_trunk_secret_arn else "OUTBOUND_TRUNK"
    try:
        data = json.loads(raw)
    except ValueError:
        raise ServiceError(f"Server misconfigured: {where}: the trunk is not JSON {TRUNK_FIELDS}") from None
    if not isinstance(data, dict):
        raise ServiceError(f"Server misconfigured: {where}: the trunk must be a JSON object {TRUNK_FIELDS}")
    try:
        return SipTrunk.model_validate(
            {
                "provider_url": data.get("provider_url"),
                "auth": {"username": data.get("username"), "password": data.get("password")},
                "caller_number": data.get("caller_number"),
            }
        )
    except ValidationError as exc:
        fields = sorted({str(error["loc"][-1]) for error in exc.errors() if error["loc"]})
        raise ServiceError(
            f"Server misconfigured: {where}: invalid trunk field(s) {', '.join(fields)}; "
            f"expected {TRUNK_FIELDS}"
        ) from None


def create_failure(exc: UpstreamError) -> OutboundError:
    """What the operator reads when the create failed (the API's reason, the CLI's line)."""
    status, code = exc.upstream_status, exc.upstream_code
    detail = exc.upstream_message or exc.reason
    if isinstance(exc, UpstreamTimeout) or status is None:
        return OutboundError(
            504 if isinstance(exc, UpstreamTimeout) else 502,
            f"{exc.reason}: the call may have been placed; a create is never retried (see GET /calls)",
            exc,
        )
    tag = f"{status} {code}" if code else str(status)
    if status == 403 and code == NOT_ENABLED:
        reason = f"OpenAI refused the call: outbound SIP is not enabled for this organization ({tag})"
    elif status == 400:
        reason = f"OpenAI refused the call's session or transport ({tag}): {detail}"
    elif status == 502:
        reason = f"OpenAI could not set up the SIP transport to the trunk ({tag}): {detail}"
    elif status == 504:
        reason = f"OpenAI timed out initialising the call's session ({tag}): {detail}"
    else:
        reason = f"OpenAI did not place the call ({tag}): {detail}"
    return OutboundError(504 if status == 504 else 502, reason, exc)


async def place_call(
    to: str,
    agent: Agent,
    *,
    settings: Settings,
    client: OpenAIClient,
    secrets: SecretStore,
    store: Counters | None,
    launcher: ObserverLauncher,
    hard_stop: HardStop,
    metadata: dict[str, str] | None = None,
) -> PlacedCall:
    """Dial `to` with `agent` (already `outbound_agent`-checked). `store` holds the counters; None is
    allowed only when neither MAX_CONCURRENT_CALLS nor MAX_CALL_MINUTES_PER_DAY is set."""
    check_destination(to, settings)
    trunk = load_trunk(secrets, settings)
    body = outbound_create_body(live_session(agent.settings, "sip"), to, trunk).to_json()
    wanted = call_seconds(settings)
    slot = _take_slot(store, settings, wanted) if settings.max_concurrent_calls > 0 else None
    try:
        grant = (
            limits.reserve_or_refuse(store, settings, call_seconds=wanted)
            if store is not None
            else limits.NO_GRANT
        )
    except BaseException:
        _release(store, slot)
        raise
    try:
        call_id = await client.create_outbound_session(body)
    except BaseException as exc:
        _release(store, slot)
        if store is not None:
            limits.refund(grant, store=store)  # nothing was granted to a call that may not exist
        if isinstance(exc, UpstreamError):
            failure = create_failure(exc)
            logger.error("outbound call not placed", extra={"reason": failure.reason, "to": mask_number(to)})
            raise failure from None
        raise
    if slot is not None and store is not None:
        _rekey_slot(store, slot, call_id, settings, wanted)
    granted = grant.seconds or wanted
    placed = PlacedCall(call_id=call_id, agent=agent.name, to=mask_number(to), max_seconds=granted)
    logger.info("outbound call placed", extra={"call_id": call_id, "agent": agent.name, "to": placed.to})
    metrics.emit(metrics.CALLS_STARTED, source="outbound", api="live")  # outbound is GPT-Live only
    hard_stop.schedule(call_id, limit_seconds=granted)
    request = ObserveRequest(
        call_id=call_id,
        source="outbound",
        call_started_at=time.time(),
        agent=agent.name,
        dialed=placed.to,
        max_seconds=granted,
        minutes_day=grant.day,
        metadata=metadata or None,
    )
    try:
        launcher.launch(request)
    except ServiceError:
        # Nobody would drive the call: end it now rather than let the callee answer silence.
        logger.error("outbound call hung up: no observer", extra={"call_id": call_id})
        try:
            await client.hangup_live_session(call_id)
        except UpstreamError as exc:
            logger.error("outbound hangup failed", extra={"call_id": call_id, "reason": exc.reason})
        raise
    return placed


def _take_slot(store: Counters | None, settings: Settings, seconds: int) -> str:
    """A concurrency slot under a placeholder id (the call id comes with the create's answer)."""
    if store is None:
        raise ServiceError("Server misconfigured: MAX_CONCURRENT_CALLS needs the call store")
    placeholder = f"outbound-{uuid.uuid4().hex}"
    until = time.time() + seconds + SLOT_GRACE_SECONDS
    if not store.take_slot(placeholder, limit=settings.max_concurrent_calls, until=until):
        raise TooManyRequests("Concurrent call limit reached (MAX_CONCURRENT_CALLS); try again later", 30)
    return placeholder


def _rekey_slot(store: Counters, placeholder: str, call_id: str, settings: Settings, seconds: int) -> None:
    """Move the slot to the call's id, which the observer releases at call end. Taken with one more
    than the cap because the placeholder still holds the call's own slot until released."""
    until = time.time() + seconds + SLOT_GRACE_SECONDS
    try:
        if store.take_slot(call_id, limit=settings.max_concurrent_calls + 1, until=until):
            store.release_slot(placeholder)
            return
    except ServiceError as exc:
        logger.warning("outbound slot not moved", extra={"call_id": call_id, "reason": exc.reason})
        return
    logger.warning("outbound slot kept under its placeholder (expires)", extra={"call_id": call_id})


def _release(store: Counters | None, slot: str | None) -> None:
    if store is not None and slot is not None:
        store.release_slot(slot)
