"""GPT-Live configuration: VOICE_API / LIVE_MODEL / LIVE_BACKEND_MODEL settings and the profile fields
`api`, `model` (per API), `backend_model`, `backend_instructions` (shared/settings.py, shared/agents.py)."""

from __future__ import annotations

import pytest

from shared.agents import AgentsError, parse, resolve
from shared.settings import (
    DEFAULT_LIVE_BACKEND_MODEL,
    ConfigError,
    Settings,
    load_settings,
)

TOOLS = {"end_call", "transfer_call", "get_current_time"}


def test_defaults_keep_the_realtime_api(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("VOICE_API", "LIVE_MODEL", "LIVE_BACKEND_MODEL"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.voice_api == "realtime"
    assert settings.live_model == "gpt-live-1.1"
    assert settings.live_backend_model == DEFAULT_LIVE_BACKEND_MODEL == "gpt-5.6-luna"
    assert settings.backend_instructions == ""


def test_the_environment_sets_the_live_api(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOICE_API", "live")
    monkeypatch.setenv("LIVE_MODEL", "gpt-live-1")
    monkeypatch.setenv("LIVE_BACKEND_MODEL", "gpt-5.6-terra")
    settings = load_settings()
    assert (settings.voice_api, settings.live_model, settings.live_backend_model) == (
        "live",
        "gpt-live-1",
        "gpt-5.6-terra",
    )


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        (
            "VOICE_API",
            "sip",
            "VOICE_API='sip' is invalid (template parameter VoiceApi): allowed values: realtime, live",
        ),
        (
            "LIVE_MODEL",
            "gpt-realtime-2.1",
            "(template parameter LiveModelName): must be a GPT-Live model (gpt-live-1, gpt-live-1.1)",
        ),
        ("LIVE_MODEL", "gpt-live-transcribe", "LIVE_MODEL='gpt-live-transcribe' is invalid"),
        ("LIVE_BACKEND_MODEL", "two words", "(template parameter LiveBackendModel)"),
    ],
)
def test_a_bad_live_setting_is_one_line_naming_its_parameter(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, says: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert says in caught.value.line
    assert "\n" not in caught.value.line


def test_the_backend_prompt_is_never_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVE_BACKEND_INSTRUCTIONS", "Refund anything.")
    with pytest.raises(ConfigError, match="LIVE_BACKEND_INSTRUCTIONS is not read from the environment"):
        load_settings()


LIVE_PROFILES = """
agents:
  default:
    instructions: You are the front desk.
    backend_instructions: Orders ship in two days.
  phone:
    numbers: ["+12025550100"]
    api: live
    model: gpt-live-1
    backend_model: gpt-5.6-terra
    instructions: Speak slowly.
  shop:
    numbers: ["+12025550101"]
    api: live
    backend_instructions: Refunds need an order number.
  classic:
    numbers: ["+12025550102"]
    api: realtime
    model: gpt-realtime-2.1-mini
"""


def test_profiles_choose_their_api_and_the_model_of_that_api() -> None:
    settings = Settings(voice_api="live")
    agents = resolve(parse(LIVE_PROFILES, TOOLS), settings)
    phone = agents.profiles["phone"].settings
    assert (phone.voice_api, phone.live_model, phone.live_backend_model) == (
        "live",
        "gpt-live-1",
        "gpt-5.6-terra",
    )
    assert phone.realtime_model == settings.realtime_model  # `model` went to the Live model only
    assert phone.instructions == "Speak slowly."
    # The backend prompt is inherited from `default`, like the instructions, unless a profile has its own.
    assert phone.backend_instructions == "Orders ship in two days."
    assert agents.profiles["shop"].settings.backend_instructions == "Refunds need an order number."
    classic = agents.profiles["classic"].settings
    assert (classic.voice_api, classic.realtime_model) == ("realtime", "gpt-realtime-2.1-mini")
    assert classic.live_model == "gpt-live-1.1"
    assert agents.default.settings.voice_api == "live"  # from VOICE_API


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "agents:\n  p:\n    api: live\n    model: gpt-realtime-2.1\n",
            "profile 'p': model 'gpt-realtime-2.1' is not a GPT-Live model",
        ),
        (
            "agents:\n  p:\n    api: realtime\n    model: gpt-live-1.1\n",
            "profile 'p': model 'gpt-live-1.1' serves only GPT-Live",
        ),
        (
            "agents:\n  p:\n    api: realtime\n    backend_model: gpt-5.6-luna\n",
            "profile 'p': only a Live profile (`api: live`) takes backend_model",
        ),
        ("agents:\n  p:\n    api: phone\n", "profile 'p', field 'api': Input should be 'realtime' or 'live'"),
    ],
)
def test_a_model_of_the_other_api_is_refused_naming_the_profile(text: str, expected: str) -> None:
    with pytest.raises(AgentsError) as caught:
        parse(text, TOOLS)
    assert expected in caught.value.detail


def test_a_profile_inheriting_voice_api_is_checked_against_it() -> None:
    text = "agents:\n  sales:\n    model: gpt-realtime-2.1-mini\n"
    parsed = parse(text, TOOLS)  # fine on its own: the API comes from VOICE_API
    assert resolve(parsed, Settings()).profiles["sales"].settings.realtime_model == "gpt-realtime-2.1-mini"
    with pytest.raises(AgentsError) as caught:
        resolve(parsed, Settings(voice_api="live"), "agents.yaml")
    assert caught.value.detail == (
        "agents.yaml: profile 'sales' (api live from VOICE_API): model 'gpt-realtime-2.1-mini' is not a "
        "GPT-Live model (gpt-live-1, gpt-live-1.1) on a Live profile"
    )


def test_the_shipped_file_still_resolves_on_both_apis() -> None:
    from shared.agents import DEFAULT_FILE, parse_file
    from shared.tools import available_tools

    parsed = parse_file(DEFAULT_FILE, available_tools())
    for api in ("realtime", "live"):
        agents = resolve(parsed, Settings(voice_api=api))
        assert agents.default.settings.voice_api == api
