"""The FastAPI apps' shared behaviour (shared/web.py), through the Lambda handlers: FastAPI's 422 is our
400 with a one-line reason, unknown paths and methods answer `{"error": ...}`, no docs are served."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

import observer_http
import page_app
import rtc_app
import sip_app
import token_app
from tests.conftest import FakeContext, LogCapture, RecordingLauncher, load_event, response_json
from tests.fake_openai import FakeOpenAI

HTTP_FUNCTIONS: dict[str, tuple[ModuleType, str]] = {  # module, sample event
    "rtc": (rtc_app, "rtc"),
    "token": (token_app, "token"),
    "sip": (sip_app, "sip"),
    "observer": (observer_http, "observer_http"),
    "page": (page_app, "page"),
}


def request(event_name: str, method: str, path: str, query: str = "") -> dict[str, Any]:
    """The function's sample event, sent as `method path?query` (API Gateway passes the raw path)."""
    event = load_event(event_name)
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["rawQueryString"] = query
    event.pop("queryStringParameters", None)
    return event


# One case per typed parameter of every parameterised route: (function, path, query, the 400's reason).
INVALID_PARAMETERS = [
    ("rtc", "/rtc", "video=maybe", "Invalid request: query.video must be true or false"),
    ("rtc", "/rtc", "video=", "Invalid request: query.video must be true or false"),
    ("observer", "/observer/call_1", "", "Invalid request: path.call_id is malformed"),
    ("observer", "/observer/rtc_a%20b", "", "Invalid request: path.call_id is malformed"),
]


@pytest.mark.parametrize(("function", "path", "query", "reason"), INVALID_PARAMETERS)
def test_a_failed_parameter_check_is_our_400_never_fastapis_422(
    fake: FakeOpenAI,
    launcher: RecordingLauncher,
    logs: LogCapture,
    function: str,
    path: str,
    query: str,
    reason: str,
) -> None:
    module, event_name = HTTP_FUNCTIONS[function]
    result = module.handler(request(event_name, "POST", path, query), FakeContext())
    assert result["statusCode"] == 400
    assert response_json(result) == {"error": reason}  # no `detail`, no pydantic internals
    assert fake.requests == []  # nothing upstream
    assert launcher.requests == []
    (logged,) = logs.messages("request failed")
    assert (logged["status"], logged["reason"]) == (400, reason)


@pytest.mark.parametrize("value", ["%20TRUE%20", "yes", "0", "Off"])
def test_the_video_flag_takes_what_it_took_before(
    fake: FakeOpenAI, launcher: RecordingLauncher, value: str
) -> None:
    result = rtc_app.handler(request("rtc", "POST", "/rtc", f"video={value}"), FakeContext())
    assert result["statusCode"] == 200
    assert len(launcher.requests) == 1


def test_parameters_are_checked_before_the_body(fake: FakeOpenAI, launcher: RecordingLauncher) -> None:
    # As before: a bad flag is the reason given, even when the body is wrong too.
    event = request("rtc", "POST", "/rtc", "video=maybe")
    event["headers"]["content-type"] = "text/plain"
    assert response_json(rtc_app.handler(event, FakeContext()))["error"].startswith("Invalid request: query")


@pytest.mark.parametrize("function", list(HTTP_FUNCTIONS))
@pytest.mark.parametrize("path", ["/nope", "/docs", "/redoc", "/openapi.json"])
def test_unknown_paths_are_404_with_an_error_body(
    launcher: RecordingLauncher, function: str, path: str
) -> None:
    module, event_name = HTTP_FUNCTIONS[function]
    result = module.handler(request(event_name, "GET", path), FakeContext())
    assert result["statusCode"] == 404
    assert response_json(result) == {"error": "Not Found"}


@pytest.mark.parametrize(
    ("function", "method", "path", "allowed"),
    [
        ("rtc", "GET", "/rtc", "POST"),
        ("sip", "PUT", "/sip", "POST"),
        ("observer", "GET", "/observer/rtc_1", "POST"),
        ("page", "POST", "/", "GET"),
        ("token", "DELETE", "/token", "GET, POST"),  # two routes, one path: both methods named
    ],
)
def test_unknown_methods_are_405_with_an_error_body_and_allow(
    fake: FakeOpenAI, launcher: RecordingLauncher, function: str, method: str, path: str, allowed: str
) -> None:
    module, event_name = HTTP_FUNCTIONS[function]
    result = module.handler(request(event_name, method, path), FakeContext())
    assert result["statusCode"] == 405
    assert response_json(result) == {"error": "Method Not Allowed"}
    assert result["headers"]["allow"] == allowed
    assert fake.requests == []
    assert launcher.requests == []
