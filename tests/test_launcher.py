"""Observer launchers: the Lambda async invoke (moto server), the local thread launcher, and the selection."""

from __future__ import annotations

import json
import os
import socket
import threading
from typing import Any

import pytest

from shared import deps
from shared.errors import ServiceError
from shared.launcher import (
    DisabledObserverLauncher,
    LambdaObserverLauncher,
    LocalObserverLauncher,
    ObserveRequest,
)
from tests.calls_table import AWS_TEST_ENV
from tests.moto_aws import Wire, boto3_client, register_function


def test_lambda_launcher_invokes_the_observer_asynchronously(moto_endpoint: str) -> None:
    function = register_function(moto_endpoint)
    client = boto3_client("lambda", moto_endpoint)
    wire = Wire(client)
    launcher = LambdaObserverLauncher(function, client)
    launcher.prepare()  # an injected client: nothing to build
    launcher.launch(
        ObserveRequest(
            call_id="rtc_abc",
            source="sip",
            requested_at=1760000000.5,
            call_started_at=1760000000.0,
            generation=2,
            agent="sales",
            caller="+1555***0123",
            dialed="+1800***0000",
            max_seconds=300,
            minutes_day="2025-10-09",
        )
    )
    # One request, over real HTTP, queued by moto's Lambda (which checks no name: asserted here).
    (sent,) = wire.exchanges
    assert (sent.service, sent.operation, sent.status) == ("lambda", "Invoke", 202)
    assert sent.headers["x-amz-invocation-type"] == "Event"
    assert json.loads(sent.body) == {
        "call_id": "rtc_abc",
        "source": "sip",
        "requested_at": 1760000000.5,
        "call_started_at": 1760000000.0,
        "generation": 2,
        "agent": "sales",
        "caller": "+1555***0123",
        "dialed": "+1800***0000",
        "max_seconds": 300,
        "minutes_day": "2025-10-09",
        "metadata": None,
    }


def test_lambda_launcher_names_the_function_it_invokes(moto_endpoint: str) -> None:
    client = boto3_client("lambda", moto_endpoint)
    paths: list[str] = []
    client.meta.events.register("before-send", lambda request, **_: paths.append(request.url))
    LambdaObserverLauncher("stack-observer", client).launch(ObserveRequest(call_id="rtc_n", source="api"))
    assert paths == [f"{moto_endpoint}/2015-03-31/functions/stack-observer/invocations"]


def test_lambda_launcher_refuses_a_failed_invoke(moto_endpoint: str) -> None:
    client = boto3_client("lambda", moto_endpoint)
    # Anything but 202 (queued) is not a launch: answer 200, as a synchronous invoke would.
    client.meta.events.register("after-call.lambda.Invoke", lambda parsed, **_: parsed.update(StatusCode=200))
    with pytest.raises(ServiceError, match=r"Observer launch failed \(status 200\)"):
        LambdaObserverLauncher("fn", client).launch(ObserveRequest(call_id="rtc_a", source="api"))


def test_lambda_launcher_refuses_an_unreachable_lambda_without_request_data() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = boto3_client("lambda", f"http://127.0.0.1:{port}", max_attempts=1)
    with pytest.raises(ServiceError) as caught:
        LambdaObserverLauncher("stack-observer", client).launch(ObserveRequest(call_id="rtc_x", source="api"))
    assert caught.value.reason == "Observer launch failed (EndpointConnectionError)"


def test_lambda_launcher_from_the_environment(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """As deployed: OBSERVER_FUNCTION_NAME, credentials and AWS_ENDPOINT_URL_LAMBDA (botocore's name)."""
    function = register_function(moto_endpoint)
    for name, value in {
        **AWS_TEST_ENV,
        "OBSERVER_LAUNCH": "lambda",
        "OBSERVER_FUNCTION_NAME": function,
        "AWS_ENDPOINT_URL_LAMBDA": moto_endpoint,
    }.items():
        monkeypatch.setenv(name, value)
    try:
        deps.reset()
        launcher = deps.observer_launcher()
        assert isinstance(launcher, LambdaObserverLauncher)
        launcher.prepare()  # what /rtc and /sip call before they wait on OpenAI
        launcher.launch(ObserveRequest(call_id="rtc_env", source="webrtc"))
        launcher.launch(ObserveRequest(call_id="rtc_env2", source="webrtc"))
        assert deps.observer_launcher() is launcher
    finally:
        deps.reset()


def test_lambda_launcher_without_aws_configuration_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OBSERVER_FUNCTION_NAME", "stack-observer")
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)  # no profile region either
    try:
        deps.reset()
        launcher = LambdaObserverLauncher("stack-observer")  # builds nothing yet
        with pytest.raises(ServiceError, match="AWS_DEFAULT_REGION"):
            launcher.launch(ObserveRequest(call_id="rtc_a", source="api"))
    finally:
        deps.reset()


def test_lambda_launcher_needs_a_function_name() -> None:
    with pytest.raises(ServiceError, match="OBSERVER_FUNCTION_NAME"):
        LambdaObserverLauncher("")


def test_local_launcher_runs_the_target_in_a_background_thread() -> None:
    done = threading.Event()
    seen: list[tuple[dict[str, Any], str]] = []

    def target(event: dict[str, Any]) -> None:
        seen.append((event, threading.current_thread().name))
        done.set()

    LocalObserverLauncher(target).launch(ObserveRequest(call_id="rtc_bg", source="webrtc", requested_at=1.0))
    assert done.wait(5)
    expected = {"call_id": "rtc_bg", "source": "webrtc", "requested_at": 1.0, "call_started_at": None}
    defaults = {"generation": 0, "agent": "default", "caller": "", "dialed": "", "max_seconds": None}
    defaults |= {"minutes_day": None, "metadata": None}
    assert seen == [({**expected, **defaults}, "observer-rtc_bg")]


def test_selection_follows_observer_launch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OBSERVER_FUNCTION_NAME", "stack-observer")
    try:
        monkeypatch.setenv("OBSERVER_LAUNCH", "lambda")
        deps.reset()
        chosen = deps.observer_launcher()
        assert isinstance(chosen, LambdaObserverLauncher)
        assert chosen.function_name == "stack-observer"
        monkeypatch.setenv("OBSERVER_LAUNCH", "off")
        deps.reset()
        assert isinstance(deps.observer_launcher(), DisabledObserverLauncher)
        monkeypatch.setenv("OBSERVER_LAUNCH", "local")
        deps.reset()
        deps.install_local_launcher(None)
        with pytest.raises(RuntimeError, match="local server"):
            deps.observer_launcher()
    finally:
        deps.reset()
