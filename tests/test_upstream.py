"""OpenAIClient on httpx.MockTransport: exact requests, error mapping, the 401 key refresh."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from shared.errors import UpstreamError, UpstreamTimeout
from shared.secrets import SecretStore
from shared.settings import Settings
from shared.upstream import OpenAIClient, make_headers

Handler = Callable[[httpx.Request], httpx.Response]
SDP_ANSWER = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\n"


class Keys(SecretStore):
    """A SecretStore whose value can change, counting refreshes."""

    def __init__(self, *values: str) -> None:
        super().__init__(Settings())
        self.values = list(values)
        self.refreshes = 0

    def api_key(self, *, refresh: bool = False) -> str:
        if refresh:
            self.refreshes += 1
            if len(self.values) > 1:
                self.values.pop(0)
        return self.values[0]


def make_client(
    handler: Handler, keys: SecretStore | None = None
) -> tuple[OpenAIClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        return handler(request)

    settings = Settings(openai_base_url="https://api.test/v1", upstream_timeout_seconds=2)
    client = OpenAIClient(settings, keys or Keys("sk-one"), transport=httpx.MockTransport(record))
    return client, seen


def created(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        201,
        text=SDP_ANSWER,
        headers={"content-type": "application/sdp", "location": "/v1/realtime/calls/rtc_abc123"},
    )


def test_make_headers() -> None:
    assert make_headers("sk-x") == {"Authorization": "Bearer sk-x"}
    assert make_headers("sk-x", "application/json") == {
        "Authorization": "Bearer sk-x",
        "Content-Type": "application/json",
    }


def test_create_call_posts_multipart_sdp_and_session() -> None:
    client, seen = make_client(created)
    call = asyncio.run(client.create_call("v=0\r\noffer", {"type": "realtime", "model": "m"}))
    assert (call.call_id, call.sdp, call.content_type) == ("rtc_abc123", SDP_ANSWER, "application/sdp")
    (request,) = seen
    assert request.url == "https://api.test/v1/realtime/calls"
    assert request.headers["authorization"] == "Bearer sk-one"
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    body = request.content.decode()
    assert 'name="sdp"\r\n\r\nv=0\r\noffer\r\n' in body
    assert 'name="session"\r\n\r\n{"type": "realtime", "model": "m"}\r\n' in body


@pytest.mark.parametrize(
    ("location", "body"),
    [("", SDP_ANSWER), ("/v1/realtime/calls/../../etc", SDP_ANSWER), ("/v1/realtime/calls/rtc_ok", "")],
)
def test_unusable_answers_are_upstream_errors(location: str, body: str) -> None:
    client, _ = make_client(lambda r: httpx.Response(201, text=body, headers={"location": location}))
    with pytest.raises(UpstreamError) as error:
        asyncio.run(client.create_call("v=0", {}))
    assert error.value.status_code == 502


def test_upstream_error_message_is_passed_on_without_keys() -> None:
    message = {"error": {"message": "Incorrect API key provided: sk-proj-abcdef123456", "type": "x"}}
    client, seen = make_client(lambda r: httpx.Response(400, json=message))
    with pytest.raises(UpstreamError) as error:
        asyncio.run(client.create_call("v=0", {}))
    assert error.value.upstream_status == 400
    assert error.value.reason == "OpenAI answered 400: Incorrect API key provided: [redacted]"
    assert len(seen) == 1  # no retry for a 400


def test_non_json_error_uses_the_reason_phrase() -> None:
    client, _ = make_client(lambda r: httpx.Response(503, text="<html>busy</html>"))
    with pytest.raises(UpstreamError, match="OpenAI answered 503: Service Unavailable"):
        asyncio.run(client.accept_call("rtc_x", {"type": "realtime"}))


def test_timeout_and_connection_errors() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(UpstreamTimeout) as timeout:
        asyncio.run(make_client(slow)[0].hangup_call("rtc_x"))
    assert timeout.value.status_code == 504
    with pytest.raises(UpstreamError, match="unreachable"):
        asyncio.run(make_client(refused)[0].hangup_call("rtc_x"))


def test_401_refreshes_the_key_once_and_retries_once() -> None:
    keys = Keys("sk-old", "sk-new")

    def only_new_key(request: httpx.Request) -> httpx.Response:
        ok = request.headers["authorization"] == "Bearer sk-new"
        return httpx.Response(200) if ok else httpx.Response(401, json={"error": {"message": "bad key"}})

    client, seen = make_client(only_new_key, keys)
    asyncio.run(client.accept_call("rtc_x", {"type": "realtime"}))
    assert [r.headers["authorization"] for r in seen] == ["Bearer sk-old", "Bearer sk-new"]
    assert keys.refreshes == 1


def test_401_with_unchanged_key_is_not_retried() -> None:
    keys = Keys("sk-same")
    client, seen = make_client(lambda r: httpx.Response(401, json={"error": {"message": "no"}}), keys)
    with pytest.raises(UpstreamError, match="401"):
        asyncio.run(client.accept_call("rtc_x", {"type": "realtime"}))
    assert len(seen) == 1
    assert keys.refreshes == 1


def test_client_secret_request_and_validation() -> None:
    def mint(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"value": "ek_1", "expires_at": 1700000600, "session": {}})

    client, seen = make_client(mint)
    secret = asyncio.run(client.create_client_secret({"type": "realtime"}, 120))
    assert secret["value"] == "ek_1"
    sent: dict[str, Any] = json.loads(seen[0].content)
    assert sent == {
        "expires_after": {"anchor": "created_at", "seconds": 120},
        "session": {"type": "realtime"},
    }

    broken, _ = make_client(lambda r: httpx.Response(200, json={"nothing": True}))
    with pytest.raises(UpstreamError, match="no client secret"):
        asyncio.run(broken.create_client_secret({}, 60))


def test_call_control_paths_and_bodies() -> None:
    client, seen = make_client(lambda r: httpx.Response(200))
    asyncio.run(client.accept_call("rtc_1", {"type": "realtime"}))
    asyncio.run(client.reject_call("rtc_1", 486))
    asyncio.run(client.hangup_call("rtc_1"))
    assert [r.url.path for r in seen] == [
        "/v1/realtime/calls/rtc_1/accept",
        "/v1/realtime/calls/rtc_1/reject",
        "/v1/realtime/calls/rtc_1/hangup",
    ]
    assert json.loads(seen[1].content) == {"status_code": 486}
    with pytest.raises(ValueError, match="not a call id"):
        asyncio.run(client.hangup_call("../admin"))


def test_one_pooled_client_per_event_loop() -> None:
    client, _ = make_client(created)
    loop = asyncio.new_event_loop()
    try:

        async def http_id() -> int:
            return id(client._http())

        first, second = loop.run_until_complete(http_id()), loop.run_until_complete(http_id())
        assert first == second
        assert asyncio.run(http_id()) != first  # another loop gets its own connections
    finally:
        loop.close()
