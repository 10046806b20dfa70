"""Agent profiles per dialed number (shared/agents.py, agents.yaml): routing by `To` through the real
/sip handler against the fake OpenAI, `default` for WebRTC, the observer's profile tools and greeting,
file checks (at build, lint and run time) and the layer shipping the file."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import observer_app
import rtc_app
import sip_app
import token_app
from shared import agents, deps
from shared.agents import DEFAULT_FILE, AgentsError, parse
from shared.policy import mask_number
from shared.session import make_session
from shared.settings import Settings
from shared.tools import available_tools
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
from tests.fake_openai import FakeOpenAI, RecordedRequest, function_call_events
from tests.samples import DEFAULT_INSTRUCTIONS

ROOT = Path(__file__).resolve().parent.parent
CALL_ID = "rtc_agents0123456789abcdef"
PROFILES = """
agents:
  default:
    instructions: You are the front desk.
  sales:
    numbers: ["+12025550100"]
    instructions: You sell things.
    voice: cedar
    model: gpt-realtime-mini
    tools: [end_call]
    greeting: "Greet the caller by saying: Sales, how can I help?"
  support:
    numbers: ["+1202555*"]
    instructions: You fix things.
    voice: sage
    tools: [end_call, get_current_time, transfer_call]
    transfer_target: tel:+12025550199
  east:
    numbers: ["+1202*"]
    instructions: Regional line.
