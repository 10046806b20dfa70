"""The hard stop (shared/hard_stop.py, functions/hangup/): a one-shot EventBridge Scheduler schedule made at
call start on a moto server (real HTTP), deleted by the observer on a normal end, and the hangup it fires."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

import hangup_app
import observer_app
import rtc_app
import sip_app
from shared import deps
from shared.errors import UpstreamError
from shared.hard_stop import OPENAI_MAX_SESSION_SECONDS, HardStop, schedule_name
from shared.settings import Settings
from tests.conftest import (
    FakeContext,
    LogCapture,
    RecordingLauncher,
    incoming_call_body,
    live_incoming_call_body,
    load_event,
    sign,
    with_body,
)
from tests.fake_openai import FakeOpenAI
from tests.moto_aws import aws_environment, boto3_client

HANGUP_ARN = "arn:aws:lambda:us-east-1:123456789012:function:stack-hangup"
ROLE_ARN = "arn:aws:iam::123456789012:role/stack-hangup-scheduler"


@pytest.fixture
def group(moto_endpoint: str) -> str:
    name = f"hangups-{uuid.uuid4().hex[:8]}"
    boto3_client("scheduler", moto_endpoint).create_schedule_group(Name=name)
    return name


@pytest.fixture
def scheduler(moto_endpoint: str) -> Any:
    return boto3_client("scheduler", moto_endpoint)


@pytest.fixture
def hard_stop_env(env: pytest.MonkeyPatch, moto_endpoint: str, group: str) -> Iterator[pytest.MonkeyPatch]:
    """The functions configured as deployed for the hard stop, their AWS clients on the moto server."""
    for name, value in {
        **aws_environment(moto_endpoint),
        "HANGUP_FUNCTION_ARN": HANGUP_ARN,
        "SCHEDULER_ROLE_ARN": ROLE_ARN,
        "HANGUP_SCHEDULE_GROUP": group,
        "HARD_STOP_GRACE_SECONDS": "30",
        "MAX_CALL_SECONDS": "600",
    }.items():
        env.setenv(name, value)
    deps.reset()
    yield env
    deps.reset()


def settings(group: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "hangup_function_arn": HANGUP_ARN,
        "scheduler_role_arn": ROLE_ARN,
        "hangup_schedule_group": group,
        "hard_stop_grace_seconds": 30,
        "max_call_seconds": 600,
    }
    return Settings(**{**values, **overrides})


def join_hard_stops() -> None:
    assert deps.hard_stop().settle(timeout=30)


def at(timestamp: float) -> str:
    return f"at({datetime.fromtimestamp(timestamp, UTC).strftime('%Y-%m-%dT%H:%M:%S')})"


def test_the_schedule_fires_once_at_the_limit_plus_grace_and_targets_the_hangup(
    scheduler: Any, group: str
) -> None:
    started = 1_900_000_000.4
    hard_stop = HardStop(settings(group), scheduler)
    thread = hard_stop.schedule("rtc_hard1", started_at=started)
    assert thread is not None
    assert hard_stop.settle(timeout=30)  # what a handler may call before Lambda freezes it
    assert not thread.is_alive()
    made = scheduler.get_schedule(Name="hangup-rtc_hard1", GroupName=group)
    assert made["ScheduleExpression"] == at(started + 600 + 30 + 0.6) == "at(2030-03-17T17:57:11)"
    assert made["ScheduleExpressionTimezone"] == "UTC"
    assert made["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert made["ActionAfterCompletion"] == "DELETE"
    assert made["Target"]["Arn"] == HANGUP_ARN
    assert made["Target"]["RoleArn"] == ROLE_ARN
    assert json.loads(made["Target"]["Input"]) == {"call_id": "rtc_hard1"}


def test_without_a_call_limit_the_hard_stop_is_at_openais_cap(group: str) -> None:
    plan = HardStop(settings(group, max_call_seconds=0)).plan("rtc_nolimit", 1_900_000_000.0)
    assert OPENAI_MAX_SESSION_SECONDS == 3600
    assert plan.expression == at(1_900_000_000 + 3600 + 30)


def test_long_call_ids_get_a_name_scheduler_accepts() -> None:
    long_id = "rtc_" + "x" * 120
    name = schedule_name(long_id)
    assert len(name) <= 64
    assert name.startswith("hangup-")
    assert name != schedule_name(long_id + "y")
    assert schedule_name("rtc_short") == "hangup-rtc_short"


def test_rtc_schedules_the_hard_stop_at_call_start(
    hard_stop_env: pytest.MonkeyPatch,
    fake: FakeOpenAI,
    launcher: RecordingLauncher,
    scheduler: Any,
    group: str,
) -> None:
    before = time.time()
    result = rtc_app.handler(load_event("rtc"), FakeContext())
    assert result["statusCode"] == 200
    (observed,) = launcher.requests
    assert launcher.prepared == 1
    join_hard_stops()
    made = scheduler.get_schedule(Name=schedule_name(observed.call_id), GroupName=group)
    assert json.loads(made["Target"]["Input"]) == {"call_id": observed.call_id}
    fires = datetime.strptime(made["ScheduleExpression"], "at(%Y-%m-%dT%H:%M:%S)").replace(tzinfo=UTC)
    assert before + 630 <= fires.timestamp() <= time.time() + 631


def test_sip_schedules_the_hard_stop_when_it_accepts(
    hard_stop_env: pytest.MonkeyPatch,
    fake: FakeOpenAI,
    launcher: RecordingLauncher,
    scheduler: Any,
    group: str,
) -> None:
    call_id = f"rtc_sip{uuid.uuid4().hex[:12]}"
    fake.register_call(call_id)
    result = sip_app.handler(sign(with_body(load_event("sip"), incoming_call_body(call_id))), FakeContext())
    assert result["statusCode"] == 200
    join_hard_stops()
    made = scheduler.get_schedule(Name=schedule_name(call_id), GroupName=group)
    assert made["Target"]["Arn"] == HANGUP_ARN


def test_a_failed_schedule_is_logged_and_the_call_goes_on(
    hard_stop_env: pytest.MonkeyPatch, fake: FakeOpenAI, launcher: RecordingLauncher, logs: LogCapture
) -> None:
    with socket.socket() as probe:  # a port nothing listens on: Scheduler unreachable
        probe.bind(("127.0.0.1", 0))
        hard_stop_env.setenv("AWS_ENDPOINT_URL_SCHEDULER", f"http://127.0.0.1:{probe.getsockname()[1]}")
    deps.reset()
    result = rtc_app.handler(load_event("rtc"), FakeContext())
    assert result["statusCode"] == 200
    assert len(launcher.requests) == 1  # the observer is started all the same
    join_hard_stops()
    (logged,) = logs.messages("hard stop not scheduled")
    assert (logged["error"], logged["code"]) == ("EndpointConnectionError", "")
    assert logged["call_id"] == launcher.requests[0].call_id


def test_the_observer_deletes_the_schedule_when_the_call_ends(
    hard_stop_env: pytest.MonkeyPatch,
    fake: FakeOpenAI,
    launcher: RecordingLauncher,
    scheduler: Any,
    group: str,
) -> None:
    hard_stop_env.setenv("CALL_STORE", "memory")
    call_id = f"rtc_end{uuid.uuid4().hex[:12]}"
    fake.register_call(call_id)
    assert deps.hard_stop().create(deps.hard_stop().plan(call_id, time.time()))
    fake.sideband_abrupt_close = True  # the call ends (a normal end, as observer tests define it)
    event = load_event("observer_async")
    event.update(call_id=call_id, requested_at=time.time(), call_started_at=time.time())
    assert observer_app.handler(event, FakeContext())["outcome"] == "closed"
    names = [s["Name"] for s in scheduler.list_schedules(GroupName=group)["Schedules"]]
    assert schedule_name(call_id) not in names


def test_cancelling_a_schedule_that_is_gone_is_quiet(scheduler: Any, group: str, logs: LogCapture) -> None:
    HardStop(settings(group), scheduler).cancel("rtc_never_scheduled")
    assert not logs.messages("hard stop not cancelled")


def test_the_scheduled_hangup_ends_a_call_whose_observer_was_killed(
    hard_stop_env: pytest.MonkeyPatch, fake: FakeOpenAI, scheduler: Any, group: str, logs: LogCapture
) -> None:
    """No observer ran: the schedule's own Input, handed to the hangup function, ends the call."""
    call_id = f"rtc_kill{uuid.uuid4().hex[:12]}"
    fake.register_call(call_id)
    assert deps.hard_stop().create(deps.hard_stop().plan(call_id, time.time()))
    scheduled = scheduler.get_schedule(Name=schedule_name(call_id), GroupName=group)
    event = json.loads(scheduled["Target"]["Input"])
    assert hangup_app.handler(event, FakeContext()) == {"call_id": call_id, "outcome": "hung_up"}
    assert len(fake.requests_to(f"/realtime/calls/{call_id}/hangup")) == 1
    (logged,) = logs.messages("call hung up")
    assert logged["reason"] == "hard_stop"
    # Fired for a call OpenAI no longer knows (over already): 404, and that is fine.
    again = hangup_app.handler({"call_id": "rtc_unknown0000"}, FakeContext())
    assert again == {"call_id": "rtc_unknown0000", "outcome": "already_over"}
    assert logs.messages("call already over")[0]["reason"] == "hard_stop"


