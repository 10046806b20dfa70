from __future__ import annotations

import pytest

from shared import deps, settings
from shared.settings import DEFAULT_BASE_URL, Settings
from tests.samples import DEFAULT_INSTRUCTIONS


def test_defaults_match_the_original_app(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_BASE_URL", "REALTIME_MODEL", "REALTIME_VOICE", "REALTIME_INSTRUCTIONS"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.api_base == DEFAULT_BASE_URL == "https://api.openai.com/v1"
    assert settings.sideband_base == "wss://api.openai.com/v1"
    assert settings.realtime_model == "gpt-realtime-2.1"  # gpt-realtime shuts down on 2027-01-20
    assert settings.realtime_voice == "marin"
    assert settings.transcription_model == "gpt-live-transcribe"
    # The app's instructions live in one place: the default profile of shared/agents.yaml.
    assert settings.instructions == ""
    deps.reset()
    assert deps.agents().default.settings.instructions == DEFAULT_INSTRUCTIONS
    assert DEFAULT_INSTRUCTIONS.startswith("Greet the user in English")


@pytest.mark.parametrize(
    ("base", "api", "sideband"),
    [
        ("http://127.0.0.1:9100/v1/", "http://127.0.0.1:9100/v1", "ws://127.0.0.1:9100/v1"),
        (
            "https://proxy.internal/openai/v1",
            "https://proxy.internal/openai/v1",
            "wss://proxy.internal/openai/v1",
        ),
    ],
)
def test_sideband_url_follows_the_base_url(base: str, api: str, sideband: str) -> None:
    settings = Settings(openai_base_url=base)
    assert settings.api_base == api
    assert settings.sideband_base == sideband


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REALTIME_MODEL", "gpt-realtime-mini")
    monkeypatch.setenv("REALTIME_VOICE", "cedar")
    monkeypatch.setenv("REALTIME_INSTRUCTIONS", "  Be brief.  ")
    monkeypatch.setenv("OBSERVER_LAUNCH", "off")
    settings = Settings()
    assert (settings.realtime_model, settings.realtime_voice) == ("gpt-realtime-mini", "cedar")
    assert settings.instructions == "Be brief."
    assert settings.observer_launch == "off"


def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OBSERVER_LAUNCH", "sometimes")
    with pytest.raises(ValueError, match="observer_launch"):
        Settings()


def test_keywords_win_over_the_environment_and_numbers_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REALTIME_VOICE", "cedar")
    monkeypatch.setenv("secrets_cache_seconds", "120")  # any case, as on Lambda's console
    settings = Settings(realtime_voice="marin")
    assert (settings.realtime_voice, settings.secrets_cache_seconds) == ("marin", 120)
    monkeypatch.setenv("secrets_cache_seconds", "99999")
    with pytest.raises(ValueError, match="secrets_cache_seconds"):
        Settings()


def test_error_lines_name_the_template_parameter_that_sets_each_variable() -> None:
    from local_api.routes import load_template

    template = load_template()
    parameters = set(template["Parameters"])
    environment = dict(template["Globals"]["Function"]["Environment"]["Variables"])
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            environment.update(resource["Properties"].get("Environment", {}).get("Variables", {}))
    set_by = {}
    for variable, value in environment.items():
        names = [value] if isinstance(value, str) else [v for v in value if isinstance(v, str)]
        found = [name for name in names if name in parameters]
        if found and variable.lower() in Settings.model_fields:
            set_by[variable] = found[0]
    # Every variable the settings read from a parameter is in the table, with that parameter.
    assert set_by == settings.TEMPLATE_PARAMETERS


def test_a_bad_setting_met_at_request_time_is_a_500_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import rtc_app
    from tests.conftest import FakeContext, load_event, response_json

    monkeypatch.setenv("REALTIME_VOICE", "robot")
    deps.reset()
    result = rtc_app.handler(load_event("rtc"), FakeContext())
    assert result["statusCode"] == 500
    assert response_json(result)["error"].startswith(
        "Server misconfigured: REALTIME_VOICE='robot' is invalid (template parameter Voice): allowed values: "
    )


def test_my_tools_imports_nothing_of_the_project() -> None:
    # The user's file stands alone: no import circle with shared/tools.py, nothing internal to learn.
    import ast
    from pathlib import Path

    tree = ast.parse((Path(__file__).parent.parent / "shared" / "my_tools.py").read_text())
    imported = {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)} | {
        alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    assert not {name for name in imported if name.split(".")[0] == "shared"}
