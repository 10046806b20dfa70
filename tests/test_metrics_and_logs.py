"""What operators see: EMF metrics on stdout and the call id on every log line of a call's life."""

from __future__ import annotations

import contextvars
import io
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

import observer_app
import rtc_app
import sip_app
from local_api.server import LocalServer, create_gateway
from shared import audit, deps, metrics
from shared.launcher import LocalObserverLauncher
from shared.log import logger
from tests.conftest import (
    API_KEY,
    FakeContext,
    LogCapture,
    RecordingLauncher,
    body_of,
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


@contextmanager
def log_output() -> Iterator[io.StringIO]:
    """The JSON lines the logger writes to stdout (what CloudWatch gets), for the block."""
    buffer = io.StringIO()
    previous = logger.registered_handler.setStream(buffer)  # type: ignore[attr-defined]
    try:
        yield buffer
    finally:
        logger.registered_handler.setStream(previous)  # type: ignore[attr-defined]


def test_one_log_line_and_one_emf_document_per_request(
    fake: FakeOpenAI, launcher: RecordingLauncher, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.register_call(CALL_ID)
    capsys.readouterr()
    with log_output() as out:
        assert sip_app.handler(webhook(), FakeContext())["statusCode"] == 200
    (line,) = [json.loads(text) for text in out.getvalue().splitlines()]
    (document,) = emf(capsys.readouterr().out)
    assert (line["message"], line["path"], line["status"], line["call_id"]) == (
        "request",
        "/sip",
        200,
        CALL_ID,
    )
    assert line["function_name"] == FakeContext().function_name
    events = [event["message"] for event in line["events"]]
    assert events[:2] == ["incoming call", "call accepted"]
    incoming = next(e for e in line["events"] if e["message"] == "incoming call")
    assert incoming["from"].endswith("0000")  # masked
    # Every data point of the request, each under its own dimension set, in the one document.
    names = {m["Name"]: d["Dimensions"] for d in document["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert names == {
        metrics.CALLS_ACCEPTED: [["service", "api"]],
        metrics.WEBHOOK_TO_ACCEPT: [["service", "api"]],
        metrics.CALLS_STARTED: [["service", "source", "api"]],
    }
    assert (document["source"], document["api"]) == ("sip", "realtime")


def test_concurrent_requests_in_one_process_log_only_their_own_keys(
    fake: FakeOpenAI, env: pytest.MonkeyPatch
) -> None:
    env.setenv("OBSERVER_LAUNCH", "off")
    deps.reset()
    sip_calls = {f"rtc_keys{n:016d}": f"msg_keys{n}" for n in range(6)}
    for call_id in sip_calls:
        fake.register_call(call_id)

    def sip(call_id: str) -> int:
        event = sign(with_body(load_event("sip"), incoming_call_body(call_id)), webhook_id=sip_calls[call_id])
        headers = {k: v for k, v in event["headers"].items() if k.startswith("webhook-")}
        return httpx.post(
            f"{server.url}/sip", content=body_of(event), headers=headers, timeout=20
        ).status_code

    def rtc(_: str) -> int:
        offer = load_event("rtc")["body"]
        headers = {"content-type": "application/sdp"}
        return httpx.post(f"{server.url}/rtc", content=offer, headers=headers, timeout=20).status_code

    server = LocalServer(create_gateway(observers=False))
    with log_output() as out, server, ThreadPoolExecutor(max_workers=12) as pool:
        work = [pool.submit(sip, c) for c in sip_calls] + [pool.submit(rtc, "") for _ in range(6)]
        assert [w.result() for w in work] == [200] * 12
    lines = [json.loads(text) for text in out.getvalue().splitlines()]
    requests = [line for line in lines if line["message"] == "request"]
    assert sorted(r["path"] for r in requests) == ["/rtc"] * 6 + ["/sip"] * 6
    assert len({r["function_request_id"] for r in requests}) == 12
    for line in requests:
        if line["path"] == "/sip":
            assert line["function_name"] == "SipFunction"
            assert line["webhook_id"] == sip_calls[line["call_id"]]  # its own call, its own delivery
        else:
            assert line["function_name"] == "RtcFunction"
            assert line["call_id"] not in sip_calls
            assert not {"webhook_id", "agent"} & line.keys()  # nothing of a concurrent /sip request
    assert len({r["call_id"] for r in requests}) == 12


def test_a_request_s_lines_join_its_record_and_a_line_after_it_stands_alone() -> None:
    """shared/log.py's shortcut: inside a request an info line (plain or %-formatted, a warning too)
    is one of the request line's events; a thread that outlives the request writes its own line."""
    with log_output() as out:
        with audit.request(method="POST", path="/x"):
            logger.info("plain", extra={"n": 1})
            logger.info("formatted %s", "here")
            logger.warning("odd", extra={"why": "test"})
            later = contextvars.copy_context()  # what a background thread started now would carry
        later.run(logger.info, "after the request", extra={"n": 2})
    request, after = (json.loads(text) for text in out.getvalue().splitlines())
    assert request["message"] == "request"
    assert request["level"] == "WARNING"
    assert request["events"] == [
        {"message": "plain", "n": 1},
        {"message": "formatted here"},
        {"message": "odd", "why": "test", "level": "WARNING"},
    ]
    assert (after["message"], after["n"], after["level"]) == ("after the request", 2, "INFO")


def test_info_lines_in_a_request_follow_the_log_level() -> None:
    previous = logger.log_level
    logger.setLevel("WARNING")
    try:
        with log_output() as out, audit.request(method="POST", path="/x"):
            logger.info("dropped")
            logger.warning("kept")
    finally:
        logger.setLevel(previous)
    (request,) = (json.loads(text) for text in out.getvalue().splitlines())
    assert [e["message"] for e in request["events"]] == ["kept"]