"""


@pytest.fixture
def profiles(env: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    return use_file(env, tmp_path, PROFILES)


def use_file(env: pytest.MonkeyPatch, tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agents.yaml"
    path.write_text(text, encoding="utf-8")
    env.setenv("AGENTS_FILE", str(path))
    deps.reset()
    return path


def webhook(body: bytes, webhook_id: str | None = None) -> dict[str, Any]:
    return sign(with_body(load_event("sip"), body), webhook_id=webhook_id)


def call_to(to_header: str, from_header: str = "sip:+15551230000@example.com") -> dict[str, Any]:
    return webhook(incoming_call_body(CALL_ID, to_header=to_header, from_header=from_header))


def json_of(request: RecordedRequest) -> dict[str, Any]:
    assert isinstance(request.json, dict)
    return request.json


def tool_names(session: dict[str, Any]) -> list[str]:
    return [tool["name"] for tool in session.get("tools", [])]


# ----------------------------------------------------------------------------- routing by To


@pytest.mark.parametrize(
    ("to_header", "agent", "instructions", "voice", "tools"),
    [
        # Exact beats both prefixes that also match it.
        ("sip:+12025550100@sip.example.com", "sales", "You sell things.", "cedar", ["end_call"]),
        (
            '"Sales" <sip:+12025550100@sip.example.com>;tag=9',
            "sales",
            "You sell things.",
            "cedar",
            ["end_call"],
        ),
        ("sip:12025550100@sip.example.com", "sales", "You sell things.", "cedar", ["end_call"]),  # no "+"
        # The longest prefix wins: +1202555* over +1202*.
        (
            "sip:+12025550177@sip.example.com",
            "support",
            "You fix things.",
            "sage",
            ["end_call", "transfer_call", "get_current_time"],  # the profile's transfer target
        ),
        ("tel:+12029990000", "east", "Regional line.", "marin", ["end_call", "get_current_time"]),
        # Nothing matches: default (its instructions; voice and tools from the settings).
        ("sip:+15559870000@sip.example.com", "default", "You are the front desk.", "marin", None),
        ("sip:anonymous@sip.example.com", "default", "You are the front desk.", "marin", None),
    ],
)
def test_a_sip_call_is_accepted_with_the_profile_of_the_dialed_number(
    fake: FakeOpenAI,
    launcher: RecordingLauncher,
    profiles: Path,
    logs: LogCapture,
    to_header: str,
    agent: str,
    instructions: str,
    voice: str,
    tools: list[str] | None,
) -> None:
    fake.register_call(CALL_ID)
    assert sip_app.handler(call_to(to_header), FakeContext())["statusCode"] == 200
    (accept,) = fake.requests_to(f"/realtime/calls/{CALL_ID}/accept")
    session = json_of(accept)
    assert session["instructions"] == instructions
    assert session["audio"]["output"]["voice"] == voice
    assert session["model"] == ("gpt-realtime-mini" if agent == "sales" else "gpt-realtime-2.1")
    assert tool_names(session) == (tools or ["end_call", "get_current_time"])  # TOOLS, no target
    (observed,) = launcher.requests
    assert observed.agent == agent
    assert observed.caller == "+1555***0000"
    dialed = re.sub(r"\D", "", to_header.split("@")[0])
    assert observed.dialed == (mask_number(f"+{dialed}") if dialed else "")
    (incoming,) = logs.messages("incoming call")
    assert incoming["agent"] == agent
    assert (incoming["from"], incoming["to"]) == (observed.caller, observed.dialed)
    assert logs.messages("call accepted")[0]["agent"] == agent  # every later line names it too


def test_the_caller_number_never_routes(
    fake: FakeOpenAI, launcher: RecordingLauncher, profiles: Path, logs: LogCapture
) -> None:
    fake.register_call(CALL_ID)
    # The caller writes From: claiming the sales number changes nothing, the dialed number decides.
    event = call_to("sip:+15559870000@sip.example.com", from_header="sip:+12025550100@sip.example.com")
    assert sip_app.handler(event, FakeContext())["statusCode"] == 200
    (accept,) = fake.requests_to("/accept")
    assert json_of(accept)["instructions"] == "You are the front desk."
    assert launcher.requests[0].agent == "default"
    assert launcher.requests[0].caller == "+1202***0100"
    # No log line carries a full number, masked or not.
    assert not any(number in line for line in logs.lines for number in ("2025550100", "5559870000"))


def test_webrtc_and_tokens_get_the_default_profile(
    fake: FakeOpenAI, launcher: RecordingLauncher, profiles: Path
) -> None:
    assert rtc_app.handler(load_event("rtc"), FakeContext())["statusCode"] == 200
    (created,) = fake.requests_to("/realtime/calls")
    assert created.form is not None
    session = json.loads(created.form["session"])
    assert (session["instructions"], session["audio"]["output"]["voice"]) == (
        "You are the front desk.",
        "marin",
    )
    assert launcher.requests[0].agent == "default"

    assert token_app.handler(load_event("token"), FakeContext())["statusCode"] == 200
    (minted,) = fake.requests_to("/realtime/client_secrets")
    assert json_of(minted)["session"]["instructions"] == "You are the front desk."


def test_the_shipped_file_changes_nothing_for_real_numbers(env: pytest.MonkeyPatch) -> None:
    settings = Settings()
    registry = available_tools()
    loaded = agents.load_agents(settings, registry)
    # Its default profile is today's settings with the app's instructions, channel by channel.
    settings = settings.model_copy(update={"realtime_instructions": DEFAULT_INSTRUCTIONS})
    for channel in ("sip", "webrtc", "browser"):
        assert make_session(loaded.default.settings, channel, registry) == make_session(
            settings, channel, registry
        )
    assert loaded.default.greeting == ""
    # The example routes only numbers reserved for fiction: +1 NPA 555-0100..0199.
    fictional = re.compile(r"^\+1[2-9][0-9]{2}55501([0-9]{2}|[0-9]?\*)$")
    numbers = [*loaded.exact, *(prefix + "*" for prefix, _ in loaded.prefixes)]
    assert numbers
    assert all(fictional.match(n) for n in numbers)
    assert loaded.route("sip:+15559870000@example.com").name == "default"  # the sample events' number


# ----------------------------------------------------------------------------- the observer


def observe(agent: str, source: str = "sip") -> dict[str, Any]:
    event = load_event("observer_async")
    now = time.time()
    event.update(call_id=CALL_ID, source=source, requested_at=now, call_started_at=now, agent=agent)
    return observer_app.handler(event, FakeContext(remaining_seconds=30))


def outputs(fake: FakeOpenAI) -> dict[str, str]:
    (sideband,) = fake.sidebands
    return {item["call_id"]: item["output"] for item in sideband.tool_outputs()}


@pytest.mark.parametrize(
    ("agent", "greeting", "time_tool"),
    [
        ("sales", {"instructions": "Greet the caller by saying: Sales, how can I help?"}, False),
        ("support", None, True),
        ("default", None, True),  # TOOLS from the settings
    ],
)
def test_the_observer_greets_and_runs_the_tools_of_the_profile(
    fake: FakeOpenAI, profiles: Path, agent: str, greeting: dict[str, str] | None, time_tool: bool
) -> None:
    fake.register_call(CALL_ID)
    fake.sideband_script = [
        0.2,
        *function_call_events("call_time", "get_current_time", '{"timezone": "UTC"}'),
    ]
    assert observe(agent)["outcome"] == "closed"
    (sideband,) = fake.sidebands
    (_, first), *_ = sideband.client_events
    assert first == {"type": "response.create", **({"response": greeting} if greeting else {})}
    output = json.loads(outputs(fake)["call_time"])
    if time_tool:
        assert output["timezone"] == "UTC"
    else:
        assert output == {"error": "unknown tool 'get_current_time'"}  # not one of sales' tools


def test_the_observer_transfers_to_the_profile_target(fake: FakeOpenAI, profiles: Path) -> None:
    fake.register_call(CALL_ID)
    fake.sideband_hold_seconds = -1
    fake.sideband_replies = True
    fake.sideband_script = [0.2, *function_call_events("call_xfer", "transfer_call")]
    assert observe("support")["outcome"] == "transferred"
    (refer,) = fake.requests_to(f"/{CALL_ID}/refer")
    assert refer.json == {"target_uri": "tel:+12025550199"}


def test_an_unknown_agent_name_falls_back_to_default(
    fake: FakeOpenAI, profiles: Path, logs: LogCapture
) -> None:
    fake.register_call(CALL_ID)
    assert observe("renamed-since")["outcome"] == "closed"  # an event from before a redeploy
    (warning,) = logs.messages("unknown agent profile: using default")
    assert warning["agent"] == "renamed-since"
    (sideband,) = fake.sidebands
    assert sideband.client_events[0][1] == {"type": "response.create"}


# ----------------------------------------------------------------------------- invalid files


def problem(text: str) -> str:
    with pytest.raises(AgentsError) as caught:
        parse(text, available_tools())
    assert caught.value.status_code == 500
    assert caught.value.reason.startswith("Server misconfigured: agents.yaml: ")
    return caught.value.detail


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "agents:\n  sales:\n    voise: cedar\n",
            "profile 'sales', field 'voise': Extra inputs are not permitted",
        ),
        ("agents:\n  sales:\n    voice: robot\n", "profile 'sales', field 'voice': Input should be 'alloy'"),
        ("agents:\n  sales:\n    numbers: [+12025550100]\n", "write numbers in quotes ('+12025550100')"),
        ("agents:\n  sales:\n    numbers: ['2025550100']\n", "field 'numbers': '2025550100' is neither"),
        ("agents:\n  sales:\n    numbers: ['+1202*555']\n", "is neither an E.164 number"),
        ("agents:\n  s:\n    numbers: ['+12025550100', '+12025550100']\n", "a number is listed twice"),
        (
            "agents:\n  a:\n    numbers: ['+12025550100']\n  b:\n    numbers: ['+12025550100']\n",
            "'+12025550100' is listed by both 'a' and 'b'",
        ),
        (
            "agents:\n  a:\n    numbers: ['+1202*']\n  b:\n    numbers: ['+1202*']\n",
            "'+1202*' is listed by both 'a' and 'b'",
        ),
        ("agents:\n  default:\n    numbers: ['+12025550100']\n", "profile 'default' takes no numbers"),
        (
            "agents:\n  sales:\n    tools: [end_call, launch_rockets]\n",
            "field 'tools': unknown tool 'launch_rockets'",
        ),
        ("agents:\n  sales:\n    transfer_target: '+12025550199'\n", "field 'transfer_target': must be tel:"),
        (
            "agents:\n  sales:\n    greeting: ''\n",
            "field 'greeting': String should have at least 1 character",
        ),
        ("agents:\n  Sales Team: {}\n", "profile name 'Sales Team'"),
        ("agents:\n  a: {}\n  a: {voice: cedar}\n", "not valid YAML: line 3, column 3: duplicate key 'a'"),
        ("agents:\n  a: [\n", "not valid YAML: line 3"),
        ("- default\n", "must be a mapping with the key 'agents'"),
        ("agent:\n  default: {}\n", "key 'agent': Extra inputs are not permitted"),
        ("agents:\n  sales: 3\n", "profile 'sales': Input should be a valid dictionary"),
    ],
)
def test_an_invalid_file_is_refused_naming_the_profile_and_field(text: str, expected: str) -> None:
    assert expected in problem(text)


@pytest.mark.parametrize("text", ["", "# only comments\n", "agents:\n", "agents:\n  default:\n"])
def test_an_empty_file_means_the_settings(text: str) -> None:
    loaded = agents.resolve(parse(text, available_tools()), settings := Settings())
    assert list(loaded.profiles) == ["default"]
    assert loaded.default.settings is settings


def broken(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    use_file(env, tmp_path, "agents:\n  sales:\n    voice: robot\n")


def test_an_invalid_file_at_run_time_is_a_clear_500_before_any_upstream_call(
    fake: FakeOpenAI, launcher: RecordingLauncher, env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    broken(env, tmp_path)
    fake.register_call(CALL_ID)
    event = call_to("sip:+12025550100@sip.example.com")
    for handler, request in ((sip_app.handler, event), (rtc_app.handler, load_event("rtc"))):
        result = handler(request, FakeContext())
        assert result["statusCode"] == 500
        error = response_json(result)["error"]
        assert error.startswith("Server misconfigured: agents.yaml: profile 'sales', field 'voice': ")
        assert "Traceback" not in error
    assert token_app.handler(load_event("token"), FakeContext())["statusCode"] == 500
    assert fake.requests == []
    assert launcher.requests == []
    # The refused delivery left no state: fixed, OpenAI's redelivery is accepted.
    use_file(env, tmp_path, PROFILES)
    deps.install_local_launcher(launcher)
    assert sip_app.handler(event, FakeContext())["statusCode"] == 200
    assert len(fake.requests_to("/accept")) == 1


def test_an_invalid_file_keeps_the_observer_from_starting(
    fake: FakeOpenAI, env: pytest.MonkeyPatch, tmp_path: Path, logs: LogCapture
) -> None:
    broken(env, tmp_path)
    fake.register_call(CALL_ID)
    assert observe("sales")["outcome"] == "refused"
    assert fake.sidebands == []
    (refused,) = logs.messages("observer cannot start")
    assert "agents.yaml" in refused["reason"]


def test_a_missing_file_is_named(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env.setenv("AGENTS_FILE", str(tmp_path / "nope.yaml"))
    deps.reset()
    with pytest.raises(AgentsError, match=r"nope\.yaml: cannot be read \(No such file or directory\)"):
        deps.agents()


# ----------------------------------------------------------------------------- build and layer


def test_lint_checks_the_file_and_the_editor_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from scripts import check_agents

    assert check_agents.main([]) == 0  # the shipped file is valid and agents.schema.json is current
    bad = tmp_path / "agents.yaml"
    bad.write_text("agents:\n  sales:\n    tools: [nope]\n", encoding="utf-8")
    assert check_agents.main([str(bad)]) == 1
    assert "profile 'sales', field 'tools': unknown tool 'nope'" in capsys.readouterr().err
    assert "check_agents.py" in (ROOT / "Makefile").read_text()


def test_the_layer_ships_the_file_and_its_build_checks_it(tmp_path: Path) -> None:
    # The functions read the file next to shared/agents.py: /opt/python/shared/agents.yaml in the layer,
    # whose `shared` is the repo's shared/ (a symlink, copied whole by layer/Makefile).
    assert Path(agents.__file__).with_name("agents.yaml") == DEFAULT_FILE
    assert (ROOT / "layer" / "shared" / "agents.yaml").resolve() == DEFAULT_FILE.resolve()
    makefile = (ROOT / "layer" / "Makefile").read_text()
    build = makefile.split("build-SharedLayer:", 1)[1].split("\n\n", 1)[0]
    assert build.index('cp -RL shared "$(SITE)/shared"') < build.index(
        'check-agents CHECK_PATH="$$core:$(SITE)"'
    )
    assert 'AGENTS="$(SITE)/shared/agents.yaml"' in build

    def check(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - make with our own interpreter and paths
            [  # noqa: S607 - make from PATH, as a developer runs it
                "make",
                "-s",
                "-C",
                str(ROOT / "layer"),
                "check-agents",
                f"PYTHON={sys.executable}",
                f"CHECK_PATH={ROOT}",
                f"AGENTS={path}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )

    shipped = check(DEFAULT_FILE)
    assert shipped.returncode == 0, shipped.stderr
    assert "agents.yaml: ok (2 profiles: default, example-support)" in shipped.stdout
    bad = tmp_path / "agents.yaml"
    bad.write_text("agents:\n  default:\n    numbers: ['+12025550100']\n", encoding="utf-8")
    failed = check(bad)
    assert failed.returncode != 0
    assert "profile 'default' takes no numbers" in failed.stderr
