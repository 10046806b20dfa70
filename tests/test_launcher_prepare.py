"""LambdaObserverLauncher.prepare(): the boto3 client is built in the background, used by launch()."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from shared import launcher as launcher_module
from shared.launcher import LambdaObserverLauncher, ObserveRequest


class Recorder:
    def __init__(self) -> None:
        self.invokes: list[dict[str, Any]] = []

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        self.invokes.append(kwargs)
        return {"StatusCode": 202}


def test_prepared_client_is_built_off_the_calling_thread_and_used_by_launch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built_in: list[str] = []
    client = Recorder()

    def build() -> Recorder:
        built_in.append(threading.current_thread().name)
        return client

    monkeypatch.setattr(launcher_module, "_lambda_client", build)
    launcher = LambdaObserverLauncher("stack-observer")
    launcher.prepare()
    launcher.prepare()  # once per container
    launcher.launch(ObserveRequest(call_id="rtc_a", source="sip"))
    launcher.launch(ObserveRequest(call_id="rtc_b", source="sip"))
    assert built_in == ["lambda-client"]
    assert [call["FunctionName"] for call in client.invokes] == ["stack-observer", "stack-observer"]


def test_a_failed_background_build_raises_at_launch_and_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[int] = []
    client = Recorder()

    def build() -> Recorder:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("no region")
        return client

    monkeypatch.setattr(launcher_module, "_lambda_client", build)
    launcher = LambdaObserverLauncher("stack-observer")
    launcher.prepare()
    with pytest.raises(RuntimeError, match="no region"):
        launcher.launch(ObserveRequest(call_id="rtc_a", source="sip"))
    launcher.launch(ObserveRequest(call_id="rtc_b", source="sip"))
    assert len(attempts) == 2
    assert len(client.invokes) == 1
