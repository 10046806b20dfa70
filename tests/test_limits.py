"""Spend limits (shared/limits.py): calls per client per hour on /rtc and /token, call minutes per UTC
day for the stack. 429 + Retry-After (or 486 on /sip) before any upstream call, exact under a storm of
several processes sharing one DynamoDB (a moto server), refunds at the call's end."""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest

import observer_app
import rtc_app
import sip_app
import token_app
from shared import deps, limits, metrics
from shared.errors import TooManyRequests
from shared.hard_stop import HardStop
from shared.launcher import LocalObserverLauncher
from shared.settings import Settings
from shared.store import CallStore, DynamoCallStore, MemoryCallStore
from tests.calls_table import AWS_TEST_ENV, create_calls_table, dynamodb_client
from tests.conftest import (
    FakeContext,
    LogCapture,
    RecordingLauncher,
    incoming_call_body,
    load_event,
    response_json,
    sign,
    with_body,
)
from tests.fake_openai import FakeOpenAI
from tests.moto_aws import boto3_client
from tests.test_metrics_and_logs import emf, points

REPO = Path(__file__).resolve().parent.parent
IP_A, IP_B = "203.0.113.10", "198.51.100.7"
TODAY = datetime.now(UTC).strftime("%Y-%m-%d")


def rtc_event(ip: str = IP_A) -> dict[str, Any]:
    event = load_event("rtc")
    event["requestContext"]["http"]["sourceIp"] = ip
    return event


def token_event(ip: str = IP_A) -> dict[str, Any]:
    event = load_event("token")
    event["requestContext"]["http"]["sourceIp"] = ip
    return event


def sip_event(call_id: str, caller: str = "+15551230000") -> dict[str, Any]:
    body = json.loads(incoming_call_body(call_id))
    body["data"]["sip_headers"][0]["value"] = f"sip:{caller}@example.com"
    return sign(with_body(load_event("sip"), json.dumps(body).encode()))


def call(handler: Callable[[dict[str, Any], Any], dict[str, Any]], event: dict[str, Any]) -> dict[str, Any]:
    return handler(event, FakeContext())


def configure(env: pytest.MonkeyPatch, **values: str) -> None:
    for name, value in values.items():
        env.setenv(name, value)
    deps.reset()


def today_used() -> int:
    return deps.call_store().seconds_used(f"limit#minutes#{TODAY}")


def refused(result: dict[str, Any], reason: str) -> int:
    """Assert a 429 with the reason and a Retry-After; returns the Retry-After seconds."""
    assert result["statusCode"] == 429
    assert response_json(result) == {"error": reason}
    retry_after = int(result["headers"]["retry-after"])
    assert retry_after >= 1
    return retry_after


class SpyStore:
    """A MemoryCallStore that records each method used (to prove the default path never uses one)."""

    def __init__(self) -> None:
        self.inner = MemoryCallStore()
        self.used: list[str] = []

    def __getattr__(self, name: str) -> Any:
        self.used.append(name)
        return getattr(self.inner, name)


# ----------------------------------------------------------------- the counters, memory and DynamoDB


@pytest.fixture(params=["memory", "moto_server"])
def store(request: pytest.FixtureRequest) -> CallStore:
    if request.param == "memory":
        return MemoryCallStore()
    endpoint = request.getfixturevalue("moto_endpoint")
    table = f"calls-{uuid.uuid4().hex[:8]}"
    create_calls_table(dynamodb_client(endpoint), table)
    return DynamoCallStore(table, boto3_client("dynamodb", endpoint))


def test_a_client_counter_stops_exactly_at_its_limit(store: CallStore) -> None:
    counts = [store.count_call("limit#client#a#h", limit=3, expires_at=2_000_000_000) for _ in range(5)]
    assert counts == [1, 2, 3, None, None]
    assert store.count_call("limit#client#b#h", limit=3, expires_at=2_000_000_000) == 1  # its own counter


