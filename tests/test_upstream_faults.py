"""Upstream faults through the real handlers: each gets its documented status, a one-line reason, one try.

Documented mapping: any upstream error answer or unusable answer -> 502, no answer in time -> 504,
and for /sip an accept 404 (the caller hung up) -> 200. A 401 re-reads the key and retries once only
if the key changed. Faults the fake cannot produce (a reset mid-body, a bad `Location`) come from a
raw TCP server that answers canned bytes.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import rtc_app
import sip_app
import token_app
from shared import deps
from shared.settings import Settings
from tests import tally
from tests.conftest import (
    FakeContext,
    LogCapture,
    RecordingLauncher,
    incoming_call_body,
    load_event,
    response_json,
    sign,
    with_body,
)
from tests.fake_openai import FakeOpenAI

CALL_ID = "rtc_faults0123456789"
STATUSES = [400, 401, 403, 404, 429, 500, 503]


def sip_event() -> dict[str, Any]:
    return sign(with_body(load_event("sip"), incoming_call_body(CALL_ID)))


ROUTES: dict[str, tuple[Any, Callable[[], dict[str, Any]], str]] = {
    "rtc": (rtc_app, lambda: load_event("rtc"), "/realtime/calls"),
    "token": (token_app, lambda: load_event("token"), "/realtime/client_secrets"),
    "sip": (sip_app, sip_event, f"/realtime/calls/{CALL_ID}/accept"),
}


def expected_status(route: str, upstream_status: int) -> int:
    return 200 if route == "sip" and upstream_status == 404 else 502


def expected_tries(route: str, upstream_status: int | None) -> int:
    """The SIP accept retries 429, 5xx and timeouts (None) a bounded number of times; nothing else does."""
    retried = upstream_status is None or upstream_status == 429 or upstream_status >= 500
    return Settings().accept_max_attempts if route == "sip" and retried else 1


def check_reason(result: dict[str, Any], status: int) -> str:
    assert result["statusCode"] == status
    if status == 200:
        return ""
    body = response_json(result)
    assert set(body) == {"error"}
    reason: str = body["error"]
    assert reason
    assert "\n" not in reason
    assert len(reason) <= 300
    return reason


def no_unhandled(logs: LogCapture) -> None:
    assert logs.messages("unhandled error") == []


@pytest.mark.parametrize("with_json", [True, False], ids=["json-body", "text-body"])
@pytest.mark.parametrize("upstream_status", STATUSES)
@pytest.mark.parametrize("route", sorted(ROUTES))
def test_error_answers(
    fake: FakeOpenAI,
    launcher: RecordingLauncher,
    env: pytest.MonkeyPatch,
    logs: LogCapture,
    route: str,
    upstream_status: int,
    with_json: bool,
) -> None:
    module, event, path = ROUTES[route]
    fake.register_call(CALL_ID)
    body = (
        {"error": {"message": f"upstream says {upstream_status}", "type": "x"}} if with_json else "<b>no</b>"
    )
    env.setenv("ACCEPT_BACKOFF_SECONDS", "0.01")
    deps.reset()
    fake.fail_next(path, upstream_status, body, times=10)  # persistent: every try fails the same way
    result = module.handler(event(), FakeContext())

    reason = check_reason(result, expected_status(route, upstream_status))
    if reason:
        detail = f"upstream says {upstream_status}" if with_json else ""
        assert reason.startswith(f"OpenAI answered {upstream_status}: {detail}")
    # One try, or the SIP accept's bounded retries; a 401 with an unchanged key is not retried.
    tries = expected_tries(route, upstream_status)
    assert len(fake.requests_to(path)) == tries
    assert len(fake.requests) == tries
    assert launcher.requests == []
    no_unhandled(logs)
    tally.record("upstream faults", tried=1, upstream_requests=len(fake.requests))


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_slower_than_our_timeout_is_504_after_one_try(
    fake: FakeOpenAI, launcher: RecordingLauncher, env: pytest.MonkeyPatch, logs: LogCapture, route: str
) -> None:
    env.setenv("UPSTREAM_TIMEOUT_SECONDS", "0.3")
    deps.reset()
    module, event, path = ROUTES[route]
    fake.register_call(CALL_ID)
    env.setenv("ACCEPT_BACKOFF_SECONDS", "0.01")
    deps.reset()
    fake.delay_next(path, 1.5, times=10)
    result = module.handler(event(), FakeContext())
    assert check_reason(result, 504) == "OpenAI did not answer in time"
    assert len(fake.requests) == expected_tries(route, None)
    assert launcher.requests == []
    no_unhandled(logs)
    tally.record("upstream faults", tried=1, upstream_requests=len(fake.requests))


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_connection_refused_is_502(
    fake: FakeOpenAI, launcher: RecordingLauncher, env: pytest.MonkeyPatch, logs: LogCapture, route: str
) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
    deps.reset()
    module, event, _ = ROUTES[route]
    result = module.handler(event(), FakeContext())
    assert check_reason(result, 502) == "OpenAI unreachable (ConnectError)"
    assert launcher.requests == []
    no_unhandled(logs)
    tally.record("upstream faults", tried=1)


class RawUpstream:
    """A TCP server on 127.0.0.1 that reads one HTTP request per connection and sends canned bytes."""

    def __init__(self, response: bytes, *, reset: bool = False) -> None:
        self.response = response
        self.reset = reset
        self.requests = 0
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}/v1"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                while len(body) < length:
                    body += conn.recv(65536)
                self.requests += 1
                conn.sendall(self.response)
                if self.reset:  # RST instead of FIN: the client sees a reset mid-body
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._sock.close()


def http_response(status: str, headers: dict[str, str], body: bytes, *, length: int | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers.items())]
    lines.append(f"Content-Length: {len(body) if length is None else length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


SDP = b"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
CREATED = {"Content-Type": "application/sdp", "Location": "/v1/realtime/calls/rtc_raw0123"}
RAW_FAULTS = {
    "reset mid-body": (
        http_response("201 Created", CREATED, SDP[:10], length=len(SDP)),
        True,
        "OpenAI unreachable",
    ),
    "Location with a path": (
        http_response("201 Created", {**CREATED, "Location": "/v1/realtime/calls/../../admin"}, SDP),
        False,
        "Upstream answer had no usable call id",
    ),
    "Location missing": (
        http_response("201 Created", {"Content-Type": "application/sdp"}, SDP),
        False,
        "Upstream answer had no usable call id",
    ),
    "Location not a call id": (
        http_response("201 Created", {**CREATED, "Location": "https://evil.example/x?y=1"}, SDP),
        False,
        "Upstream answer had no usable call id",
    ),
    "empty SDP answer": (http_response("201 Created", CREATED, b""), False, "Upstream answer had no SDP"),
    "HTML instead of SDP": (
        http_response("201 Created", {**CREATED, "Content-Type": "text/html"}, b"<html>hi</html>"),
        False,
        "Upstream answer had no SDP",
    ),
}


@pytest.fixture
def raw_upstream(request: pytest.FixtureRequest, env: pytest.MonkeyPatch) -> Iterator[RawUpstream]:
    response, reset, _ = RAW_FAULTS[request.param]
    server = RawUpstream(response, reset=reset)
    env.setenv("OPENAI_BASE_URL", server.base_url)
    deps.reset()
    yield server
    server.close()


@pytest.mark.parametrize("raw_upstream", sorted(RAW_FAULTS), indirect=True)
def test_broken_answers_to_rtc_are_502(
    raw_upstream: RawUpstream, launcher: RecordingLauncher, logs: LogCapture, request: pytest.FixtureRequest
) -> None:
    fault = request.node.callspec.params["raw_upstream"]
    result = rtc_app.handler(load_event("rtc"), FakeContext())
    reason = check_reason(result, 502)
    assert reason.startswith(RAW_FAULTS[fault][2])
    assert raw_upstream.requests == 1
    assert launcher.requests == []
    no_unhandled(logs)
    tally.record("upstream faults", tried=1, upstream_requests=raw_upstream.requests)


def test_token_answer_without_a_secret_is_502(fake: FakeOpenAI, launcher: RecordingLauncher) -> None:
    fake.fail_next("/realtime/client_secrets", 200, {"value": 42})
    result = token_app.handler(load_event("token"), FakeContext())
    assert check_reason(result, 502) == "Upstream answer had no client secret"
    fake.fail_next("/realtime/client_secrets", 200, "not json")
    result = token_app.handler(load_event("token"), FakeContext())
    assert check_reason(result, 502) == "Upstream answer was not a JSON object"
    assert len(fake.requests) == 2
    tally.record("upstream faults", tried=2, upstream_requests=len(fake.requests))
