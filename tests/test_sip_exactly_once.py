"""POST /sip handled exactly once: duplicate storms (threads, processes), accept faults, caller policy."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

import observer_app
import sip_app
from shared import deps
from shared.launcher import LocalObserverLauncher
from shared.session import check_sip_session
from tests.calls_table import AWS_TEST_ENV, create_calls_table, dynamodb_client
from tests.conftest import (
    API_KEY,
    FakeContext,
    RecordingLauncher,
    incoming_call_body,
    load_event,
    response_json,
    sign,
    with_body,
)
from tests.fake_openai import FakeOpenAI

REPO = Path(__file__).resolve().parent.parent
CALL_ID = "rtc_once0123456789abcdef"
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def webhook(call_id: str = CALL_ID, *, caller: str = "+15551230000", webhook_id: str | None = None) -> Any:
    body = json.loads(incoming_call_body(call_id))
    body["data"]["sip_headers"][0]["value"] = f'"Caller" <sip:{caller}@example.com>;tag=1'
    return sign(with_body(load_event("sip"), json.dumps(body).encode()), webhook_id=webhook_id)


def deliver(event: Any) -> dict[str, Any]:
    result: dict[str, Any] = sip_app.handler(json.loads(json.dumps(event)), FakeContext())
    return result


def greetings(fake: FakeOpenAI) -> int:
    return sum(s.client_event_types().count("response.create") for s in fake.sidebands)


@pytest.fixture(params=["memory", "dynamodb"])
def store_env(request: pytest.FixtureRequest, env: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The call store the handlers use: in-process, or DynamoDB (moto_server, a fresh table)."""
    if request.param == "dynamodb":
        dynamo_env(env, request.getfixturevalue("moto_endpoint"))
    return env


def dynamo_env(env: pytest.MonkeyPatch, endpoint: str) -> dict[str, str]:
    table = f"calls-{uuid.uuid4().hex[:8]}"
    create_calls_table(dynamodb_client(endpoint), table)
    values = {
        **AWS_TEST_ENV,
        "CALL_STORE": "dynamodb",
        "CALLS_TABLE_NAME": table,
        "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
    }
    for name, value in values.items():
        env.setenv(name, value)
    deps.reset()
    return values


@pytest.fixture
def observers(store_env: pytest.MonkeyPatch) -> LocalObserverLauncher:
    """Observers really run (in threads, like `make dev`), so their sidebands reach the fake."""
    launcher = LocalObserverLauncher(
        lambda event: observer_app.handler(event, FakeContext(remaining_seconds=60))
    )
    deps.install_local_launcher(launcher)
    return launcher


def join(launcher: LocalObserverLauncher) -> None:
    for thread in launcher.threads:
        thread.join(timeout=15)
        assert not thread.is_alive()


# ----------------------------------------------------------------- duplicate storms


def test_a_storm_of_one_webhook_accepts_once_and_observes_once(
    fake: FakeOpenAI, observers: LocalObserverLauncher
) -> None:
    fake.register_call(CALL_ID)
    fake.delay_next("/accept", 0.3)  # the first delivery is still "in progress" while the rest arrive
    event = webhook()
    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = [r["statusCode"] for r in pool.map(lambda _: deliver(event), range(20))]
    join(observers)

    assert set(statuses) <= {200, 409}
    assert 200 in statuses
    assert 409 in statuses  # concurrent duplicates were told to come back later
    assert len(fake.requests_to(f"/realtime/calls/{CALL_ID}/accept")) == 1
    assert len(fake.sidebands) == 1
    assert greetings(fake) == 1
    # OpenAI's later redelivery of the same webhook: answered 200, nothing happens twice.
    assert deliver(event)["statusCode"] == 200
    join(observers)
    assert len(fake.requests_to("/accept")) == 1
    assert len(fake.sidebands) == 1


