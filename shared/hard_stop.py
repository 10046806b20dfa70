"""A hard stop for every call that does not depend on the observer.

The observer ends a call at `MAX_CALL_SECONDS`; if it crashed or was throttled the call would run on to
OpenAI's 60-minute cap. So where a call starts (/rtc, /sip) a one-shot EventBridge Scheduler schedule is
created too: at start + MAX_CALL_SECONDS (or the 60-minute cap when there is no limit) + a grace, it
invokes the hangup function (`functions/hangup/hangup_app.py`) with `{"call_id": ...}`, and deletes
itself afterwards. The observer deletes it when the call ends normally (`cancel`).

The hangup it fires (`end_call`) picks the API by the call id: `rtc_...` Realtime, `live_...`
GPT-Live. A Live WebRTC session has no HTTP hangup (SIP only): it is ended with `session.close` over
its sideband, so the hard stop holds for every call of either API.

Creating it is off the critical path: `prepare()` builds the Scheduler client in a background thread
before the route waits on OpenAI, and `schedule()` sends the request from another one. A failure is
logged and never fails the call (the observer still enforces the limit).
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from shared import aws, tls
from shared.errors import UpstreamError, UpstreamTimeout
from shared.log import logger
from shared.settings import Settings
from shared.upstream import OpenAIClient, call_api, make_headers

if TYPE_CHECKING:
    from mypy_boto3_scheduler import EventBridgeSchedulerClient

OPENAI_MAX_SESSION_SECONDS = 60 * 60  # OpenAI ends every Realtime session at 60 minutes
_NAME_LIMIT = 64  # Scheduler: 1-64 characters of [0-9a-zA-Z-_.]


@dataclass(frozen=True)
class HangupSchedule:
    """One call's schedule, as `CreateSchedule` receives it."""

    call_id: str
    name: str
    group: str
    at: datetime  # UTC, whole seconds

    @property
    def expression(self) -> str:
        return f"at({self.at.strftime('%Y-%m-%dT%H:%M:%S')})"

    @property
    def input(self) -> str:
        return json.dumps({"call_id": self.call_id})


def schedule_name(call_id: str) -> str:
    """`hangup-<call id>`, or a digest of it when that would be too long for Scheduler."""
    name = f"hangup-{call_id}"
    return name if len(name) <= _NAME_LIMIT else f"hangup-{hashlib.sha256(call_id.encode()).hexdigest()[:48]}"


class HardStop:
    """Creates and deletes calls' hangup schedules. Disabled (no-op, no boto3) without HANGUP_FUNCTION_ARN."""

    def __init__(
        self, settings: Settings, scheduler_client: EventBridgeSchedulerClient | None = None
    ) -> None:
        self._settings = settings
        self._client = scheduler_client
        self._pending: list[threading.Thread] = []  # schedules still being created (settle())

    @property
    def enabled(self) -> bool:
        return bool(self._settings.hangup_function_arn)

    def prepare(self) -> None:
        """Start building the Scheduler client in the background (before the route waits on OpenAI)."""
        if self.enabled and self._client is None:
            aws.prepare("scheduler")

    def plan(self, call_id: str, started_at: float, limit_seconds: int | None = None) -> HangupSchedule:
        """`limit_seconds`: the call's granted length (shared/limits.py); None = MAX_CALL_SECONDS."""
        limit = limit_seconds or self._settings.max_call_seconds or OPENAI_MAX_SESSION_SECONDS
        fire_at = math.ceil(started_at + limit + self._settings.hard_stop_grace_seconds)
        return HangupSchedule(
            call_id=call_id,
            name=schedule_name(call_id),
            group=self._settings.hangup_schedule_group,
            at=datetime.fromtimestamp(fire_at, UTC),
        )

    def schedule(
        self, call_id: str, started_at: float | None = None, *, limit_seconds: int | None = None
    ) -> threading.Thread | None:
        """Create the call's schedule in a background thread (returned, for tests to join)."""
        if not self.enabled:
            return None
        plan = self.plan(call_id, time.time() if started_at is None else started_at, limit_seconds)
        # With the request's context: its log keys (and its audit record, while the request is open).
        context = contextvars.copy_context()
        thread = threading.Thread(
            target=context.run, args=(self.create, plan), name=f"hard-stop-{call_id}", daemon=True
        )
        thread.start()
        self._pending = [t for t in self._pending if t.is_alive()] + [thread]
        return thread

    def settle(self, timeout: float) -> bool:
        """Wait up to `timeout` s in all for the schedules still being created; True if none is left.
        Lambda freezes a container when its handler returns: a handler can call this last."""
        deadline = time.monotonic() + timeout
        for thread in list(self._pending):
            thread.join(max(0.0, deadline - time.monotonic()))
        self._pending = [t for t in self._pending if t.is_alive()]
        return not self._pending

    def create(self, plan: HangupSchedule) -> bool:
        """Send `CreateSchedule`; False (logged) if it failed. Runs in `schedule()`'s thread."""
        settings = self._settings
        try:
            self._scheduler().create_schedule(
                Name=plan.name,
                GroupName=plan.group,
                ScheduleExpression=plan.expression,
                ScheduleExpressionTimezone="UTC",
                FlexibleTimeWindow={"Mode": "OFF"},
                ActionAfterCompletion="DELETE",
                Target={
                    "Arn": settings.hangup_function_arn,
                    "RoleArn": settings.scheduler_role_arn,
                    "Input": plan.input,
                    "RetryPolicy": {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 300},
                },
            )
        except Exception as exc:
            if aws.error_code(exc) == "ConflictException":  # a retried request that had landed: it exists
                return True
            logger.error(
                "hard stop not scheduled",
                extra={"call_id": plan.call_id, "error": type(exc).__name__, "code": aws.error_code(exc)},
            )
            return False
        logger.info("hard stop scheduled", extra={"call_id": plan.call_id, "at": plan.expression})
        return True

    def cancel(self, call_id: str) -> None:
        """The call ended normally: delete its schedule. Gone already (fired, or never made) is fine."""
        if not self.enabled:
            return
        try:
            self._scheduler().delete_schedule(
                Name=schedule_name(call_id), GroupName=self._settings.hangup_schedule_group
            )
        except Exception as exc:
            code = aws.error_code(exc)
            if code != "ResourceNotFoundException":  # left in place it fires once and finds the call over
                logger.warning(
                    "hard stop not cancelled",
                    extra={"call_id": call_id, "error": type(exc).__name__, "code": code},
                )
            return
        logger.info("hard stop cancelled", extra={"call_id": call_id})

    def _scheduler(self) -> EventBridgeSchedulerClient:
        if self._client is None:
            self._client = aws.client("scheduler")
        return self._client


