"""Abuse and access: allowed origins, body limits on every route, a server-only session, the output audit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import observer_app
import page_app
import rtc_app
import sip_app
import token_app
from local_api.server import LocalServer, create_gateway
from shared import deps
from shared.log import logger
from shared.origins import origin_allowed
from tests.conftest import (
    API_KEY,
    SIGNING_SECRET,
    FakeContext,
    RecordingLauncher,
    incoming_call_body,
    load_event,
    response_json,
    sign,
    with_body,
)
from tests.fake_openai import FakeOpenAI
from tests.output_audit import AUDIT
from tests.samples import DEFAULT_INSTRUCTIONS, default_session_tools

PAGE_ORIGIN = "https://abc123defg.execute-api.us-east-1.amazonaws.com"  # the host of the sample events
SERVER_SESSION = {
    "type": "realtime",
    "model": "gpt-realtime-2.1",
    "instructions": DEFAULT_INSTRUCTIONS,
    "audio": {
        "input": {
            "noise_reduction": {"type": "near_field"},
            "transcription": {"model": "gpt-live-transcribe"},
        },
        "output": {"voice": "marin"},
    },
    **default_session_tools(),
}


@pytest.fixture
def allow(env: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    env.setenv("ALLOWED_ORIGINS", "https://app.example.com, https://other.example.org/")
    deps.reset()
    return env


def page_event(name: str, origin: str | None) -> dict[str, Any]:
    event = load_event(name)
    event["headers"].pop("origin", None)
    if origin is not None:
        event["headers"]["origin"] = origin
    return event


@pytest.mark.parametrize(
    ("origin", "host", "allowed", "expected"),
    [
        ("https://evil.example", "h", (), True),  # no list: any
        ("https://app.example.com", "h", ("https://app.example.com",), True),
        ("HTTPS://APP.EXAMPLE.COM/", "h", ("https://app.example.com",), True),
        ("https://app.example.com.evil.example", "h", ("https://app.example.com",), False),
        ("http://app.example.com", "h", ("https://app.example.com",), False),
        ("null", "h", ("https://app.example.com",), False),
        ("https://h", "h", ("https://app.example.com",), True),  # the page's own host
        ("https://h:444", "h", ("https://app.example.com",), False),
    ],
)
def test_origin_rules(origin: str, host: str, allowed: tuple[str, ...], expected: bool) -> None:
    assert origin_allowed(origin, host, allowed) is expected


@pytest.mark.parametrize(
    ("module", "name"), [(rtc_app, "rtc"), (token_app, "token"), (token_app, "token_get")]
)
def test_foreign_origin_is_403_before_any_upstream_call(
    fake: FakeOpenAI, launcher: RecordingLauncher, allow: pytest.MonkeyPatch, module: Any, name: str
) -> None:
    result = module.handler(page_event(name, "https://evil.example"), FakeContext())
    assert result["statusCode"] == 403
    assert response_json(result) == {"error": "Origin not allowed"}
    assert fake.requests == []
    assert launcher.requests == []


@pytest.mark.parametrize("origin", ["https://app.example.com", PAGE_ORIGIN, None])
@pytest.mark.parametrize(("module", "name"), [(rtc_app, "rtc"), (token_app, "token")])
def test_allowed_same_host_and_originless_requests_pass(
    fake: FakeOpenAI,
    launcher: RecordingLauncher,
    allow: pytest.MonkeyPatch,
    module: Any,
    name: str,
    origin: str | None,
) -> None:
    result = module.handler(page_event(name, origin), FakeContext())
    assert result["statusCode"] == 200
    cors = result["headers"].get("access-control-allow-origin")
    assert cors == origin if origin is not None else cors is None
    assert len(fake.requests) == 1


def test_no_list_means_any_origin_and_no_cors_headers(fake: FakeOpenAI, launcher: RecordingLauncher) -> None:
    result = rtc_app.handler(page_event("rtc", "https://anyone.example"), FakeContext())
    assert result["statusCode"] == 200
    assert "access-control-allow-origin" not in result["headers"]


@pytest.fixture
def server(allow: pytest.MonkeyPatch) -> Iterator[LocalServer]:
    with LocalServer(create_gateway(observers=False)) as running:
        yield running


@pytest.mark.parametrize("path", ["/rtc", "/token"])
def test_local_preflight_follows_the_list(server: LocalServer, fake: FakeOpenAI, path: str) -> None:
    preflight = {"access-control-request-method": "POST", "access-control-request-headers": "content-type"}
    with httpx.Client(base_url=server.url) as client:
        ok = client.options(path, headers={"origin": "https://app.example.com", **preflight})
        refused = client.options(path, headers={"origin": "https://evil.example", **preflight})
    assert ok.status_code == 204
    assert ok.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "POST" in ok.headers["access-control-allow-methods"]
    assert refused.status_code == 403
    assert "access-control-allow-origin" not in refused.headers
    assert fake.requests == []


def test_token_observer_and_page_bodies_are_bounded(fake: FakeOpenAI, launcher: RecordingLauncher) -> None:
    token = with_body(load_event("token"), b"{" + b" " * 5000 + b"}")
    assert token_app.handler(token, FakeContext())["statusCode"] == 413
    observer = with_body(load_event("observer_http"), b"x" * 2000)
    assert observer_app.handler(observer, FakeContext())["statusCode"] == 413
    page = with_body(load_event("page"), b"x" * 2000)
    assert page_app.handler(page, FakeContext())["statusCode"] == 413
    assert fake.requests == []
    assert launcher.requests == []


def test_nothing_from_a_client_changes_the_session(fake: FakeOpenAI, launcher: RecordingLauncher) -> None:
    # /rtc: a query, headers and SDP attributes that try to pick the model/voice/instructions.
    event = load_event("rtc")
    event["rawQueryString"] = "model=gpt-4o&voice=alloy&instructions=leak&tools=x"
    event["queryStringParameters"] = {
        "model": "gpt-4o",
        "voice": "alloy",
        "instructions": "leak",
        "tools": "x",
    }
    event["headers"].update({"x-model": "gpt-4o", "openai-session": '{"voice":"alloy"}'})
    assert rtc_app.handler(event, FakeContext())["statusCode"] == 200
    form = fake.requests_to("/realtime/calls")[0].form
    assert form is not None
    assert json.loads(form["session"]) == SERVER_SESSION

    # /sip: extra fields in a validly signed webhook (data.session, tools) are ignored.
    call_id = "rtc_session0123456789"
    fake.register_call(call_id)
    payload = json.loads(incoming_call_body(call_id))
    payload["data"]["session"] = {"model": "gpt-4o", "tools": [{"type": "mcp", "server_url": "https://x"}]}
    webhook = sign(with_body(load_event("sip"), json.dumps(payload).encode()))
    assert sip_app.handler(webhook, FakeContext())["statusCode"] == 200
    assert fake.requests_to("/accept")[0].json == SERVER_SESSION


def test_the_output_audit_catches_a_deliberate_leak(fake: FakeOpenAI) -> None:
    # The real planted values, leaked through the real logger and a real handler response, into a
    # private capture (so the session-wide check stays clean).
    minted = fake.mint_ephemeral_key()
    with AUDIT.diverted() as private:
        logger.info("oops", extra={"key": API_KEY})
        logger.info("oops", extra={"secret": SIGNING_SECRET.removeprefix("whsec_")})
        logger.info("oops", extra={"ephemeral": minted})
        logger.info("oops", extra={"headers": {"Authorization": "Bearer sk-something-else-123"}})
        logger.info("oops", extra={"from": "sip:+15551230000@example.com"})  # a whole caller number
        logger.info("fine", extra={"from": "+1555***0000"})  # masked: not a finding
        AUDIT.record_response("RtcFunction", {"statusCode": 500, "body": f"key={API_KEY}"})
        AUDIT.record_response("TokenFunction", {"statusCode": 200, "body": json.dumps({"value": minted})})
        AUDIT.record_response("SipFunction", {"statusCode": 200, "body": json.dumps({"value": minted})})
    labels = sorted({f.label for f in AUDIT.scan(private)})
    findings = [str(f) for f in AUDIT.scan(private)]
    assert labels == [
        "Authorization header value",
        "OpenAI API key",
        "ephemeral key",
        "full phone number",
        "signing secret (base64)",
    ], findings
    assert sum(f.label == "full phone number" for f in AUDIT.scan(private)) == 1
    wheres = {f.where for f in AUDIT.scan(private)}
    assert wheres == {"a log line", "a RtcFunction response", "a SipFunction response"}  # not Token's
    assert len(private.lines) >= 6  # (a background observer thread may add a harmless line)
