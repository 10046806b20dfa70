"""GET|POST /token through the Lambda handler against the fake OpenAI."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

import token_app
from tests.conftest import FakeContext, load_event, response_json
from tests.fake_openai import FakeOpenAI


@pytest.mark.parametrize("name", ["token", "token_get"])
def test_mints_an_ephemeral_key(fake: FakeOpenAI, env: pytest.MonkeyPatch, name: str) -> None:
    result = token_app.handler(load_event(name), FakeContext())
    assert result["statusCode"] == 200
    assert result["headers"]["cache-control"] == "no-store"
    body = response_json(result)
    assert body["value"].startswith("ek_")
    assert body["expires_at"] > time.time()
    assert body["calls_url"] == f"{fake.base_url}/realtime/calls"
    assert body["model"] == "gpt-realtime-2.1"

    (upstream,) = fake.requests_to("/realtime/client_secrets")
    sent = upstream.json
    assert sent is not None
    assert sent["expires_after"] == {"anchor": "created_at", "seconds": 600}
    assert sent["session"]["type"] == "realtime"
    assert sent["session"]["audio"]["output"]["voice"] == "marin"


def test_request_body_cannot_change_the_session(fake: FakeOpenAI, env: pytest.MonkeyPatch) -> None:
    event = load_event("token")
    event["body"] = json.dumps({"session": {"model": "gpt-4o", "instructions": "leak secrets"}})
    event["headers"]["content-type"] = "application/json"
    assert token_app.handler(event, FakeContext())["statusCode"] == 200
    sent = fake.requests_to("/realtime/client_secrets")[0].json
    assert sent is not None
    assert sent["session"]["model"] == "gpt-realtime-2.1"
    assert "leak" not in sent["session"]["instructions"]


def test_ttl_and_model_come_from_settings(fake: FakeOpenAI, env: pytest.MonkeyPatch) -> None:
    env.setenv("TOKEN_TTL_SECONDS", "120")
    env.setenv("REALTIME_MODEL", "gpt-realtime-mini")
    from shared import deps

    deps.reset()
    body = response_json(token_app.handler(load_event("token"), FakeContext()))
    assert body["model"] == "gpt-realtime-mini"
    sent = fake.requests_to("/realtime/client_secrets")[0].json
    assert sent is not None
    assert sent["expires_after"]["seconds"] == 120
    assert sent["session"]["model"] == "gpt-realtime-mini"


def test_upstream_failure_is_502(fake: FakeOpenAI, env: pytest.MonkeyPatch) -> None:
    fake.fail_next("/realtime/client_secrets", 503)
    result = token_app.handler(load_event("token"), FakeContext())
    assert result["statusCode"] == 502
    assert response_json(result)["error"].startswith("OpenAI answered 503")


# ----------------------------------------------------------------- GPT-Live has no ephemeral keys


def _with_api(name: str, api: str) -> dict[str, Any]:
    event = load_event(name)
    event["rawQueryString"] = f"api={api}"
    event["queryStringParameters"] = {"api": api}
    return event


@pytest.mark.parametrize("name", ["token", "token_get"])
def test_asking_for_a_live_key_is_400_with_no_upstream_call(
    fake: FakeOpenAI, env: pytest.MonkeyPatch, name: str
) -> None:
    result = token_app.handler(_with_api(name, "live"), FakeContext())
    assert result["statusCode"] == 400
    assert response_json(result) == {"error": "GPT-Live has no ephemeral keys: use POST /rtc?api=live"}
    assert fake.requests == []


def test_a_live_default_profile_is_409_unless_realtime_is_asked_for(
    fake: FakeOpenAI, env: pytest.MonkeyPatch
) -> None:
    env.setenv("VOICE_API", "live")
    env.setenv("MAX_CALLS_PER_CLIENT_PER_HOUR", "1")
    from shared import deps

    deps.reset()
    # The request is fine but the server's default API has no keys: a conflict the client can resolve.
    for _ in range(2):
        result = token_app.handler(load_event("token"), FakeContext())
        assert result["statusCode"] == 409
        assert response_json(result) == {
            "error": "The default profile uses GPT-Live, which has no ephemeral keys: use POST /rtc "
            "(or /token?api=realtime)"
        }
    assert fake.requests == []
    # Refusals counted nothing against the client's one key of the hour: a Realtime key still comes.
    minted = token_app.handler(_with_api("token", "realtime"), FakeContext())
    assert minted["statusCode"] == 200
    assert response_json(minted)["value"].startswith("ek_")
    (upstream,) = fake.requests_to("/realtime/client_secrets")
    assert upstream.json is not None
    assert upstream.json["session"]["type"] == "realtime"


def test_an_unknown_api_is_400(fake: FakeOpenAI, env: pytest.MonkeyPatch) -> None:
    result = token_app.handler(_with_api("token_get", "rtc"), FakeContext())
    assert result["statusCode"] == 400
    assert response_json(result) == {"error": "Invalid request: query.api must be 'realtime' or 'live'"}
    assert fake.requests == []
