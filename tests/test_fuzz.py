"""Property-based fuzzing: the webhook verifier, SDP and JSON inputs (hypothesis), and every function's
OpenAPI operations (schemathesis), driven through the Lambda handlers as API Gateway v2 events and
through the ASGI app. Property: no 5xx from our code, ever (the upstream is the healthy fake), every
error has the `{"error": reason}` shape, and nothing refused reaches the upstream.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.core import NotSet
from schemathesis.generation.modes import GenerationMode
from standardwebhooks import Webhook

import calls_app
import observer_app
import observer_http
import page_app
import rtc_app
import sip_app
import token_app
from local_api.events import build_event
from local_api.routes import Route, load_template, read_routes
from shared import webhooks
from shared.errors import ClientError
from tests import tally
from tests.conftest import SIGNING_SECRET, FakeContext, RecordingLauncher, load_event, with_body
from tests.fake_openai import FakeOpenAI

FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
SIGNATURE_PARTS = st.sampled_from(["v1", "v1a", "v2", "", "v1,", ",", " "])
HEADER_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=80)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


def status_and_error(result: dict[str, Any]) -> int:
    status = int(result["statusCode"])
    assert status < 500, result
    if status >= 400:
        body = result.get("body") or ""
        raw = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
        assert set(json.loads(raw)) == {"error"}
    return status


# ---------------------------------------------------------------- the webhook verifier


@FUZZ
@given(
    body=st.binary(max_size=300),
    msg_id=HEADER_TEXT,
    timestamp=st.one_of(HEADER_TEXT, st.integers(-(2**40), 2**40).map(str)),
    signature=st.one_of(
        HEADER_TEXT,
        st.lists(
            st.tuples(SIGNATURE_PARTS, st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()))
        ).map(lambda parts: " ".join(f"{v},{s}" for v, s in parts)),
    ),
)
def test_verifier_only_ever_refuses_with_401(
    body: bytes, msg_id: str, timestamp: str, signature: str
) -> None:
    headers = {"webhook-id": msg_id, "webhook-timestamp": timestamp, "webhook-signature": signature}
    with pytest.raises(ClientError) as refused:
        webhooks.verify(body, headers, SIGNING_SECRET)
    assert (refused.value.status_code, refused.value.reason) == (401, "Invalid signature")
    tally.record("fuzz: webhook verifier", tried=1)


@FUZZ
@given(body=st.binary(min_size=1, max_size=300), position=st.integers(min_value=0), bit=st.integers(0, 7))
def test_signed_bodies_verify_and_any_flipped_bit_does_not(body: bytes, position: int, bit: int) -> None:
    text = body.decode("utf-8", "replace")
    now = datetime.now(tz=UTC)
    headers = {
        "webhook-id": "msg_fuzz",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(SIGNING_SECRET).sign("msg_fuzz", now, text),
    }
    raw = text.encode()
    webhooks.verify(raw, headers, SIGNING_SECRET)  # no exception: verified
    flipped = bytearray(raw)
    flipped[position % len(flipped)] ^= 1 << bit
    with pytest.raises(ClientError):
        webhooks.verify(bytes(flipped), headers, SIGNING_SECRET)
    tally.record("fuzz: webhook verifier", tried=1)


# ---------------------------------------------------------------- SDP and JSON through the handlers


@FUZZ
@given(
    body=st.one_of(
        st.binary(max_size=400),
        st.text(max_size=400).map(lambda t: ("v=0\r\n" + t).encode("utf-8", "surrogatepass")),
    ),
    content_type=st.sampled_from(
        ["application/sdp", "application/sdp; charset=utf-8", "text/plain", "", "APPLICATION/SDP"]
    ),
)
def test_rtc_offers(fake: FakeOpenAI, launcher: RecordingLauncher, body: bytes, content_type: str) -> None:
    before, launched = len(fake.requests), len(launcher.requests)
    event = with_body(load_event("rtc"), body, base64_encoded=True)
    event["headers"]["content-type"] = content_type
    status = status_and_error(rtc_app.handler(event, FakeContext()))
    upstream = len(fake.requests) - before
    assert status in (200, 400, 415)
    assert upstream == (1 if status == 200 else 0)
    assert len(launcher.requests) - launched == upstream
    tally.record("fuzz: SDP offers", tried=1, accepted=int(status == 200))


@FUZZ
@given(payload=JSON, event_type=st.sampled_from(["realtime.call.incoming", "realtime.call.ended", None]))
def test_signed_webhook_json(
    fake: FakeOpenAI, launcher: RecordingLauncher, payload: Any, event_type: str | None
) -> None:
    if event_type is not None and isinstance(payload, dict):
        payload = {**payload, "type": event_type}
    before = len(fake.requests)
    now = datetime.now(tz=UTC)
    body = json.dumps(payload)
    event = with_body(load_event("sip"), body.encode(), base64_encoded=True)
    event["headers"].update(
        {
            "webhook-id": "msg_fuzz",
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(SIGNING_SECRET).sign("msg_fuzz", now, body),
        }
    )
    status = status_and_error(sip_app.handler(event, FakeContext()))
    assert status in (200, 400)
    assert len(fake.requests) - before <= 1  # at most the one accept, only for a well-formed call id
    tally.record("fuzz: webhook JSON", tried=1)


@FUZZ
@given(payload=JSON)
def test_token_bodies_never_change_the_session(
    fake: FakeOpenAI, launcher: RecordingLauncher, payload: Any
) -> None:
    before = len(fake.requests)
    event = load_event("token")
    event["body"] = json.dumps(payload)
    event["headers"]["content-type"] = "application/json"
    assert status_and_error(token_app.handler(event, FakeContext())) == 200
    sent = fake.requests[before].json
    assert sent is not None
    assert sent["session"]["model"] == "gpt-realtime-2.1"
    assert sent["session"]["audio"]["output"]["voice"] == "marin"
    assert "tools" not in sent["session"]
    tally.record("fuzz: token bodies", tried=1)


# ---------------------------------------------------------------- schemathesis, per function


@schemathesis.serializer("application/sdp")
def _sdp(ctx: Any, value: Any) -> bytes:
    return (
        str(value).encode("utf-8", "surrogatepass") if isinstance(value, str) else json.dumps(value).encode()
    )


APPS: dict[str, tuple[ModuleType, Any]] = {
    "RtcFunction": (rtc_app, rtc_app.app),
    "TokenFunction": (token_app, token_app.app),
    "SipFunction": (sip_app, sip_app.app),
    "ObserverFunction": (observer_app, observer_http.app),
    "PageFunction": (page_app, page_app.app),
    "CallsFunction": (calls_app, calls_app.app),
}
ROUTES: list[Route] = read_routes(load_template())


OPENAPI: dict[str, Any] = yaml.safe_load(
    (Path(__file__).resolve().parent.parent / "openapi.yaml").read_text()
)


def operations(document: dict[str, Any]) -> list[Any]:
    found = []
    for result in schemathesis.openapi.from_dict(document).get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an Err would raise here: the schema is ours
        found.append(operation)
    return found


def function_of(operation: Any) -> str:
    """The template function that serves an operation (its route's logical id)."""
    method, path = operation.method.upper(), operation.path
    return next((r.function.logical_id for r in ROUTES if (r.method, r.path) == (method, path)), "unrouted")


OPERATIONS = [(function_of(operation), operation) for operation in operations(OPENAPI)]


def serialize(case: Any) -> bytes:
    if isinstance(case.body, NotSet) or (case.body is None and case.media_type != "application/json"):
        return b""
    if isinstance(case.body, bytes):
        return case.body
    if case.media_type == "application/sdp" and isinstance(case.body, str):
        return case.body.encode("utf-8", "surrogatepass")
    return json.dumps(case.body).encode()


def as_v2_event(case: Any) -> dict[str, Any]:
    path = case.formatted_path
    route = next(r for r in ROUTES if r.match(case.method.upper(), path) is not None)
    headers = [(str(k), str(v)) for k, v in (case.headers or {}).items()]
    body = serialize(case)
    if body and not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("content-type", case.media_type or "application/octet-stream"))
    query = "&".join(f"{k}={v}" for k, v in (case.query or {}).items())
    return build_event(
        route,
        method=case.method.upper(),
        path=path,
        query_string=query,
        headers=[*headers, ("host", "abc123defg.execute-api.us-east-1.amazonaws.com")],
        body=body,
        path_parameters=route.match(case.method.upper(), path) or {},
    )