def test_a_budget_grants_what_is_left_and_never_overshoots(store: CallStore) -> None:
    def reserve() -> tuple[int, int] | None:
        return store.reserve_seconds("limit#minutes#d", want=250, limit=600, minimum=30, expires_at=2**31)

    assert [reserve(), reserve(), reserve(), reserve()] == [(250, 250), (250, 500), (100, 600), None]
    assert store.seconds_used("limit#minutes#d") == 600
    assert store.refund_seconds("limit#minutes#d", 80) == 520
    assert reserve() == (80, 600)  # 80 left: granted though shorter than asked
    assert store.refund_seconds("limit#minutes#d", 580) == 20
    assert reserve() == (250, 270)
    assert store.seconds_used("limit#minutes#other") == 0


def test_less_than_the_minimum_left_is_a_refusal(store: CallStore) -> None:
    kwargs = {"want": 100, "limit": 120, "minimum": 30, "expires_at": 2**31}
    assert store.reserve_seconds("limit#minutes#m", **kwargs) == (100, 100)
    assert store.reserve_seconds("limit#minutes#m", **kwargs) is None  # 20 s left < 30
    assert store.seconds_used("limit#minutes#m") == 100


def test_a_refund_never_recreates_a_budget(store: CallStore) -> None:
    assert store.refund_seconds("limit#minutes#gone", 30) is None
    assert store.seconds_used("limit#minutes#gone") == 0


def test_counters_carry_a_ttl(moto_endpoint: str) -> None:
    table = f"calls-{uuid.uuid4().hex[:8]}"
    admin = dynamodb_client(moto_endpoint)
    create_calls_table(admin, table)
    store = DynamoCallStore(table, boto3_client("dynamodb", moto_endpoint))
    settings = Settings(max_calls_per_client_per_hour=5, max_call_minutes_per_day=10)
    now = datetime(2026, 12, 2, 17, 40, 0, tzinfo=UTC).timestamp()
    limits.check_client(store, settings, "abc", now)
    assert limits.reserve(store, settings, now) == limits.Grant(seconds=600, day="2026-12-02")
    client = admin.get_item(TableName=table, Key={"pk": {"S": "limit#client#abc#2026-12-02T17"}})["Item"]
    assert client["n"] == {"N": "1"}
    assert int(client["expires_at"]["N"]) == datetime(2026, 12, 2, 18, 5, tzinfo=UTC).timestamp()
    day = admin.get_item(TableName=table, Key={"pk": {"S": "limit#minutes#2026-12-02"}})["Item"]
    assert day["used"] == {"N": "600"}
    assert int(day["expires_at"]["N"]) == datetime(2026, 12, 5, tzinfo=UTC).timestamp()


def test_retry_after_is_the_rest_of_the_hour_or_the_day() -> None:
    store, settings = MemoryCallStore(), Settings(max_calls_per_client_per_hour=1, max_call_minutes_per_day=1)
    at = datetime(2026, 12, 2, 17, 59, 30, tzinfo=UTC).timestamp()
    limits.check_client(store, settings, "abc", at)
    with pytest.raises(TooManyRequests) as hourly:
        limits.check_client(store, settings, "abc", at + 0.2)
    assert hourly.value.headers == {"Retry-After": "30"}
    limits.check_client(store, settings, "abc", at + 31)  # a new hour, a new counter
    late = datetime(2026, 12, 2, 23, 59, 58, 500_000, tzinfo=UTC).timestamp()
    assert limits.reserve(store, settings, late) is not None
    with pytest.raises(TooManyRequests) as daily:
        limits.reserve_or_refuse(store, settings, late)
    assert daily.value.headers == {"Retry-After": "2"}
    assert limits.reserve(store, settings, late + 2) is not None  # the next UTC day's budget


