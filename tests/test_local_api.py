"""The local stand-in for API Gateway: routes from template.yaml, v2 events, observers in threads."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from local_api.events import build_event, response_parts
from local_api.routes import Function, Route, load_template, read_routes
from local_api.server import LocalServer, create_gateway
from tests.conftest import incoming_call_body, load_event, sign, with_body
from tests.fake_openai import FakeOpenAI

REPO = Path(__file__).resolve().parent.parent
EXPECTED_ROUTES = {
    ("POST", "/rtc", "RtcFunction"),
    ("GET", "/token", "TokenFunction"),
    ("POST", "/token", "TokenFunction"),
    ("POST", "/sip", "SipFunction"),
    ("POST", "/observer/{call_id}", "ObserverFunction"),
    ("GET", "/", "PageFunction"),
    ("GET", "/favicon.ico", "PageFunction"),
    ("GET", "/calls", "CallsFunction"),
    ("GET", "/calls/{call_id}", "CallsFunction"),
    ("POST", "/calls", "CallsFunction"),
    ("GET", "/calls/{call_id}/recording", "CallsFunction"),
}


@pytest.fixture
def server(env: pytest.MonkeyPatch) -> Iterator[LocalServer]:
    with LocalServer(create_gateway()) as running:
        yield running


def test_routes_are_read_from_the_template() -> None:
    routes = read_routes(load_template())
    assert {(r.method, r.path, r.function.logical_id) for r in routes} == EXPECTED_ROUTES
    observer = next(r.function for r in routes if r.function.logical_id == "ObserverFunction")
    assert observer.timeout == 900


def test_every_template_route_is_served(server: LocalServer, fake: FakeOpenAI) -> None:
    offer = load_event("rtc")["body"]
    with httpx.Client(base_url=server.url) as client:
        for route in server.gateway.routes:
            # A recording exists only for a GPT-Live call (`live_...`).
            call_id = "live_served000" if route.path.endswith("/recording") else "rtc_served000"
            path = route.path.replace("{call_id}", call_id)
            if (route.method, route.path) == ("POST", "/calls"):
                # Outbound calls are off by default (no allowed prefixes): the handler's 403.
                response = client.post(path, json={"to": "+14155550123", "agent": "default"})
                assert response.status_code == 403
                assert response.json()["error"].startswith("Outbound calls are off")
                continue
            response = client.request(
                route.method, path, content=offer, headers={"content-type": "application/sdp"}
            )
            # The gateway's own 404 says {"message": "Not Found"}; anything else came from the handler.
            assert response.json() != {"message": "Not Found"} if response.status_code == 404 else True
            # 404 from a handler: GET /calls/{call_id} (and its recording) of a call never recorded.
            assert response.status_code in (200, 202, 401, 404), (
                route.route_key,
                response.status_code,
                response.text,
            )


def test_unknown_routes_and_methods_get_the_gateway_404(server: LocalServer) -> None:
    with httpx.Client(base_url=server.url) as client:
        for method, path in [("GET", "/nope"), ("DELETE", "/rtc"), ("GET", "/observer/rtc_x/extra")]:
            response = client.request(method, path)
            assert (response.status_code, response.json()) == (404, {"message": "Not Found"})


def test_rtc_end_to_end_starts_an_observer_that_greets(server: LocalServer, fake: FakeOpenAI) -> None:
    offer = load_event("rtc")["body"]
    response = httpx.post(f"{server.url}/rtc", content=offer, headers={"content-type": "application/sdp"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/sdp")
    assert response.text.startswith("v=0")
    assert fake.wait_for(lambda: any(s.client_event_types() == ["response.create"] for s in fake.sidebands))
    (created,) = fake.requests_to("/realtime/calls")
    assert fake.sidebands[0].call_id in fake.known_calls
    assert created.form is not None


def test_sip_end_to_end_accepts_and_observes(server: LocalServer, fake: FakeOpenAI) -> None:
    call_id = "rtc_localsip0000000001"
    fake.register_call(call_id)
    event = sign(with_body(load_event("sip"), incoming_call_body(call_id)))
    body = base64.b64decode(event["body"])
    headers = {k: v for k, v in event["headers"].items() if k.startswith("webhook-")}
    headers["content-type"] = "application/json"
    response = httpx.post(f"{server.url}/sip", content=body, headers=headers)
    assert response.status_code == 200
    assert len(fake.requests_to(f"/{call_id}/accept")) == 1
    assert fake.wait_for(lambda: [s.call_id for s in fake.sidebands] == [call_id])


def test_observer_route_starts_a_background_worker(server: LocalServer, fake: FakeOpenAI) -> None:
    call_id = "rtc_localobs0000000001"
    fake.register_call(call_id)
    response = httpx.post(f"{server.url}/observer/{call_id}")
    assert (response.status_code, response.json()) == (202, {"call_id": call_id, "status": "starting"})
    assert fake.wait_for(lambda: any(s.call_id == call_id and s.client_events for s in fake.sidebands))


def test_page_is_served(server: LocalServer) -> None:
    response = httpx.get(f"{server.url}/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert 'id="start"' in response.text


def test_the_favicon_is_an_icon_not_a_404(server: LocalServer) -> None:
    response = httpx.get(f"{server.url}/favicon.ico")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/svg+xml"
    assert response.content.startswith(b"<svg")


def test_build_event_shapes_a_v2_event() -> None:
    route = Route("POST", "/observer/{call_id}", Function("F", "functions/x", "x.handler", 3, 128))
    event = build_event(
        route,
        method="POST",
        path="/observer/rtc_1",
        query_string="a=1&a=2&b=",
        headers=[
            ("Content-Type", "application/octet-stream"),
            ("X-Dup", "1"),
            ("x-dup", "2"),
            ("Cookie", "c=1; d=2"),
        ],
        body=b"\x00\x01",
        path_parameters={"call_id": "rtc_1"},
    )
    assert event["version"] == "2.0"
    assert event["routeKey"] == event["requestContext"]["routeKey"] == "POST /observer/{call_id}"
    assert event["headers"]["x-dup"] == "1,2"
    assert event["cookies"] == ["c=1", "d=2"]
    assert event["queryStringParameters"] == {"a": "1,2", "b": ""}
    assert event["pathParameters"] == {"call_id": "rtc_1"}
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\x00\x01"
    assert response_parts(
        {"statusCode": 201, "headers": {"a": "b"}, "body": "aGk=", "isBase64Encoded": True}
    ) == (
        201,
        [("a", "b")],
        b"hi",
    )


def test_dev_server_starts_without_a_key_and_says_what_is_missing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "OBSERVER_"))}
    env["OPENAI_BASE_URL"] = "http://127.0.0.1:9/v1"  # never reached: the key check comes first
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "local_api", "--port", "0", "--env-file", str(tmp_path / "none")],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stderr is not None
        url = ""
        for _ in range(20):
            line = process.stdout.readline()
            found = re.search(r"Serving on (http://\S+)", line)
            if found:
                url = found.group(1)
                break
        assert url, "the dev server did not start"
        response = httpx.post(f"{url}/rtc", content="v=0\r\n", headers={"content-type": "application/sdp"})
        assert response.status_code == 500
        assert response.json() == {"error": "Server misconfigured: OPENAI_API_KEY is not set"}
        assert httpx.get(f"{url}/").status_code == 200
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert "OPENAI_API_KEY is not set" in stderr
