"""Webhook signatures (shared/webhooks.py): every refusal is the same bare 401, told apart by its reason
in the log line and in the signature metric's `reason` dimension."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from standardwebhooks import Webhook

import sip_app
from shared import metrics, webhooks
from shared.errors import ClientError
from tests.conftest import (
    SIGNING_SECRET,
    FakeContext,
    LogCapture,
    RecordingLauncher,
    incoming_call_body,
    load_event,
    with_body,
)
from tests.fake_openai import FakeOpenAI
from tests.test_metrics_and_logs import emf, points

BODY = incoming_call_body("rtc_reasons0123456789")


def signed(at: datetime, body: bytes = BODY, secret: str = SIGNING_SECRET) -> dict[str, str]:
    return {
        "webhook-id": "msg_reasons",
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign("msg_reasons", at, body.decode()),
    }


def now() -> datetime:
    return datetime.now(tz=UTC)


Tamper = Callable[[dict[str, str]], dict[str, str]]
CASES: dict[str, Tamper] = {
    "missing_header": lambda h: {k: v for k, v in h.items() if k != "webhook-signature"},
    "malformed": lambda h: {**h, "webhook-timestamp": "yesterday"},
    "stale_timestamp": lambda _: signed(now() - timedelta(minutes=6)),
    "future_timestamp": lambda _: signed(now() + timedelta(minutes=6)),
    "bad_signature": lambda _: signed(now(), secret="whsec_" + "QUJD" * 8),  # another project's secret
}


def test_every_reason_has_a_case() -> None:
    assert set(CASES) == set(webhooks.REJECT_REASONS)


@pytest.mark.parametrize("reason", sorted(CASES))
def test_each_refusal_is_a_bare_401_logged_and_counted_with_its_reason(
    reason: str, logs: LogCapture, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    with pytest.raises(ClientError) as refused:
        webhooks.verify(BODY, CASES[reason](signed(now())), SIGNING_SECRET)
    assert (refused.value.status_code, refused.value.reason) == (401, "Invalid signature")
    (logged,) = logs.messages("webhook refused")
    assert logged["reason"] == reason
    (point,) = points(emf(capsys.readouterr().out), metrics.SIGNATURE_REJECTED)
    assert point["reason"] == reason
    # One data point, two series: the total the alarm watches, and its breakdown by reason.
    assert point["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"], ["service", "reason"]]


def test_a_signed_webhook_within_the_window_verifies(logs: LogCapture) -> None:
    webhooks.verify(BODY, signed(now() - timedelta(minutes=4)), SIGNING_SECRET)
    webhooks.verify(BODY, signed(now() + timedelta(minutes=4)), SIGNING_SECRET)
    assert logs.messages("webhook refused") == []


def test_the_sip_route_answers_each_refusal_alike(
    fake: FakeOpenAI, launcher: RecordingLauncher, logs: LogCapture, capsys: pytest.CaptureFixture[str]
) -> None:
    answers: list[Any] = []
    for reason in sorted(CASES):
        event = with_body(load_event("sip"), BODY)
        event["headers"] = {"content-type": "application/json", **CASES[reason](signed(now()))}
        result = sip_app.handler(event, FakeContext())
        answers.append((result["statusCode"], json.loads(result["body"])))
    assert answers == [(401, {"error": "Invalid signature"})] * len(CASES)
    assert sorted(r["reason"] for r in logs.messages("webhook refused")) == sorted(CASES)
    reasons = [p["reason"] for p in points(emf(capsys.readouterr().out), metrics.SIGNATURE_REJECTED)]
    assert sorted(reasons) == sorted(CASES)
    assert fake.requests == []  # nothing went upstream
    assert launcher.requests == []