def test_a_refund_goes_to_the_day_of_the_reservation() -> None:
    store = MemoryCallStore()
    settings = Settings(max_call_minutes_per_day=100, max_call_seconds=300)
    grant = limits.reserve(store, settings, datetime(2026, 1, 1, 23, 59, tzinfo=UTC).timestamp())
    assert grant == limits.Grant(seconds=300, day="2026-01-01")
    limits.refund(grant, 61.2, store=store)  # used 62 s (whole seconds, rounded up)
    assert store.seconds_used("limit#minutes#2026-01-01") == 62
    limits.refund(limits.NO_GRANT, store=store)  # nothing reserved, nothing given back
    assert store.seconds_used("limit#minutes#2026-01-02") == 0


def test_the_hard_stop_fires_at_the_granted_length() -> None:
    stop = HardStop(Settings(max_call_seconds=900, hard_stop_grace_seconds=60))
    assert stop.plan("rtc_x", 1000.0, 120).at.timestamp() == 1000 + 120 + 60
    assert stop.plan("rtc_x", 1000.0).at.timestamp() == 1000 + 900 + 60


# ----------------------------------------------------------------- the default path


def test_with_no_limits_rtc_and_token_make_no_store_call(
    fake: FakeOpenAI, launcher: RecordingLauncher
) -> None:
    spy = SpyStore()
    with deps.call_store.override(cast(CallStore, spy)):
        assert call(rtc_app.handler, rtc_event())["statusCode"] == 200
        assert call(token_app.handler, token_event())["statusCode"] == 200
    assert spy.used == []
    assert launcher.requests[0].max_seconds is None
    assert launcher.requests[0].minutes_day is None


def test_the_spy_sees_the_store_calls_of_a_limit(
    fake: FakeOpenAI, launcher: RecordingLauncher, env: pytest.MonkeyPatch
) -> None:
    configure(env, MAX_CALLS_PER_CLIENT_PER_HOUR="5", MAX_CALL_MINUTES_PER_DAY="60")
    spy = SpyStore()
    with deps.call_store.override(cast(CallStore, spy)):
        assert call(rtc_app.handler, rtc_event())["statusCode"] == 200
        assert call(token_app.handler, token_event())["statusCode"] == 200
    assert spy.used == ["count_call", "reserve_seconds", "count_call", "seconds_used"]


# ----------------------------------------------------------------- /rtc and /token: per client


@pytest.mark.parametrize(
    ("handler", "event", "upstream"),
    [
        (rtc_app.handler, rtc_event, "/realtime/calls"),
        (token_app.handler, token_event, "/realtime/client_secrets"),
    ],
    ids=["rtc", "token"],
)
def test_over_the_client_limit_is_429_with_no_upstream_call(
    fake: FakeOpenAI,
    launcher: RecordingLauncher,
    env: pytest.MonkeyPatch,
    logs: LogCapture,
    capsys: pytest.CaptureFixture[str],
    handler: Callable[[dict[str, Any], Any], dict[str, Any]],
    event: Callable[[str], dict[str, Any]],
    upstream: str,
) -> None:
    configure(env, MAX_CALLS_PER_CLIENT_PER_HOUR="2")
    assert [call(handler, event(IP_A))["statusCode"] for _ in range(2)] == [200, 200]
    retry_after = refused(call(handler, event(IP_A)), limits.TOO_MANY_FROM_CLIENT)
    assert retry_after <= 3600
    assert math.isclose(retry_after, 3600 - time.time() % 3600, abs_tol=2)  # the end of the UTC hour
    assert len(fake.requests_to(upstream)) == 2
    # The source IP decides, not a header the client writes.
    spoofed = event(IP_A)
    spoofed["headers"]["x-forwarded-for"] = IP_B
    assert call(handler, spoofed)["statusCode"] == 429
    assert call(handler, event(IP_B))["statusCode"] == 200  # another client has its own counter
    assert len(fake.requests_to(upstream)) == 3
    # The IP is never logged nor stored as such: its digest is.
    assert all(IP_A not in line for line in logs.lines)
    refusal = logs.messages("call refused: client hourly limit")[0]
    assert refusal["client"] == hashlib.sha256(IP_A.encode()).hexdigest()[:16]
    limited = points(emf(capsys.readouterr().out), metrics.CALLS_LIMITED)
    assert [(p["limit"], p[metrics.CALLS_LIMITED]) for p in limited] == [("client_hourly", [1.0])] * 2


