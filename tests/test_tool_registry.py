"""The tool registry: schemas from pydantic models, the tools of each channel's session, the settings."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field, ValidationError

import observer_app
import rtc_app
import token_app
from shared import deps
from shared.errors import ServiceError
from shared.session import make_session
from shared.settings import Settings
from shared.tools import available_tools, clean_schema, run_tool, select_tools, tool_from_function
from tests.conftest import FakeContext, load_event
from tests.fake_openai import FakeOpenAI

MCP = json.dumps(
    [
        {
            "server_label": "crm",
            "server_url": "https://crm.example/mcp",
            "allowed_tools": ["find_customer"],
            "headers": {"Authorization": "Bearer mcp-credential-123"},
        },
        {"server_label": "docs", "server_url": "https://docs.example/mcp"},
    ]
)


class Address(BaseModel):
    city: str = Field(description="City name")


class BookingArgs(BaseModel):
    """Title and docstring of a model never reach the schema."""

    guests: int = Field(ge=1, le=12, description="How many people")
    when: Literal["lunch", "dinner"]
    address: Address
    notes: list[Address] = []


async def book_table(args: BookingArgs) -> str:
    """Book a table.

    Spread over lines."""
    return f"booked for {args.guests}"


def test_the_schema_is_generated_from_the_argument_model() -> None:
    schema = tool_from_function(book_table).schema()
    assert schema["type"] == "function"
    assert schema["name"] == "book_table"
    assert schema["description"] == "Book a table. Spread over lines."
    parameters = schema["parameters"]
    text = json.dumps(parameters)
    assert "$ref" not in text
    assert "$defs" not in text
    assert "title" not in text
    assert parameters["type"] == "object"
    assert parameters["required"] == ["guests", "when", "address"]
    assert parameters["properties"]["guests"] == {
        "description": "How many people",
        "maximum": 12,
        "minimum": 1,
        "type": "integer",
    }
    assert parameters["properties"]["when"] == {"enum": ["lunch", "dinner"], "type": "string"}
    city = {"description": "City name", "type": "string"}
    assert parameters["properties"]["address"]["properties"]["city"] == city
    assert parameters["properties"]["notes"]["items"]["properties"]["city"] == city


def test_clean_schema_of_an_empty_model_is_an_object() -> None:
    class Nothing(BaseModel):
        pass

    assert clean_schema(Nothing.model_json_schema()) == {"type": "object", "properties": {}}


def test_arguments_are_validated_against_the_model() -> None:
    tools = {"book_table": tool_from_function(book_table)}
    good = asyncio.run(
        run_tool(
            tools, "book_table", '{"guests": 2, "when": "dinner", "address": {"city": "Oslo"}}', time_limit=1
        )
    )
    assert (good.ok, good.output) == (True, "booked for 2")
    bad = asyncio.run(run_tool(tools, "book_table", '{"guests": 40, "when": "brunch"}', time_limit=1))
    assert not bad.ok
    error = json.loads(bad.output)["error"]
    assert "guests" in error
    assert "when" in error
    assert "address" in error


def not_async(args: BookingArgs) -> str:
    """Sync."""
    return ""


async def undocumented(args: BookingArgs) -> str:
    return ""


async def two_arguments(args: BookingArgs, other: int) -> str:
    """Two."""
    return ""


@pytest.mark.parametrize("function", [not_async, undocumented, two_arguments])
def test_a_function_that_is_not_a_tool_is_refused(function: Any) -> None:
    with pytest.raises(TypeError):
        tool_from_function(function)


def test_the_user_file_and_the_built_ins_are_found() -> None:
    assert {"end_call", "transfer_call", "get_current_time"} <= set(available_tools())
    assert "on_dtmf" not in available_tools()


def test_unknown_tool_names_are_a_misconfiguration() -> None:
    with pytest.raises(ServiceError, match="unknown tool 'nope'"):
        select_tools(["end_call", "nope"], transfer_target="")
    with pytest.raises(ServiceError):
        make_session(Settings(tools="end_call,nope"), "sip")


def names(session: dict[str, Any]) -> list[str]:
    return [t.get("name") or f"mcp:{t['server_label']}" for t in session.get("tools", [])]


def test_each_channel_gets_its_own_tools() -> None:
    settings = Settings.model_validate({"transfer_target": "tel:+15551234567", "mcp_servers": MCP})
    sip = make_session(settings, "sip").to_json()
    webrtc = make_session(settings, "webrtc").to_json()
    browser = make_session(settings, "browser").to_json()
    assert names(sip) == ["end_call", "transfer_call", "get_current_time", "mcp:crm", "mcp:docs"]
    assert names(webrtc) == ["end_call", "get_current_time", "mcp:crm", "mcp:docs"]
    # A browser connects with an ephemeral key: no observer answers function calls, and MCP
    # credentials must not travel there, so a server that needs headers is left out.
    assert names(browser) == ["mcp:docs"]
    assert sip["tool_choice"] == webrtc["tool_choice"] == "auto"
    crm = sip["tools"][3]
    assert crm == {
        "type": "mcp",
        "server_label": "crm",
        "server_url": "https://crm.example/mcp",
        "require_approval": "never",
        "allowed_tools": ["find_customer"],
        "headers": {"Authorization": "Bearer mcp-credential-123"},
    }
    assert "mcp-credential-123" not in json.dumps(browser)
    assert "mcp-credential-123" not in repr(settings)


def test_no_transfer_tool_without_a_target_and_only_the_built_ins_when_tools_is_empty() -> None:
    assert names(make_session(Settings(), "sip").to_json()) == ["end_call", "get_current_time"]
    assert names(make_session(Settings(tools=""), "sip").to_json()) == ["end_call"]
    target = "tel:+12025550199"
    assert names(make_session(Settings(tools="", transfer_target=target), "sip").to_json()) == [
        "end_call",
        "transfer_call",
    ]
    # Naming a built-in changes nothing: TOOLS lists your tools, the built-ins are always there.
    assert names(make_session(Settings(tools="end_call,get_current_time"), "sip").to_json()) == [
        "end_call",
        "get_current_time",
    ]
    assert names(make_session(Settings(tools=""), "browser").to_json()) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("transfer_target", "+15551234567"),
        ("transfer_target", "tel:5551234567"),
        ("transfer_target", "sip:nohost"),
        ("transfer_target", "http://x"),
        ("mcp_servers", "not json"),
        ("mcp_servers", '{"server_label": "x"}'),
        ("mcp_servers", '[{"server_label": "bad label", "server_url": "https://x"}]'),
        ("mcp_servers", '[{"server_label": "x", "server_url": "ftp://x"}]'),
        ("mcp_servers", '[{"server_label": "x", "server_url": "https://x", "surprise": 1}]'),
        (
            "mcp_servers",
            '[{"server_label": "x", "server_url": "https://a"}, {"server_label": "x", "server_url": "https://b"}]',
        ),
        ("tools", "end_call,rm -rf"),
        ("tool_timeout_seconds", "0"),
    ],
)
def test_bad_tool_settings_are_refused_at_load(field: str, value: str) -> None:
    with pytest.raises(ValidationError):
        Settings.model_validate({field: value})


@pytest.mark.parametrize(
    "target", ["tel:+15551234567", "sip:support@pbx.example.com", "sips:desk@pbx.example:5061"]
)
def test_good_transfer_targets(target: str) -> None:
    assert Settings(transfer_target=target).transfer_target == target


def test_token_session_carries_no_function_tools_and_no_mcp_credentials(
    fake: FakeOpenAI, env: pytest.MonkeyPatch
) -> None:
    env.setenv("MCP_SERVERS", MCP)
    env.setenv("TRANSFER_TARGET", "tel:+15551234567")
    deps.reset()
    assert token_app.handler(load_event("token"), FakeContext())["statusCode"] == 200
    (upstream,) = fake.requests_to("/realtime/client_secrets")
    assert upstream.json is not None
    assert names(upstream.json["session"]) == ["mcp:docs"]
    assert b"mcp-credential-123" not in upstream.body


def test_an_unknown_tool_in_the_settings_is_a_500_before_any_upstream_call(
    fake: FakeOpenAI, env: pytest.MonkeyPatch
) -> None:
    env.setenv("TOOLS", "end_call,order_status")
    deps.reset()
    result = rtc_app.handler(load_event("rtc"), FakeContext())
    assert result["statusCode"] == 500
    assert json.loads(result["body"]) == {
        "error": "Server misconfigured: TOOLS names an unknown tool 'order_status'"
    }
    assert fake.requests == []
    # The observer refuses to start rather than run without the tools the session promised.
    worker = load_event("observer_async")
    worker.update(call_id="rtc_badtools0000", requested_at=time.time(), call_started_at=time.time())
    assert observer_app.handler(worker, FakeContext())["outcome"] == "refused"
    assert fake.requests == []