@pytest.mark.parametrize("event", [{}, {"call_id": 5}, {"call_id": "../calls"}, {"call_id": "rtc_a/b"}])
def test_the_hangup_refuses_an_event_without_a_call_id(
    env: pytest.MonkeyPatch, fake: FakeOpenAI, event: dict[str, Any]
) -> None:
    assert hangup_app.handler(event, FakeContext()) == {"outcome": "invalid"}
    assert not fake.requests_to("/hangup")


def test_without_a_hangup_function_nothing_is_scheduled(env: pytest.MonkeyPatch) -> None:
    hard_stop = HardStop(Settings())
    assert not hard_stop.enabled
    hard_stop.prepare()
    assert hard_stop.schedule("rtc_local") is None
    hard_stop.cancel("rtc_local")  # no client, no call
    assert hard_stop._client is None


def test_the_sample_event_is_what_a_schedule_sends(
    env: pytest.MonkeyPatch, fake: FakeOpenAI, group: str
) -> None:
    event = load_event("hangup_scheduled")
    assert event == json.loads(HardStop(settings(group)).plan(event["call_id"], time.time()).input)
    fake.register_call(event["call_id"])
    assert hangup_app.handler(event, FakeContext())["outcome"] == "hung_up"


# ----------------------------------------------------------------- GPT-Live calls