def test_bad_input_or_origin_counts_nothing(
    fake: FakeOpenAI, launcher: RecordingLauncher, env: pytest.MonkeyPatch
) -> None:
    configure(
        env,
        MAX_CALLS_PER_CLIENT_PER_HOUR="1",
        MAX_CALL_MINUTES_PER_DAY="60",
        ALLOWED_ORIGINS="https://abc123defg.execute-api.us-east-1.amazonaws.com",
    )
    not_sdp = with_body(rtc_event(), b"hello")
    assert call(rtc_app.handler, not_sdp)["statusCode"] == 400
    elsewhere = rtc_event()
    elsewhere["headers"]["origin"] = "https://evil.example"
    assert call(rtc_app.handler, elsewhere)["statusCode"] == 403
    assert today_used() == 0
    assert call(rtc_app.handler, rtc_event())["statusCode"] == 200  # the one call of the hour is still there
    assert call(rtc_app.handler, rtc_event())["statusCode"] == 429


# ----------------------------------------------------------------- /rtc and /token: daily minutes


def test_rtc_reserves_the_call_length_and_refuses_when_the_minutes_are_used(
    fake: FakeOpenAI, launcher: RecordingLauncher, env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    configure(env, MAX_CALL_MINUTES_PER_DAY="2", MAX_CALL_SECONDS="90")
    assert call(rtc_app.handler, rtc_event())["statusCode"] == 200
    assert call(rtc_app.handler, rtc_event(IP_B))["statusCode"] == 200
    assert [(r.max_seconds, r.minutes_day) for r in launcher.requests] == [(90, TODAY), (30, TODAY)]
    retry_after = refused(call(rtc_app.handler, rtc_event()), limits.MINUTES_USED_UP)
    assert math.isclose(retry_after, 86400 - time.time() % 86400, abs_tol=2)  # midnight UTC
    assert len(fake.requests_to("/realtime/calls")) == 2
    assert today_used() == 120
    # /token reserves nothing, but mints no key once the minutes are used up.
    refused(call(token_app.handler, token_event()), limits.MINUTES_USED_UP)
    assert fake.requests_to("/realtime/client_secrets") == []
    docs = emf(capsys.readouterr().out)
    assert [p[metrics.DAILY_MINUTES_USED] for p in points(docs, metrics.DAILY_MINUTES_USED)] == [[1.5], [2.0]]
    assert [p["limit"] for p in points(docs, metrics.CALLS_LIMITED)] == ["daily_minutes"] * 2


def test_calls_shorter_than_the_minimum_grant_are_still_granted(
    fake: FakeOpenAI, launcher: RecordingLauncher, env: pytest.MonkeyPatch
) -> None:
    # MAX_CALL_SECONDS under MIN_GRANT_SECONDS: a grant never needs more than the call's own limit.
    configure(env, MAX_CALL_MINUTES_PER_DAY="1", MAX_CALL_SECONDS="20")
    assert [call(rtc_app.handler, rtc_event(ip))["statusCode"] for ip in (IP_A, IP_B, IP_A)] == [200] * 3
    assert [r.max_seconds for r in launcher.requests] == [20, 20, 20]
    assert today_used() == 60
    refused(call(rtc_app.handler, rtc_event()), limits.MINUTES_USED_UP)  # nothing left at all
    assert limits.MIN_GRANT_SECONDS > 20


def test_token_is_refused_only_when_not_even_one_short_call_fits(
    fake: FakeOpenAI, env: pytest.MonkeyPatch
) -> None:
    configure(env, MAX_CALL_MINUTES_PER_DAY="1", MAX_CALL_SECONDS="20")
    deps.call_store().reserve_seconds(
        f"limit#minutes#{TODAY}", want=40, limit=60, minimum=1, expires_at=2**31
    )
    assert call(token_app.handler, token_event())["statusCode"] == 200  # 20 s left: one 20 s call fits
    deps.call_store().reserve_seconds(f"limit#minutes#{TODAY}", want=1, limit=60, minimum=1, expires_at=2**31)
    refused(call(token_app.handler, token_event()), limits.MINUTES_USED_UP)


def test_token_does_not_reserve_minutes(fake: FakeOpenAI, env: pytest.MonkeyPatch) -> None:
    configure(env, MAX_CALL_MINUTES_PER_DAY="1")
    assert [call(token_app.handler, token_event())["statusCode"] for _ in range(3)] == [200, 200, 200]
    assert today_used() == 0


def test_a_failed_upstream_call_gives_its_minutes_back(
    fake: FakeOpenAI, launcher: RecordingLauncher, env: pytest.MonkeyPatch
) -> None:
    configure(env, MAX_CALL_MINUTES_PER_DAY="1", MAX_CALL_SECONDS="60")
    fake.fail_next("/realtime/calls", 500)
    assert call(rtc_app.handler, rtc_event())["statusCode"] == 502
    assert today_used() == 0
    assert call(rtc_app.handler, rtc_event())["statusCode"] == 200  # the whole minute is there again
    assert launcher.requests[0].max_seconds == 60


def test_the_hard_stop_and_observer_get_the_grant(
    fake: FakeOpenAI, launcher: RecordingLauncher, env: pytest.MonkeyPatch
) -> None:
    configure(env, MAX_CALL_MINUTES_PER_DAY="1", MAX_CALL_SECONDS="900")
    planned: list[tuple[str, int | None]] = []

    class Stop(HardStop):
        def schedule(
            self, call_id: str, started_at: float | None = None, *, limit_seconds: int | None = None
        ) -> None:
            planned.append((call_id, limit_seconds))

    with deps.hard_stop.override(Stop(deps.settings())):
        assert call(rtc_app.handler, rtc_event())["statusCode"] == 200
    (observed,) = launcher.requests
    assert planned == [(observed.call_id, 60)]
    assert (observed.max_seconds, observed.minutes_day) == (60, TODAY)


def test_the_observer_refunds_what_the_call_did_not_use(fake: FakeOpenAI, env: pytest.MonkeyPatch) -> None:
    configure(env, MAX_CALL_MINUTES_PER_DAY="10", MAX_CALL_SECONDS="300")
    observers = LocalObserverLauncher(
        lambda event: observer_app.handler(event, FakeContext(remaining_seconds=60))
    )
    deps.install_local_launcher(observers)
    started = time.time()
    assert call(rtc_app.handler, rtc_event())["statusCode"] == 200
    assert today_used() == 300  # reserved while the call runs
    for thread in observers.threads:
        thread.join(timeout=15)
        assert not thread.is_alive()
    assert len(fake.sidebands) == 1  # the observer really watched the call (the fake ends it after 0.5 s)
    assert 1 <= today_used() <= math.ceil(time.time() - started)


# ----------------------------------------------------------------- /sip


@pytest.fixture
def sip_limits(env: pytest.MonkeyPatch, launcher: RecordingLauncher) -> RecordingLauncher:
    configure(env, MAX_CALL_MINUTES_PER_DAY="1", MAX_CALL_SECONDS="45", DENIED_CALLERS="+1555666*")
    return launcher


def test_sip_reserves_and_then_rejects_with_486(fake: FakeOpenAI, sip_limits: RecordingLauncher) -> None:
    for call_id in ("rtc_limit000001", "rtc_limit000002"):
        fake.register_call(call_id)
        assert call(sip_app.handler, sip_event(call_id))["statusCode"] == 200
    assert [r.path.split("/")[-2] for r in fake.requests_to("/accept")] == ["rtc_limit000001"]
    (busy,) = fake.requests_to("/reject")
    assert busy.path.endswith("rtc_limit000002/reject")
    assert busy.json == {"status_code": 486}
    assert [(r.call_id, r.max_seconds, r.minutes_day) for r in sip_limits.requests] == [
        ("rtc_limit000001", 45, TODAY)
    ]
    assert today_used() == 45


def test_sip_refused_for_another_reason_or_redelivered_reserves_nothing(
    fake: FakeOpenAI, sip_limits: RecordingLauncher
) -> None:
    fake.register_call("rtc_denied00001")
    assert call(sip_app.handler, sip_event("rtc_denied00001", caller="+15556660000"))["statusCode"] == 200
    assert [r.json for r in fake.requests_to("/reject")] == [{"status_code": 603}]
    forged = sip_event("rtc_forged00001")
    forged["headers"]["webhook-signature"] = "v1,AAAA"
    assert call(sip_app.handler, forged)["statusCode"] == 401
    assert today_used() == 0
    fake.register_call("rtc_once0000001")
    event = sip_event("rtc_once0000001")
    assert call(sip_app.handler, event)["statusCode"] == 200
    assert call(sip_app.handler, json.loads(json.dumps(event)))["statusCode"] == 200  # OpenAI redelivers
    assert len(fake.requests_to("/accept")) == 1
    assert today_used() == 45


def test_an_accepted_delivery_keeps_its_grant_for_a_relaunch(store: CallStore) -> None:
    store.begin_delivery("wh_grant")
    store.mark_delivery("wh_grant", "accepted", grant=limits.Grant(seconds=45, day=TODAY))
    assert store.delivery_grant("wh_grant") == limits.Grant(seconds=45, day=TODAY)
    store.begin_delivery("wh_plain")
    store.mark_delivery("wh_plain", "accepted")  # no daily limit: nothing to remember
    assert store.delivery_grant("wh_plain") is None
    assert store.delivery_grant("wh_never") is None


def test_sip_relaunch_after_a_failed_launch_carries_the_first_grant(
    fake: FakeOpenAI, sip_limits: RecordingLauncher, env: pytest.MonkeyPatch
) -> None:
    configure(env, WEBHOOK_LOCK_SECONDS="0.2")

    class Failing:
        def prepare(self) -> None:
            pass

        def launch(self, request: object) -> None:
            raise RuntimeError("invoke failed")

    fake.register_call("rtc_relaunch001")
    event = sip_event("rtc_relaunch001")
    deps.install_local_launcher(Failing())
    assert call(sip_app.handler, event)["statusCode"] == 500
    deps.install_local_launcher(sip_limits)
    time.sleep(0.3)  # the failed delivery's lock lapses; OpenAI redelivers
    assert call(sip_app.handler, json.loads(json.dumps(event)))["statusCode"] == 200
    assert len(fake.requests_to("/accept")) == 1
    # The relaunched observer gets the grant the accept reserved, not MAX_CALL_SECONDS, and nothing
    # is reserved twice.
    assert [(r.call_id, r.max_seconds, r.minutes_day) for r in sip_limits.requests] == [
        ("rtc_relaunch001", 45, TODAY)
    ]
    assert today_used() == 45


def test_sip_accept_failure_gives_the_minutes_back(
    fake: FakeOpenAI, sip_limits: RecordingLauncher, env: pytest.MonkeyPatch
) -> None:
    configure(env, ACCEPT_MAX_ATTEMPTS="1")
    fake.register_call("rtc_fail0000001")
    fake.fail_next("/accept", 500)
    assert call(sip_app.handler, sip_event("rtc_fail0000001"))["statusCode"] == 502
    assert today_used() == 0
    assert fake.requests_to("/reject") == []


# ----------------------------------------------------------------- storms: several processes, one DynamoDB


def storm(
    env: pytest.MonkeyPatch, endpoint: str, route: str, ips: list[str], attempts: int, **limit_env: str
) -> list[dict[str, Any]]:
    """One process per entry of `ips`, each firing `attempts` requests at once; their outputs."""
    table = f"calls-{uuid.uuid4().hex[:8]}"
    create_calls_table(dynamodb_client(endpoint), table)
    values = {
        **AWS_TEST_ENV,
        "CALL_STORE": "dynamodb",
        "CALLS_TABLE_NAME": table,
        "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
        **limit_env,
    }
    configure(env, **values)
    child_env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), *(str(REPO / "functions" / f) for f in ("rtc", "token"))]),
    }
    procs = [
        subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [
                sys.executable,
                "-m",
                "tests.limit_storm_worker",
                json.dumps({"route": route, "attempts": attempts, "source_ip": ip}),
            ],
            cwd=REPO,
            env=child_env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for ip in ips
    ]
    for proc in procs:  # all imported and warm: then all fire together
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    return [json.loads(proc.communicate(timeout=90)[0].strip().splitlines()[-1]) for proc in procs]


