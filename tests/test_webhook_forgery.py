"""Forged and malformed webhooks against POST /sip: one expectation per kind; no upstream call unless valid.

API Gateway (payload 2.0) joins a repeated header's values with commas, so "duplicated" below means
that joined value: ambiguous signing headers are refused.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from standardwebhooks import Webhook

import sip_app
from shared import deps
from tests import tally
from tests.conftest import (
    SIGNING_SECRET,
    FakeContext,
    RecordingLauncher,
    incoming_call_body,
    load_event,
    response_json,
    with_body,
)
from tests.fake_openai import FakeOpenAI

CALL_ID = "rtc_forgery0123456789"
OTHER_SECRET = "whsec_" + base64.b64encode(b"not-the-secret-not-the-secret!!").decode()
HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")

Event = dict[str, Any]


def signed(
    body: bytes,
    *,
    secret: str = SIGNING_SECRET,
    at: datetime | None = None,
    base64_encoded: bool = True,
    msg_id: str = "msg_forgery",
) -> Event:
    when = at or datetime.now(tz=UTC)
    event = with_body(load_event("sip"), body, base64_encoded=base64_encoded)
    event["headers"].update(
        {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(when.timestamp())),
            "webhook-signature": Webhook(secret).sign(msg_id, when, body.decode("utf-8", "replace")),
        }
    )
    return event


def valid() -> Event:
    return signed(incoming_call_body(CALL_ID))


def edit(change: Callable[[dict[str, str]], None]) -> Callable[[], Event]:
    def build() -> Event:
        event = valid()
        change(event["headers"])
        return event

    return build


def tampered() -> Event:
    event = valid()
    raw = bytearray(base64.b64decode(event["body"]))
    raw[raw.index(b"sip:")] ^= 0x01  # one byte, one bit
    event["body"] = base64.b64encode(bytes(raw)).decode()
    return event


def several_signatures_one_valid() -> Event:
    event = valid()
    good = event["headers"]["webhook-signature"]
    bad = "v1," + base64.b64encode(b"x" * 32).decode()
    event["headers"]["webhook-signature"] = f"{bad} v1a,{bad[3:]} {good} {bad}"
    return event


def upper_case_header_names() -> Event:
    event = valid()
    event["headers"] = {k.upper() if k.startswith("webhook-") else k: v for k, v in event["headers"].items()}
    return event


def signed_json(payload: Any) -> Callable[[], Event]:
    return lambda: signed(json.dumps(payload).encode())


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[], Event]
    status: int
    accepted: int = 0  # accept calls the fake must see
    secret_env: str = SIGNING_SECRET


def _cases() -> list[Case]:
    cases: list[Case] = []
    for name in HEADERS:
        cases.append(Case(f"{name} missing", edit(lambda h, n=name: h.pop(n)), 401))  # type: ignore[misc]
        cases.append(Case(f"{name} empty", edit(lambda h, n=name: h.update({n: ""})), 401))  # type: ignore[misc]
        cases.append(
            Case(f"{name} duplicated", edit(lambda h, n=name: h.update({n: f"{h[n]},{h[n]}"})), 401)  # type: ignore[misc]
        )
    cases += [
        Case("wrong secret", lambda: signed(incoming_call_body(CALL_ID), secret=OTHER_SECRET), 401),
        Case("body tampered by one byte", tampered, 401),
        Case(
            "timestamp 6 minutes old",
            lambda: signed(incoming_call_body(CALL_ID), at=datetime.now(tz=UTC) - timedelta(minutes=6)),
            401,
        ),
        Case(
            "timestamp 6 minutes ahead",
            lambda: signed(incoming_call_body(CALL_ID), at=datetime.now(tz=UTC) + timedelta(minutes=6)),
            401,
        ),
        Case("timestamp not a number", edit(lambda h: h.update({"webhook-timestamp": "yesterday"})), 401),
        Case(
            "signature without a comma",
            edit(lambda h: h.update({"webhook-signature": "v1" + h["webhook-signature"][3:]})),
            401,
        ),
        Case(
            "signature bad base64",
            edit(lambda h: h.update({"webhook-signature": "v1,!!!%%%not*base64"})),
            401,
        ),
        Case(
            "signature of another version",
            edit(lambda h: h.update({"webhook-signature": "v2" + h["webhook-signature"][2:]})),
            401,
        ),
        Case("id swapped after signing", edit(lambda h: h.update({"webhook-id": "msg_other"})), 401),
        Case("several signatures, one valid", several_signatures_one_valid, 200, accepted=1),
        Case("whsec_ secret", valid, 200, accepted=1),
        Case(
            "raw base64 secret (no whsec_)",
            valid,
            200,
            accepted=1,
            secret_env=SIGNING_SECRET.removeprefix("whsec_"),
        ),
        Case("header names in upper case", upper_case_header_names, 200, accepted=1),
        Case(
            "body sent as plain text (not base64)",
            lambda: signed(incoming_call_body(CALL_ID), base64_encoded=False),
            200,
            accepted=1,
        ),
        Case("non-JSON body, validly signed", lambda: signed(b"<xml>call</xml>"), 400),
        Case("empty body, validly signed", lambda: signed(b""), 400),
        Case("JSON list, validly signed", signed_json([{"type": "realtime.call.incoming"}]), 400),
        Case("JSON without data.call_id", signed_json({"type": "realtime.call.incoming", "data": {}}), 400),
        Case(
            "JSON with a path in data.call_id",
            signed_json({"type": "realtime.call.incoming", "data": {"call_id": "rtc_a/../b"}}),
            400,
        ),
        Case(
            "unknown event type",
            signed_json({"type": "realtime.call.unknown", "data": {"call_id": CALL_ID}}),
            200,
        ),
        Case("1 MB body, validly signed", lambda: signed(b'{"pad":"' + b"x" * (1024 * 1024) + b'"}'), 413),
    ]
    return cases


CASES = _cases()


def test_there_are_at_least_twenty_kinds() -> None:
    assert len(CASES) >= 20
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_webhook_case(
    fake: FakeOpenAI, launcher: RecordingLauncher, env: pytest.MonkeyPatch, case: Case
) -> None:
    env.setenv("OPENAI_SIGNING_SECRET", case.secret_env)
    deps.reset()
    fake.register_call(CALL_ID)
    started = time.monotonic()
    result = sip_app.handler(case.build(), FakeContext())
    assert time.monotonic() - started < 5

    assert result["statusCode"] == case.status, result.get("body")
    if case.status >= 400:
        assert set(response_json(result)) == {"error"}
    if case.status == 401:
        assert response_json(result) == {"error": "Invalid signature"}
    accepts = fake.requests_to(f"/realtime/calls/{CALL_ID}/accept")
    assert len(accepts) == case.accepted
    assert len(fake.requests) == case.accepted  # invalid: the fake received nothing at all
    assert len(launcher.requests) == case.accepted
    tally.record(
        "forged/malformed webhooks",
        tried=1,
        refused=int(case.status >= 400),
        upstream_requests_on_refused=len(fake.requests) if case.status >= 400 else 0,
    )