def test_sip_schedules_the_hard_stop_of_a_live_call_under_its_session_id(
    hard_stop_env: pytest.MonkeyPatch,
    fake: FakeOpenAI,
    launcher: RecordingLauncher,
    scheduler: Any,
    group: str,
) -> None:
    hard_stop_env.setenv("VOICE_API", "live")
    deps.reset()
    pending = fake.live.register_pending_sip_call()
    assert pending.session_id is not None
    event = sign(with_body(load_event("sip_live"), live_incoming_call_body(pending.session_id)))
    assert sip_app.handler(event, FakeContext())["statusCode"] == 200
    join_hard_stops()
    made = scheduler.get_schedule(Name=schedule_name(pending.session_id), GroupName=group)
    assert json.loads(made["Target"]["Input"]) == {"call_id": pending.session_id}


def test_the_hard_stop_hangs_up_a_live_sip_call(
    env: pytest.MonkeyPatch, fake: FakeOpenAI, launcher: RecordingLauncher, logs: LogCapture
) -> None:
    env.setenv("VOICE_API", "live")
    deps.reset()
    pending = fake.live.register_pending_sip_call()
    session_id = pending.session_id
    assert session_id is not None
    event = sign(with_body(load_event("sip_live"), live_incoming_call_body(session_id)))
    assert sip_app.handler(event, FakeContext())["statusCode"] == 200

    assert hangup_app.handler({"call_id": session_id}, FakeContext()) == {
        "call_id": session_id,
        "outcome": "hung_up",
    }
    (hangup,) = fake.requests_to(f"/live/sessions/{session_id}/hangup")
    assert hangup.body == b""  # Live hangup takes no body
    assert not fake.requests_to("/realtime/")
    session = fake.live.sessions[session_id]
    assert (session.status, session.close_reason) == ("closed", "close_requested")
    assert logs.messages("call hung up")[0]["reason"] == "hard_stop"
    # Fired again (a Scheduler retry): the session is gone, which is fine.
    again = hangup_app.handler({"call_id": session_id}, FakeContext())
    assert again == {"call_id": session_id, "outcome": "already_over"}


def test_the_hard_stop_closes_a_live_webrtc_session_over_its_sideband(
    env: pytest.MonkeyPatch, fake: FakeOpenAI, logs: LogCapture
) -> None:
    """Live hangs up SIP calls only (a WebRTC session's hangup is a 400): `session.close` ends it."""
    from shared.live_session import live_session, webrtc_create_body

    body = webrtc_create_body(live_session(deps.settings()), "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\n")
    created = asyncio.run(deps.openai_client().create_live_session(body.to_json()))
    deps.openai_client.reset()  # the client's connections belong to that finished loop

    result = hangup_app.handler({"call_id": created.session_id}, FakeContext())
    assert result == {"call_id": created.session_id, "outcome": "closed"}
    assert len(fake.requests_to(f"/live/sessions/{created.session_id}/hangup")) == 1  # answered 400
    (sideband,) = fake.live.sidebands_of(created.session_id)
    assert sideband.client_event_types() == ["session.close"]
    assert "session.closed" in sideband.server_event_types()
    session = fake.live.sessions[created.session_id]
    assert (session.status, session.close_reason) == ("closed", "close_requested")
    assert logs.messages("not a SIP call: closing the Live session over its sideband")
    assert logs.messages("Live session closed")[0]["reason"] == "hard_stop"
    # Fired again: the hangup is a 404 now, the session is over.
    again = hangup_app.handler({"call_id": created.session_id}, FakeContext())
    assert again["outcome"] == "already_over"
    assert len(fake.live.sidebands_of(created.session_id)) == 1


def test_a_realtime_400_is_not_taken_for_a_live_webrtc_session(
    env: pytest.MonkeyPatch, fake: FakeOpenAI
) -> None:
    fake.register_call("rtc_bad400")
    fake.fail_next("/hangup", 400)
    with pytest.raises(UpstreamError):  # raised: Scheduler retries it
        hangup_app.handler({"call_id": "rtc_bad400"}, FakeContext())
    assert not fake.live.sidebands