@pytest.mark.parametrize(("route", "upstream"), [("rtc", "/realtime/calls"), ("token", "/client_secrets")])
def test_the_client_limit_is_exact_under_a_storm_of_processes(
    fake: FakeOpenAI, env: pytest.MonkeyPatch, moto_endpoint: str, route: str, upstream: str
) -> None:
    outputs = storm(env, moto_endpoint, route, [IP_A] * 6, 10, MAX_CALLS_PER_CLIENT_PER_HOUR="17")
    statuses = [s for out in outputs for s in out["statuses"]]
    assert len(statuses) == 60
    assert statuses.count(200) == 17
    assert statuses.count(429) == 43
    assert len(fake.requests_to(upstream)) == 17
    assert all(1 <= r <= 3600 for out in outputs for r in out["retry_after"])


def test_the_daily_minutes_are_exact_under_a_storm_of_processes(
    fake: FakeOpenAI, env: pytest.MonkeyPatch, moto_endpoint: str
) -> None:
    ips = [f"192.0.2.{n}" for n in range(1, 7)]
    outputs = storm(env, moto_endpoint, "rtc", ips, 10, MAX_CALL_MINUTES_PER_DAY="10", MAX_CALL_SECONDS="70")
    statuses = [s for out in outputs for s in out["statuses"]]
    grants = [g for out in outputs for g in out["grants"]]
    assert len(statuses) == 60
    assert sum(grants) == 600  # demand (60 x 70 s) exceeds the 600 s: all of it, and not a second more
    assert all(30 <= g <= 70 for g in grants)
    assert statuses.count(200) == len(grants) == len(fake.requests_to("/realtime/calls"))
    assert statuses.count(429) == 60 - len(grants)
    assert today_used() == 600


