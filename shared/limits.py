"""Spend limits: calls per client per hour on /rtc and /token, call minutes per UTC day for the stack.

Counters live in the call store (`CallsTable`, shared/store/), each one atomic conditional `ADD`
(no read-then-write race, so the limits hold exactly across instances), removed by TTL:

- `limit#client#<client>#<UTC hour>`: the /rtc and /token requests (together) of one source IP that
  passed the input and origin checks, including those then refused for the minutes or failed upstream
  (`MAX_CALLS_PER_CLIENT_PER_HOUR`). Over it: 429 with `Retry-After` = the seconds to the next hour.
  `<client>` is a digest of the IP (`client_id`), never the IP itself; logs carry the same digest.
- `limit#minutes#<UTC day>`: the call seconds the stack has handed out that day
  (`MAX_CALL_MINUTES_PER_DAY`). Each call start *reserves* its length up front,
  `min(MAX_CALL_SECONDS or 60 min, what is left)`, so the budget can never be overshot; the observer
  hangs up at the granted length and gives back what the call did not use when it ends. With fewer
  than `MIN_GRANT_SECONDS` left (or MAX_CALL_SECONDS, when calls are shorter than that), calls are
  refused (/rtc 429 until midnight UTC, /sip 486).

/token mints a key for a browser session that no observer watches: it counts against the client limit
and is refused when the day's minutes are used up, but reserves nothing (its minutes are not counted).
Everything here runs before any upstream call; with both limits 0 nothing here touches the store.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from shared import metrics
from shared.errors import ServiceError, TooManyRequests
from shared.hard_stop import OPENAI_MAX_SESSION_SECONDS
from shared.log import logger
from shared.settings import Settings
from shared.store.counters import Counters
from shared.store.counters import Grant as Grant  # re-exported: routes and the observer speak of limits.Grant

if TYPE_CHECKING:
    from starlette.requests import Request

MIN_GRANT_SECONDS = 30  # a shorter call is no use to anyone: refuse instead (unless calls are shorter)
CLIENT_RECORD_SLACK_SECONDS = 300  # a client counter outlives its hour by this much (clock skew)
DAY_RECORD_SECONDS = 3 * 24 * 3600  # a day's budget stays for refunds of calls that began on it
TOO_MANY_FROM_CLIENT = "Too many calls from this client; try again later"
MINUTES_USED_UP = "The call minutes for today are used up; try again tomorrow"


NO_GRANT = Grant()


def enabled(settings: Settings) -> bool:
    """Any limit set: only then does a route touch the store for limits."""
    return bool(settings.max_calls_per_client_per_hour or settings.max_call_minutes_per_day)


def client_id(request: Request) -> str:
    """A short digest of the source IP (API Gateway's `requestContext.http.sourceIp`, which Mangum
    passes as the ASGI client), an IPv6 address by its /64 (one subscriber's usual allocation, so
    rotating addresses inside it does not reset the count). Pseudonymous, not anonymous: an IPv4
    digest can be brute-forced, so the counters expire a few minutes after their hour."""
    import ipaddress  # ~2 ms, only once a limit is set

    host = request.client.host if request.client is not None else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped  # ::ffff:a.b.c.d is the IPv4 client a.b.c.d
        host = str(mapped) if mapped else str(ipaddress.ip_network(f"{address}/64", strict=False))
    return hashlib.sha256((host or "unknown").encode()).hexdigest()[:16]


def check_client(store: Counters, settings: Settings, client: str, now: float | None = None) -> None:
    """Count one request of `client` this UTC hour; 429 once it is over MAX_CALLS_PER_CLIENT_PER_HOUR."""
    limit = settings.max_calls_per_client_per_hour
    if not limit:
        return
    now = time.time() if now is None else now
    hour = datetime.fromtimestamp(now, UTC).replace(minute=0, second=0, microsecond=0)
    hour_end = (hour + timedelta(hours=1)).timestamp()
    key = f"limit#client#{client}#{hour.strftime('%Y-%m-%dT%H')}"
    count = store.count_call(key, limit=limit, expires_at=int(hour_end) + CLIENT_RECORD_SLACK_SECONDS)
    if count is None:
        metrics.emit(metrics.CALLS_LIMITED, limit="client_hourly")
        logger.warning("call refused: client hourly limit", extra={"client": client, "limit": limit})
        raise TooManyRequests(TOO_MANY_FROM_CLIENT, math.ceil(hour_end - now))


def reserve(
    store: Counters, settings: Settings, now: float | None = None, *, call_seconds: int | None = None
) -> Grant | None:
    """Reserve a call's length (`call_seconds`, default MAX_CALL_SECONDS or 60 min) on today's minutes
    budget: the grant, or None when it is used up. NO_GRANT (and no store call) without a daily limit."""
    limit_minutes = settings.max_call_minutes_per_day
    if not limit_minutes:
        return NO_GRANT
    day = _day(time.time() if now is None else now)
    reserved = store.reserve_seconds(
        _budget_key(day),
        want=call_seconds or _call_seconds(settings),
        limit=limit_minutes * 60,
        minimum=_min_grant(settings),
        expires_at=_day_expiry(day),
    )
    if reserved is None:
        _minutes_refused(limit_minutes)
        return None
    granted, used = reserved
    _report(used)
    logger.info("call minutes reserved", extra={"granted_seconds": granted, "day": day})
    return Grant(seconds=granted, day=day)


def reserve_or_refuse(
    store: Counters, settings: Settings, now: float | None = None, *, call_seconds: int | None = None
) -> Grant:
    """`reserve`, with a 429 (Retry-After: the seconds to midnight UTC) when the minutes are used up."""
    now = time.time() if now is None else now
    grant = reserve(store, settings, now, call_seconds=call_seconds)
    if grant is None:
        raise TooManyRequests(MINUTES_USED_UP, _seconds_to_midnight(now))
    return grant


def check_minutes_left(store: Counters, settings: Settings, now: float | None = None) -> None:
    """429 when today's minutes are used up (no reservation: /token's browser sessions)."""
    limit_minutes = settings.max_call_minutes_per_day
    if not limit_minutes:
        return
    now = time.time() if now is None else now
    if store.seconds_used(_budget_key(_day(now))) > limit_minutes * 60 - _min_grant(settings):
        _minutes_refused(limit_minutes)
        raise TooManyRequests(MINUTES_USED_UP, _seconds_to_midnight(now))


def refund(grant: Grant, used_seconds: float = 0.0, *, store: Counters) -> None:
    """Give back what a call did not use of its grant (all of it: the call never started) to the
    budget of the day it was reserved on. Nothing to do without a reservation. Never raises: a lost
    refund leaves the minutes spent, which errs on the safe side."""
    if grant.day is None or grant.seconds is None:
        return
    back = grant.seconds - min(grant.seconds, math.ceil(max(0.0, used_seconds)))
    if back <= 0:
        return
    try:
        used = store.refund_seconds(_budget_key(grant.day), back)
    except ServiceError as exc:
        logger.error("call minutes not refunded", extra={"seconds": back, "reason": exc.reason})
        return
    logger.info("call minutes refunded", extra={"refunded_seconds": back, "day": grant.day})
    if used is not None:
        _report(used)


def admit_rtc(request: Request, settings: Settings, call_store: Callable[[], Counters]) -> Grant:
    """/rtc, before any upstream call: the client limit, then the call's minutes. `call_store` builds
    the store, only when a limit is set."""
    if not enabled(settings):
        return NO_GRANT
    store = call_store()
    check_client(store, settings, client_id(request))
    return reserve_or_refuse(store, settings)


def admit_token(request: Request, settings: Settings, call_store: Callable[[], Counters]) -> None:
    """/token, before any upstream call: the client limit, and no key once the day's minutes are used.
    `call_store` builds the store, only when a limit is set."""
    if not enabled(settings):
        return
    store = call_store()
    check_client(store, settings, client_id(request))
    check_minutes_left(store, settings)


def _call_seconds(settings: Settings) -> int:
    return settings.max_call_seconds or OPENAI_MAX_SESSION_SECONDS


def _min_grant(settings: Settings) -> int:
    """The shortest grant worth a call: never more than the call's own limit (MAX_CALL_SECONDS)."""
    return min(MIN_GRANT_SECONDS, _call_seconds(settings))


def _minutes_refused(limit_minutes: int) -> None:
    metrics.emit(metrics.CALLS_LIMITED, limit="daily_minutes")
    logger.warning("call refused: daily minutes used up", extra={"limit_minutes": limit_minutes})


def _report(used_seconds: int) -> None:
    metrics.emit(metrics.DAILY_MINUTES_USED, round(used_seconds / 60, 2))


def _day(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")


def _budget_key(day: str) -> str:
    return f"limit#minutes#{day}"


def _day_expiry(day: str) -> int:
    return int(datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()) + DAY_RECORD_SECONDS


def _seconds_to_midnight(now: float) -> int:
    day = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return math.ceil((day + timedelta(days=1)).timestamp() - now)