def test_a_storm_from_two_processes_sharing_one_dynamodb(
    fake: FakeOpenAI, env: pytest.MonkeyPatch, moto_endpoint: str
) -> None:
    dynamo = dynamo_env(env, moto_endpoint)
    fake.register_call(CALL_ID)
    fake.delay_next("/accept", 0.3)
    event = webhook()
    observer_event = {**load_event("observer_async"), "call_id": CALL_ID, "source": "sip"}
    observer_event.update(requested_at=time.time(), call_started_at=time.time())
    spec = {
        "event": event,
        "observer_event": observer_event,
        "threads": 10,
        "observer_events": 3,  # retried async events of the observer, in every process
    }
    child_env = {
        **os.environ,
        **dynamo,
        "PYTHONPATH": os.pathsep.join(
            [str(REPO), *(str(REPO / "functions" / f) for f in ("sip", "observer"))]
        ),
    }
    procs = [
        subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "tests.storm_worker", json.dumps(spec)],
            cwd=REPO,
            env=child_env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for _ in range(2)
    ]
    for proc in procs:  # both imported and warm: then both fire together
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    outputs = [json.loads(proc.communicate(timeout=60)[0].strip().splitlines()[-1]) for proc in procs]

    statuses = [s for out in outputs for s in out["statuses"]]
    outcomes = [o for out in outputs for o in out["observer_outcomes"]]
    assert len(statuses) == 20
    assert set(statuses) <= {200, 409}
    assert 200 in statuses
    assert len(fake.requests_to(f"/realtime/calls/{CALL_ID}/accept")) == 1
    assert len(fake.sidebands) == 1
    assert greetings(fake) == 1
    assert outcomes.count("closed") == 1
    assert len(outcomes) >= 7  # 6 direct events + at least the one launched by the accepting delivery
    assert set(outcomes) == {"closed", "duplicate"}


def test_a_delivery_in_progress_elsewhere_is_409_without_accept(
    fake: FakeOpenAI, launcher: RecordingLauncher
) -> None:
    fake.register_call(CALL_ID)
    event = webhook()
    assert deps.call_store().begin_delivery(event["headers"]["webhook-id"]) == "new"  # another instance
    result = deliver(event)
    assert result["statusCode"] == 409
    assert "retry later" in response_json(result)["error"]
    assert fake.requests == []
    assert launcher.requests == []


def test_an_accepted_delivery_whose_launch_failed_is_relaunched_not_reaccepted(
    fake: FakeOpenAI, env: pytest.MonkeyPatch
) -> None:
    env.setenv("WEBHOOK_LOCK_SECONDS", "0.2")
    deps.reset()

    class Failing:
        def prepare(self) -> None:
            pass

        def launch(self, request: object) -> None:
            raise RuntimeError("invoke failed")

    fake.register_call(CALL_ID)
    event = webhook()
    deps.install_local_launcher(Failing())
    assert deliver(event)["statusCode"] == 500
    recording = RecordingLauncher()
    deps.install_local_launcher(recording)
    assert deliver(event)["statusCode"] == 409  # still within the lock of the failed delivery
    time.sleep(0.3)
    assert deliver(event)["statusCode"] == 200
    assert len(fake.requests_to("/accept")) == 1
    assert [(r.call_id, r.source) for r in recording.requests] == [(CALL_ID, "sip")]


# ----------------------------------------------------------------- accept faults