def test_make_dev_applies_the_limits_by_peer_address(fake: FakeOpenAI, env: pytest.MonkeyPatch) -> None:
    """The local stand-in's sourceIp is the connecting peer, as API Gateway's: X-Forwarded-For, which
    any client can write, changes nothing."""
    from local_api.server import LocalServer, create_gateway

    configure(env, MAX_CALLS_PER_CLIENT_PER_HOUR="1")
    with LocalServer(create_gateway()) as server:
        first = httpx.get(f"{server.url}/token")
        second = httpx.get(f"{server.url}/token", headers={"x-forwarded-for": IP_B})
    assert (first.status_code, second.status_code) == (200, 429)
    assert 1 <= int(second.headers["retry-after"]) <= 3600


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        ("203.0.113.10", "203.0.113.11", False),
        ("2001:db8:1:2::1", "2001:db8:1:2:ffff::9", True),  # one /64: one client
        ("2001:db8:1:2::1", "2001:db8:1:3::1", False),
        ("::ffff:203.0.113.10", "203.0.113.10", True),
    ],
)
def test_a_client_is_an_ipv4_address_or_an_ipv6_64(first: str, second: str, same: bool) -> None:
    def client(ip: str) -> str:
        return limits.client_id(cast(Any, SimpleNamespace(client=SimpleNamespace(host=ip))))

    assert (client(first) == client(second)) is same
    assert len(client(first)) == 16
    assert first not in client(first)
