"""What operators see: EMF metrics on stdout and the call id on every log line of a call's life."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

import observer_app
import rtc_app
import sip_app
from shared import deps, metrics
from shared.launcher import LocalObserverLauncher
from tests.conftest import (
    API_KEY,
    FakeContext,
    LogCapture,
    RecordingLauncher,
    incoming_call_body,
    load_event,
    sign,
    with_body,
)
from tests.fake_openai import FakeOpenAI

CALL_ID = "rtc_metrics0123456789"


def emf(out: str) -> list[dict[str, Any]]:
    """The EMF documents among the stdout lines (log lines have no `_aws` key)."""
    docs = []
    for line in out.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            docs.append(json.loads(line))
    return docs


def points(docs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """The data points of `name`, each as a document of its own (a request's one document holds every
    metric it emitted, a directive per dimension set: shared/audit.py)."""
    found: list[dict[str, Any]] = []
    for doc in docs:
        for directive in doc["_aws"]["CloudWatchMetrics"]:
            if any(m["Name"] == name for m in directive["Metrics"]):
                assert directive["Namespace"] == metrics.NAMESPACE
                assert set(directive["Dimensions"][0]) <= set(doc)  # every dimension has its value
                own = [m for m in directive["Metrics"] if m["Name"] == name]
                view = {**doc, "_aws": {**doc["_aws"], "CloudWatchMetrics": [{**directive, "Metrics": own}]}}
                found.extend({**view, name: [value]} for value in doc[name])
    return found


def webhook(webhook_id: str | None = None) -> dict[str, Any]:
    return sign(with_body(load_event("sip"), incoming_call_body(CALL_ID)), webhook_id=webhook_id)


def test_sip_call_metrics(
    fake: FakeOpenAI, launcher: RecordingLauncher, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.register_call(CALL_ID)
    event = webhook()
    assert sip_app.handler(event, FakeContext())["statusCode"] == 200
    assert sip_app.handler(json.loads(json.dumps(event)), FakeContext())["statusCode"] == 200  # duplicate
    forged = webhook()
    forged["headers"]["webhook-signature"] = "v1,AAAA"
    assert sip_app.handler(forged, FakeContext())["statusCode"] == 401
    docs = emf(capsys.readouterr().out)

    assert len(points(docs, metrics.CALLS_ACCEPTED)) == 1
    (started,) = points(docs, metrics.CALLS_STARTED)
    assert started["source"] == "sip"
    (latency,) = points(docs, metrics.WEBHOOK_TO_ACCEPT)
    assert 0 <= latency[metrics.WEBHOOK_TO_ACCEPT][0] < 5000
    (duplicate,) = points(docs, metrics.DUPLICATES_SUPPRESSED)
    assert duplicate["kind"] == "webhook"
    assert len(points(docs, metrics.SIGNATURE_REJECTED)) == 1


def test_policy_and_failure_metrics(
    fake: FakeOpenAI, launcher: RecordingLauncher, env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env.setenv("DENIED_CALLERS", "+15551230000")  # the caller of incoming_call_body
    env.setenv("ACCEPT_MAX_ATTEMPTS", "1")
    deps.reset()
    fake.register_call(CALL_ID)
    assert sip_app.handler(webhook(), FakeContext())["statusCode"] == 200
    env.setenv("DENIED_CALLERS", "")
    deps.reset()
    fake.fail_next("/accept", 500)
    assert sip_app.handler(webhook(), FakeContext())["statusCode"] == 502
    docs = emf(capsys.readouterr().out)
    (rejected,) = points(docs, metrics.CALLS_REJECTED)
    assert rejected["sip_status"] == "603"
    assert len(points(docs, metrics.ACCEPT_FAILURES)) == 1
    assert points(docs, metrics.CALLS_ACCEPTED) == []


def test_webrtc_calls_are_counted_by_source(
    fake: FakeOpenAI, launcher: RecordingLauncher, capsys: pytest.CaptureFixture[str]
) -> None:
    assert rtc_app.handler(load_event("rtc"), FakeContext())["statusCode"] == 200
    (started,) = points(emf(capsys.readouterr().out), metrics.CALLS_STARTED)
    assert started["source"] == "webrtc"


def test_observer_metrics_and_call_id_on_every_line(
    fake: FakeOpenAI, env: pytest.MonkeyPatch, logs: LogCapture, capsys: pytest.CaptureFixture[str]
) -> None:
    env.setenv("OBSERVER_STOP_MARGIN_SECONDS", "2")
    deps.reset()
    fake.register_call(CALL_ID)
    fake.sideband_hold_seconds = -1

    def run(event: dict[str, Any]) -> None:  # the first observer hands off after ~1 s
        observer_app.handler(event, FakeContext(remaining_seconds=3 if event["generation"] == 0 else 60))

    launcher = LocalObserverLauncher(run)
    deps.install_local_launcher(launcher)
    # The webhook, the first observer, a duplicate, the hand-off, the successor, the end of the call.
    assert sip_app.handler(webhook(), FakeContext())["statusCode"] == 200
    assert fake.wait_for(lambda: len(fake.sidebands) == 1)
    duplicate = {**load_event("observer_async"), "call_id": CALL_ID, "source": "sip"}
    duplicate.update(requested_at=time.time(), call_started_at=time.time())
    assert observer_app.handler(duplicate, FakeContext())["outcome"] == "duplicate"
    assert fake.wait_for(lambda: len(fake.sidebands) == 2, timeout=5)
    hangup = httpx.post(
        f"{fake.base_url}/realtime/calls/{CALL_ID}/hangup", headers={"Authorization": f"Bearer {API_KEY}"}
    )
    assert hangup.status_code == 200
    for thread in list(launcher.threads):
        thread.join(timeout=10)

    docs = emf(capsys.readouterr().out)
    assert len(points(docs, metrics.OBSERVER_HANDOFFS)) == 1
    (duration,) = points(docs, metrics.CALL_DURATION)
    assert duration["source"] == "sip"
    assert duration["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] == "Seconds"
    assert 1 < duration[metrics.CALL_DURATION][0] < 10
    assert [d["kind"] for d in points(docs, metrics.DUPLICATES_SUPPRESSED)] == ["observer"]
    records = logs.records
    assert {"incoming call", "call accepted", "successor took over", "sideband closed"} <= {
        r["message"] for r in records
    }
    assert [r["message"] for r in records if r.get("call_id") != CALL_ID] == []
