from __future__ import annotations

import pytest

from shared.settings import DEFAULT_BASE_URL, DEFAULT_INSTRUCTIONS, Settings


def test_defaults_match_the_original_app(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_BASE_URL", "REALTIME_MODEL", "REALTIME_VOICE", "REALTIME_INSTRUCTIONS"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.api_base == DEFAULT_BASE_URL == "https://api.openai.com/v1"
    assert settings.sideband_base == "wss://api.openai.com/v1"
    assert settings.realtime_model == "gpt-realtime"
    assert settings.realtime_voice == "marin"
    assert settings.instructions == DEFAULT_INSTRUCTIONS
    assert settings.instructions.startswith("Greet the user in English")


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
