"""Outbound calls (POST /calls, shared/outbound.py) against the fake OpenAI's GPT-Live: the toll-fraud
guard and every other refusal before anything goes upstream, the limits reserved and given back, one
create per call (never retried after an ambiguous timeout), and one clear line per upstream failure."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import calls_app
from shared import deps
from shared.errors import UpstreamError, UpstreamTimeout
from shared.live_session import SipTrunk, live_session, outbound_create_body
from shared.outbound import RINGING_SECONDS, call_seconds, load_trunk
from shared.secrets import SecretStore
from shared.settings import Settings
from shared.store import MemoryCallStore
from shared.upstream import OpenAIClient
from tests.conftest import TRUNK, TRUNK_PASSWORD, FakeContext, RecordingLauncher, load_event, response_json
from tests.fake_live import _SipCreateParams
from tests.fake_openai import FakeOpenAI
from tests.sdk_strict import assert_strict

TO = "+14155550123"
CREATE_PATH = "/v1/live/sessions"
AGENTS = """
agents:
  default: {}
  sales:
    api: live
    instructions: You call customers back about their orders.
    store: true
  classic:
    api: realtime
"""
DAY_MINUTES = 120


@pytest.fixture
def outbound(
    env: pytest.MonkeyPatch, fake: FakeOpenAI, launcher: RecordingLauncher, tmp_path: Path
) -> Iterator[MemoryCallStore]:
    """Outbound on: a trunk, allowed prefixes, a Live profile; a minutes budget and a concurrency cap
    in an in-process call store (the counters a deployed stack keeps in DynamoDB)."""
    agents = tmp_path / "agents.yaml"
    agents.write_text(AGENTS)
    env.setenv("AGENTS_FILE", str(agents))
    env.setenv("OUTBOUND_TRUNK", json.dumps(TRUNK))
    env.setenv("OUTBOUND_ALLOWED_PREFIXES", "+1415*, +44")
    env.setenv("MAX_CALL_MINUTES_PER_DAY", str(DAY_MINUTES))
    env.setenv("MAX_CONCURRENT_CALLS", "2")
    deps.reset()
    fake.live.outbound_enabled = True
    store = MemoryCallStore()
    with deps.call_store.override(store):
        yield store


def dial(body: dict[str, Any] | str) -> tuple[int, dict[str, Any]]:
    event = load_event("dial")
    event["body"] = body if isinstance(body, str) else json.dumps(body)
    result = calls_app.handler(event, FakeContext())
    return result["statusCode"], response_json(result)


def minutes_used(store: MemoryCallStore) -> int:
    day = time.strftime("%Y-%m-%d", time.gmtime())
    return store.seconds_used(f"limit#minutes#{day}")


def slots(store: MemoryCallStore) -> dict[str, float]:
    held: dict[str, float] = store._items.get("slots", {"calls": {}})["calls"]
    return held


def creates(fake: FakeOpenAI) -> int:
    return len(fake.requests_to(CREATE_PATH))


# ----------------------------------------------------------------- a placed call


def test_a_call_is_placed_once_and_handed_to_its_observer(
    outbound: MemoryCallStore, fake: FakeOpenAI, launcher: RecordingLauncher
) -> None:
    status, answer = dial({"to": TO, "agent": "sales", "metadata": {"ticket": "T-1"}})
    assert status == 201, answer
    call_id = answer["call_id"]
    assert call_id.startswith("live_")
    expected = call_seconds(deps.settings())
    assert answer == {"call_id": call_id, "agent": "sales", "to": "+1415***0123", "max_seconds": expected}
    assert expected == 900 + RINGING_SECONDS  # MAX_CALL_SECONDS' default + OpenAI's 3 min of ringing
    assert (creates(fake), fake.live.create_count) == (1, 1)
    (body,) = fake.live.creates
    # The session strictly as the SDK types it; the SIP transport as the guide documents it.
    from openai.types.live.media_session_config_param import MediaSessionConfigParam

    assert_strict(MediaSessionConfigParam, body["session"], path="session")
    assert_strict(_SipCreateParams, body)
    assert body["transport"] == {
        "type": "sip",
        "destination": TO,
        "trunk": {
            "provider_url": TRUNK["provider_url"],
            "auth": {"type": "digest", "username": TRUNK["username"], "password": TRUNK_PASSWORD},
            "caller_number": TRUNK["caller_number"],
        },
    }
    assert body["session"]["store"] is True  # the profile's `store: true`
    assert body["session"]["instructions"] == "You call customers back about their orders."
    (request,) = launcher.requests
    assert (request.call_id, request.source, request.agent, request.dialed) == (
        call_id,
        "outbound",
        "sales",
        "+1415***0123",
    )
    assert (request.max_seconds, request.metadata) == (expected, {"ticket": "T-1"})
    assert request.minutes_day == time.strftime("%Y-%m-%d", time.gmtime())
    assert minutes_used(outbound) == expected  # reserved before dialling; the observer refunds the rest
    assert list(slots(outbound)) == [call_id]  # the slot moved from its placeholder to the call


# ----------------------------------------------------------------- refused before anything goes upstream


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ({"to": "+12125550123", "agent": "sales"}, 403, "Destination +1212***0123 is not in"),
        ({"to": "+33155550123", "agent": "sales"}, 403, "Destination +3315***0123 is not in"),
        ({"to": "4155550123", "agent": "sales"}, 400, "Invalid request: `to` must be an E.164 number"),
        (
            {"to": "sip:bob@example.com", "agent": "sales"},
            400,
            "Invalid request: `to` must be an E.164 number",
        ),
        ({"to": TO, "agent": "classic"}, 400, "Agent profile 'classic' uses the Realtime API"),
        ({"to": TO, "agent": "default"}, 400, "Agent profile 'default' uses the Realtime API"),
        ({"to": TO, "agent": "nobody"}, 400, "No agent profile 'nobody'"),
        ({"to": TO, "agent": "sales", "from": "+1"}, 400, "Invalid request: body.from is invalid"),
        ({"to": TO}, 400, "Invalid request: body.agent is invalid"),
        ({"to": TO, "agent": "sales", "metadata": {"bad key": "x"}}, 400, "Invalid request: body.metadata"),
        ("not json", 400, "Invalid request"),
    ],
)
def test_refusals_cost_nothing(
    outbound: MemoryCallStore,
    fake: FakeOpenAI,
    launcher: RecordingLauncher,
    body: dict[str, Any] | str,
    status: int,
    reason: str,
) -> None:
    got, answer = dial(body)
    assert got == status
    assert answer["error"].startswith(reason), answer
    assert creates(fake) == 0
    assert (minutes_used(outbound), slots(outbound), launcher.requests) == (0, {}, [])


def test_without_allowed_prefixes_outbound_is_off(
    outbound: MemoryCallStore, env: pytest.MonkeyPatch, fake: FakeOpenAI
) -> None:
    env.setenv("OUTBOUND_ALLOWED_PREFIXES", "")
    deps.reset()
    status, answer = dial({"to": TO, "agent": "sales"})
    assert (status, answer["error"]) == (
        403,
        "Outbound calls are off: OUTBOUND_ALLOWED_PREFIXES (template parameter OutboundAllowedPrefixes) "
        "is empty",
    )
    assert (creates(fake), minutes_used(outbound)) == (0, 0)


@pytest.mark.parametrize(
    ("trunk", "reason"),
    [
        ("", "Server misconfigured: OUTBOUND_TRUNK is not set"),
        ("{not json", "Server misconfigured: OUTBOUND_TRUNK: the trunk is not JSON"),
        (
            json.dumps({**TRUNK, "provider_url": "sip:plain.example.com"}),
            "invalid trunk field(s) provider_url",
        ),
        (json.dumps({**TRUNK, "password": ""}), "invalid trunk field(s) password"),
        (json.dumps({**TRUNK, "caller_number": "555"}), "invalid trunk field(s) caller_number"),
    ],
)
def test_an_unusable_trunk_is_a_500_naming_it(
    outbound: MemoryCallStore, env: pytest.MonkeyPatch, fake: FakeOpenAI, trunk: str, reason: str
) -> None:
    env.setenv("OUTBOUND_TRUNK", trunk)
    deps.reset()
    status, answer = dial({"to": TO, "agent": "sales"})
    assert status == 500
    assert reason in answer["error"]
    assert (creates(fake), minutes_used(outbound), slots(outbound)) == (0, 0, {})


def test_the_limits_refuse_before_dialling(
    outbound: MemoryCallStore, env: pytest.MonkeyPatch, fake: FakeOpenAI
) -> None:
    env.setenv("MAX_CONCURRENT_CALLS", "1")
    deps.reset()
    assert dial({"to": TO, "agent": "sales"})[0] == 201
    status, answer = dial({"to": TO, "agent": "sales"})
    assert (status, answer["error"]) == (
        429,
        "Concurrent call limit reached (MAX_CONCURRENT_CALLS); try again later",
    )
    assert creates(fake) == 1
    env.setenv("MAX_CONCURRENT_CALLS", "0")
    env.setenv("MAX_CALL_MINUTES_PER_DAY", "18")  # the first call holds all 18 of them
    deps.reset()
    status, answer = dial({"to": TO, "agent": "sales"})
    assert (status, answer["error"]) == (429, "The call minutes for today are used up; try again tomorrow")
    assert creates(fake) == 1


# ----------------------------------------------------------------- upstream failures: one line, refunded


@pytest.mark.parametrize(
    ("fault", "status", "reason"),
    [
        (
            None,  # the organization has no outbound SIP
            502,
            "OpenAI refused the call: outbound SIP is not enabled for this organization "
            "(403 outbound_sip_not_enabled)",
        ),
        (502, 502, "OpenAI could not set up the SIP transport to the trunk (502"),
        (504, 504, "OpenAI timed out initialising the call's session (504"),
        (400, 502, "OpenAI refused the call's session or transport (400"),
    ],
)
def test_a_refused_create_is_one_line_and_gives_everything_back(
    outbound: MemoryCallStore,
    fake: FakeOpenAI,
    launcher: RecordingLauncher,
    fault: int | None,
    status: int,
    reason: str,
) -> None:
    if fault is None:
        fake.live.outbound_enabled = False
    else:
        fake.fail_next(CREATE_PATH, fault)
    got, answer = dial({"to": TO, "agent": "sales"})
    assert got == status
    assert answer["error"].startswith(reason), answer
    assert "\n" not in answer["error"]
    assert creates(fake) == 1  # tried once
    assert (minutes_used(outbound), slots(outbound), launcher.requests) == (0, {}, [])


def test_a_create_that_times_out_is_never_retried(
    outbound: MemoryCallStore, env: pytest.MonkeyPatch, fake: FakeOpenAI, launcher: RecordingLauncher
) -> None:
    """The request reached OpenAI, which may be dialling: a second create would ring the phone twice."""
    env.setenv("UPSTREAM_TIMEOUT_SECONDS", "0.3")
    deps.reset()
    fake.delay_next(CREATE_PATH, 1.0)
    status, answer = dial({"to": TO, "agent": "sales"})
    assert status == 504
    assert answer["error"] == (
        "OpenAI did not answer in time: the call may have been placed; a create is never retried "
        "(see GET /calls)"
    )
    deadline = time.monotonic() + 5
    while fake.live.create_count < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake.live.create_count == 1  # the fake did place it, once
    time.sleep(0.3)
    assert creates(fake) == 1
    assert (minutes_used(outbound), slots(outbound), launcher.requests) == (0, {}, [])


def test_a_connection_lost_after_sending_is_not_retried(fake: FakeOpenAI) -> None:
    fake.live.outbound_enabled = True
    fake.reset_next(CREATE_PATH)
    settings = Settings(openai_base_url=fake.base_url, openai_api_key=fake.api_key)
    client = OpenAIClient(settings, SecretStore(settings))
    with pytest.raises(UpstreamError) as raised:
        asyncio.run(client.create_outbound_session(_body()))
    assert not isinstance(raised.value, UpstreamTimeout)
    assert "OpenAI unreachable" in raised.value.reason
    assert creates(fake) == 1


def test_the_trunk_password_never_shows_in_a_repr() -> None:
    body = outbound_create_body(live_session(Settings(), "sip"), TO, SipTrunk.model_validate(_trunk()))
    assert TRUNK_PASSWORD not in repr(body)
    assert TRUNK_PASSWORD not in str(body)
    assert body.to_json()["transport"]["trunk"]["auth"]["password"] == TRUNK_PASSWORD


def _trunk() -> dict[str, Any]:
    return {
        "provider_url": TRUNK["provider_url"],
        "auth": {"username": TRUNK["username"], "password": TRUNK_PASSWORD},
        "caller_number": TRUNK["caller_number"],
    }


def _body() -> dict[str, Any]:
    return outbound_create_body(
        live_session(Settings(), "sip"), TO, SipTrunk.model_validate(_trunk())
    ).to_json()


def test_the_trunk_secret_is_read_through_the_cache(moto_endpoint: str) -> None:
    """In AWS the trunk is a Secrets Manager secret: a new value applies within SECRETS_CACHE_SECONDS,
    without a redeploy, and its value is never part of the settings."""
    from tests.moto_aws import boto3_client

    secrets = boto3_client("secretsmanager", moto_endpoint)
    arn = secrets.create_secret(Name=f"trunk-{time.time_ns()}", SecretString=json.dumps(TRUNK))["ARN"]
    for cache_seconds, expected in ((60, "hello-trunk"), (0, "rotated")):
        settings = Settings(outbound_trunk_secret_arn=arn, secrets_cache_seconds=cache_seconds)
        store = SecretStore(settings, boto3_client("secretsmanager", moto_endpoint))
        assert load_trunk(store, settings).auth.username == "hello-trunk"
        secrets.put_secret_value(SecretId=arn, SecretString=json.dumps({**TRUNK, "username": "rotated"}))
        assert load_trunk(store, settings).auth.username == expected
        secrets.put_secret_value(SecretId=arn, SecretString=json.dumps(TRUNK))
    assert TRUNK_PASSWORD not in settings.model_dump_json()


def test_store_is_a_live_only_profile_field() -> None:
    from shared.agents import AgentsError, parse

    with pytest.raises(AgentsError, match=r"only a Live profile \(`api: live`\) takes store"):
        parse("agents:\n  classic:\n    api: realtime\n    store: true\n", [])
    live = parse("agents:\n  sales:\n    api: live\n    store: true\n", [])
    assert live.agents["sales"].store is True