# ------------------------------------------------------------------ the hangup the schedule fires

HangupOutcome = Literal["hung_up", "already_over", "closed"]
SESSION_CLOSE_WAIT_SECONDS = 5.0  # for `session.closed` after a `session.close`


async def end_call(
    call_id: str, *, client: OpenAIClient, settings: Settings, api_key: Callable[[], str]
) -> HangupOutcome:
    """End a call at its hard stop through its API (by the id's prefix): `POST .../hangup`. OpenAI
    not knowing the call (404) means it is over already. GPT-Live hangs up SIP calls only: a Live
    WebRTC session's hangup is refused (400), so that one gets `session.close` over its sideband
    instead ("closed"). Any other failure raises, so that Scheduler retries (a bounded few times)."""
    live = call_api(call_id) == "live"
    try:
        if live:
            await client.hangup_live_session(call_id)
        else:
            await client.hangup_call(call_id)
    except UpstreamError as exc:
        if exc.upstream_status == 404:
            return "already_over"
        if not (live and exc.upstream_status == 400):
            raise
        logger.info("not a SIP call: closing the Live session over its sideband", extra={"call_id": call_id})
        return await close_live_session(call_id, settings, api_key())
    return "hung_up"


async def close_live_session(
    session_id: str, settings: Settings, api_key: str, wait: float = SESSION_CLOSE_WAIT_SECONDS
) -> HangupOutcome:
    """Attach to a Live session's sideband, send `session.close` and wait for `session.closed`. An
    attach refused with 404 means the session is over already. Without `session.closed` in time (or
    with the socket closed before it) the close is not confirmed: UpstreamError, to be retried."""
    import websockets  # only a Live WebRTC session's hard stop needs them
    from websockets.exceptions import ConnectionClosed, InvalidStatus

    from shared.voice_api import LiveAdapter

    adapter = LiveAdapter()
    url = adapter.sideband_url(settings.sideband_base, session_id)
    secure = tls.client_context() if url.startswith("wss://") else None
    try:
        async with (
            asyncio.timeout(wait),
            websockets.connect(
                url, additional_headers=make_headers(api_key), compression=None, ssl=secure
            ) as ws,
        ):
            await ws.send(json.dumps(adapter.close()))
            async for message in ws:
                # Reflected audio streams meanwhile: look for the type before parsing anything.
                if "session.closed" in message and json.loads(message).get("type") == "session.closed":
                    return "closed"
    except InvalidStatus as exc:
        if exc.response.status_code == 404:
            return "already_over"
        raise UpstreamError("Live sideband refused", upstream_status=exc.response.status_code) from None
    except TimeoutError:
        raise UpstreamTimeout("Live session did not confirm session.close in time") from None
    except (ConnectionClosed, OSError) as exc:
        raise UpstreamError(f"Live sideband lost ({type(exc).__name__})") from None
    raise UpstreamError("Live sideband closed before session.closed")