def test_openapi_yaml_documents_exactly_the_template_routes() -> None:
    documented = {(op.method.upper(), op.path) for _, op in OPERATIONS}
    assert documented == {(r.method, r.path) for r in ROUTES}


def has_inputs(operation: Any) -> bool:
    """Negative cases need something to break: a parameter or a body with a schema (`{}` takes anything)."""
    raw = operation.definition.raw
    content = (raw.get("requestBody") or {}).get("content") or {}
    return bool(raw.get("parameters")) or any(media.get("schema") for media in content.values())


SCHEMATHESIS_RUNS = [
    (function, operation, mode)
    for function, operation in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE or has_inputs(operation)
]


@pytest.mark.parametrize(
    ("function", "operation", "mode"),
    SCHEMATHESIS_RUNS,
    ids=[f"{op.label} {mode.value}" for _, op, mode in SCHEMATHESIS_RUNS],
)
def test_schemathesis_no_5xx(
    fake: FakeOpenAI, launcher: RecordingLauncher, function: str, operation: Any, mode: GenerationMode
) -> None:
    module, app = APPS[function]

    @settings(FUZZ, max_examples=40)
    @given(case=operation.as_strategy(mode))
    def through_handler_and_asgi(case: Any) -> None:
        try:
            event = as_v2_event(case)
        except StopIteration:  # a path the generator bent out of the route's shape: API Gateway's 404
            return
        status = status_and_error(module.handler(event, FakeContext()))
        asgi = case.call(app=app)
        assert asgi.status_code < 500, asgi.text
        tally.record(f"fuzz: schemathesis {function}", tried=1, lambda_2xx=int(status < 300))

    through_handler_and_asgi()