@pytest.fixture
def quick_accept(env: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    env.setenv("ACCEPT_ATTEMPT_TIMEOUT_SECONDS", "0.5")
    env.setenv("ACCEPT_DEADLINE_SECONDS", "2.5")
    env.setenv("ACCEPT_BACKOFF_SECONDS", "0.05")
    deps.reset()
    return env


@pytest.mark.parametrize(
    "fault",
    ["429", "500", "503", "slow", "reset"],
)
def test_a_transient_accept_failure_is_retried(
    fake: FakeOpenAI, launcher: RecordingLauncher, quick_accept: pytest.MonkeyPatch, fault: str
) -> None:
    fake.register_call(CALL_ID)
    if fault == "slow":
        fake.delay_next("/accept", 3.0)
    elif fault == "reset":
        fake.reset_next("/accept")
    else:
        fake.fail_next("/accept", int(fault))
    started = time.monotonic()
    assert deliver(webhook())["statusCode"] == 200
    assert time.monotonic() - started < 2.5
    assert len(fake.requests_to("/accept")) == 2
    assert [r.call_id for r in launcher.requests] == [CALL_ID]


@pytest.mark.parametrize(("fault", "status"), [("429", 502), ("500", 502), ("slow", 504), ("reset", 502)])
def test_persistent_accept_failure_is_5xx_and_the_redelivery_tries_again(
    fake: FakeOpenAI, launcher: RecordingLauncher, quick_accept: pytest.MonkeyPatch, fault: str, status: int
) -> None:
    fake.register_call(CALL_ID)
    if fault == "slow":
        fake.delay_next("/accept", 3.0, times=10)
    elif fault == "reset":
        fake.reset_next("/accept", times=10)
    else:
        fake.fail_next("/accept", int(fault), times=10)
    event = webhook()
    started = time.monotonic()
    assert deliver(event)["statusCode"] == status
    assert time.monotonic() - started < 3.0  # inside the webhook's answer budget
    attempts = len(fake.requests_to("/accept"))
    assert 2 <= attempts <= 3
    assert launcher.requests == []

    fake.reset()  # OpenAI redelivers once the upstream has recovered
    fake.register_call(CALL_ID)
    assert deliver(event)["statusCode"] == 200
    assert len(fake.requests_to("/accept")) == 1
    assert [r.call_id for r in launcher.requests] == [CALL_ID]


def test_a_client_error_on_accept_is_not_retried(
    fake: FakeOpenAI, launcher: RecordingLauncher, quick_accept: pytest.MonkeyPatch
) -> None:
    fake.register_call(CALL_ID)
    fake.fail_next("/accept", 400)
    assert deliver(webhook())["statusCode"] == 502
    assert len(fake.requests_to("/accept")) == 1


def test_accept_404_is_200_without_observer_and_final(fake: FakeOpenAI, launcher: RecordingLauncher) -> None:
    event = webhook()  # the call is not known to the fake: accept answers 404
    assert deliver(event)["statusCode"] == 200
    assert deliver(event)["statusCode"] == 200  # the redelivery is a duplicate now
    assert len(fake.requests_to("/accept")) == 1
    assert launcher.requests == []


def test_a_session_without_type_is_refused_before_any_upstream_call(
    fake: FakeOpenAI, launcher: RecordingLauncher
) -> None:
    class Untyped:
        def to_json(self) -> dict[str, Any]:
            return {"model": "gpt-realtime", "instructions": "hi"}

    fake.register_call(CALL_ID)
    with deps.agent_sessions.override({"default": {"sip": Untyped()}}):  # type: ignore[dict-item]  # deliberately not a SessionConfig
        result = deliver(webhook())
    assert result["statusCode"] == 500
    assert "realtime" in response_json(result)["error"]
    assert fake.requests_to("/accept") == []


@pytest.mark.parametrize(
    "session",
    [
        {"model": "m"},
        {"type": "transcription"},
        {"type": "realtime", "audio": {"input": {"format": {"type": "audio/pcmu"}}}},
        {"type": "realtime", "audio": {"output": {"format": {"type": "audio/pcm", "rate": 24000}}}},
    ],
)
def test_check_sip_session_refuses(session: dict[str, Any]) -> None:
    with pytest.raises(Exception, match="Server misconfigured"):
        check_sip_session(session)


# ----------------------------------------------------------------- caller policy


def test_deny_list_rejects_with_603(
    fake: FakeOpenAI, launcher: RecordingLauncher, env: pytest.MonkeyPatch
) -> None:
    env.setenv("DENIED_CALLERS", "+15550000666")
    deps.reset()
    fake.register_call(CALL_ID)
    assert deliver(webhook(caller="+15550000666"))["statusCode"] == 200
    (reject,) = fake.requests_to(f"/realtime/calls/{CALL_ID}/reject")
    assert reject.json == {"status_code": 603}
    assert fake.requests_to("/accept") == []
    assert launcher.requests == []
    # Someone else is let through.
    fake.register_call("rtc_other00000")
    assert deliver(webhook("rtc_other00000", caller="+15551230000"))["statusCode"] == 200
    assert len(fake.requests_to("/accept")) == 1


def test_allow_list_rejects_everyone_else_with_603(
    fake: FakeOpenAI, launcher: RecordingLauncher, env: pytest.MonkeyPatch
) -> None:
    env.setenv("ALLOWED_CALLERS", "+15551230000")
    deps.reset()
    for call_id, caller in (("rtc_allowed0001", "+15551230000"), ("rtc_stranger001", "+15559999999")):
        fake.register_call(call_id)
        assert deliver(webhook(call_id, caller=caller))["statusCode"] == 200
    assert [r.path.split("/")[-2] for r in fake.requests_to("/accept")] == ["rtc_allowed0001"]
    (reject,) = fake.requests_to("/reject")
    assert reject.path.endswith("rtc_stranger001/reject")
    assert reject.json == {"status_code": 603}
    assert [r.call_id for r in launcher.requests] == ["rtc_allowed0001"]


def test_concurrent_call_cap_rejects_with_486_until_a_call_ends(
    fake: FakeOpenAI, observers: LocalObserverLauncher, store_env: pytest.MonkeyPatch
) -> None:
    store_env.setenv("MAX_CONCURRENT_CALLS", "1")
    deps.reset()
    fake.sideband_hold_seconds = -1  # the first call goes on until it is hung up
    first, second, third = "rtc_cap00000001", "rtc_cap00000002", "rtc_cap00000003"
    for call_id in (first, second, third):
        fake.register_call(call_id)
    assert deliver(webhook(first))["statusCode"] == 200
    assert fake.wait_for(lambda: len(fake.sidebands) == 1)
    assert deliver(webhook(second))["statusCode"] == 200
    (busy,) = fake.requests_to("/reject")
    assert busy.path.endswith(f"{second}/reject")
    assert busy.json == {"status_code": 486}

    httpx.post(
        f"{fake.base_url}/realtime/calls/{first}/hangup", headers={"Authorization": f"Bearer {API_KEY}"}
    )
    join(observers)  # the first call's observer ends and frees its slot
    assert deliver(webhook(third))["statusCode"] == 200
    accepted = [r.path.split("/")[-2] for r in fake.requests_to("/accept")]
    assert accepted == [first, third]
    httpx.post(
        f"{fake.base_url}/realtime/calls/{third}/hangup", headers={"Authorization": f"Bearer {API_KEY}"}
    )
    join(observers)


def test_a_failed_accept_frees_its_slot(
    fake: FakeOpenAI, launcher: RecordingLauncher, quick_accept: pytest.MonkeyPatch
) -> None:
    quick_accept.setenv("MAX_CONCURRENT_CALLS", "1")
    deps.reset()
    fake.register_call(CALL_ID)
    fake.fail_next("/accept", 500, times=10)
    assert deliver(webhook())["statusCode"] == 502
    fake.reset()
    fake.register_call("rtc_next0000001")
    assert deliver(webhook("rtc_next0000001"))["statusCode"] == 200
    assert len(fake.requests_to("/accept")) == 1
    assert fake.requests_to("/reject") == []


def test_make_dev_keeps_the_same_rules(fake: FakeOpenAI, env: pytest.MonkeyPatch) -> None:
    """The local server (in-process store): duplicate webhooks and an extra /observer request."""
    from local_api.server import LocalServer, create_gateway

    fake.register_call(CALL_ID)
    fake.delay_next("/accept", 0.3)
    fake.sideband_hold_seconds = 1.0
    event = webhook()
    body = base64.b64decode(event["body"])
    headers = {k: v for k, v in event["headers"].items() if k.startswith("webhook-")}
    headers["content-type"] = "application/json"
    with LocalServer(create_gateway()) as server, ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(
            pool.map(
                lambda _: httpx.post(f"{server.url}/sip", content=body, headers=headers).status_code, range(8)
            )
        )
        assert fake.wait_for(lambda: len(fake.sidebands) == 1)
        assert httpx.post(f"{server.url}/observer/{CALL_ID}").status_code == 202
        time.sleep(0.5)  # the extra worker runs in the background and must find the lease taken
        assert fake.wait_for(lambda: fake.sidebands[0].closed_at is not None, timeout=5)
    assert set(statuses) <= {200, 409}
    assert 200 in statuses
    assert len(fake.requests_to("/accept")) == 1
    assert len(fake.sidebands) == 1
    assert len(fake.requests_to("/v1/realtime")) == 1  # the extra worker did not even try a handshake
    assert greetings(fake) == 1
