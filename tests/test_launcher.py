"""Observer launchers: the Lambda async invoke (moto), the local thread launcher, and the selection."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from shared import deps
from shared.errors import ServiceError
from shared.launcher import (
    DisabledObserverLauncher,
    LambdaObserverLauncher,
    LocalObserverLauncher,
    ObserveRequest,
)


class SpyClient:
    """Records invoke() arguments, then passes them to the real (moto) client."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: list[dict[str, Any]] = []

    def invoke(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        return self.client.invoke(**kwargs)


@pytest.fixture
def lambda_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws(config={"lambda": {"use_docker": False}}):
        yield boto3.client("lambda", region_name="us-east-1")


def test_lambda_launcher_invokes_the_observer_asynchronously(lambda_client: Any) -> None:
    spy = SpyClient(lambda_client)
    launcher = LambdaObserverLauncher("hello-realtime-observer", spy)
    launcher.launch(
        ObserveRequest(
            call_id="rtc_abc",
            source="sip",
            requested_at=1760000000.5,
            call_started_at=1760000000.0,
            generation=2,
        )
    )
    (call,) = spy.calls
    assert call["FunctionName"] == "hello-realtime-observer"
    assert call["InvocationType"] == "Event"
    assert json.loads(call["Payload"]) == {
        "call_id": "rtc_abc",
        "source": "sip",
        "requested_at": 1760000000.5,
        "call_started_at": 1760000000.0,
        "generation": 2,
    }


def test_lambda_launcher_refuses_a_failed_invoke() -> None:
    class Failing:
        def invoke(self, **kwargs: Any) -> dict[str, Any]:
            return {"StatusCode": 500}

    with pytest.raises(ServiceError, match="Observer launch failed"):
        LambdaObserverLauncher("fn", Failing()).launch(ObserveRequest(call_id="rtc_a", source="api"))


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
    assert seen == [({**expected, "generation": 0}, "observer-rtc_bg")]


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
