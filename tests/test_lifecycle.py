"""The model lifecycle guard: OpenAI's announced shutdown dates, checked at start and by `make lint`."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from scripts import check_agents
from shared import agents, lifecycle, startup
from shared.settings import TEMPLATE_PARAMETERS, ConfigError, Settings, get_settings
from shared.tools import available_tools

SHUTDOWN = date(2027, 1, 20)


def test_a_model_past_its_date_is_an_error_naming_the_parameter_and_the_replacement() -> None:
    found = lifecycle.notice("gpt-realtime", "REALTIME_MODEL (template parameter ModelName)", SHUTDOWN)
    assert found == lifecycle.Notice(
        "REALTIME_MODEL (template parameter ModelName): OpenAI shut gpt-realtime down on 2027-01-20; "
        "use gpt-realtime-2.1",
        retired=True,
    )


@pytest.mark.parametrize(
    ("today", "retired"),
    [(date(2026, 11, 20), None), (date(2026, 11, 21), False), (date(2027, 1, 19), False), (SHUTDOWN, True)],
)
def test_within_sixty_days_it_is_a_warning(today: date, retired: bool | None) -> None:
    found = lifecycle.notice("gpt-realtime-mini", "X", today)
    assert (found.retired if found else None) is retired
    if found is not None and not found.retired:
        assert f"(in {(SHUTDOWN - today).days} days); use gpt-realtime-2.1-mini" in found.line


def test_current_models_have_no_notice() -> None:
    for model in ("gpt-realtime-2.1", "gpt-realtime-2.1-mini", "gpt-live-transcribe", "gpt-transcribe"):
        assert lifecycle.notice(model, "X", date(2030, 1, 1)) is None


def test_transcription_models_retire_on_their_own_date() -> None:
    assert lifecycle.notice("whisper-1", "X", date(2027, 2, 25)).retired is False  # type: ignore[union-attr]
    notice = lifecycle.notice("whisper-1", "X", date(2027, 2, 26))
    assert notice is not None
    assert notice.retired
    assert notice.line.endswith("use gpt-live-transcribe")


def test_start_refuses_a_retired_model_and_warns_of_a_near_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REALTIME_MODEL", "gpt-realtime")
    monkeypatch.setenv("TRANSCRIPTION_MODEL", "gpt-4o-transcribe")
    get_settings.cache_clear()
    realtime = "REALTIME_MODEL (template parameter ModelName): OpenAI shuts gpt-realtime down on 2027-01-20"
    transcription = (
        "TRANSCRIPTION_MODEL (template parameter TranscriptionModel): "
        "OpenAI shuts gpt-4o-transcribe down on 2027-02-26"
    )
    # gpt-4o-transcribe is 82 days away on 2026-12-06: no warning yet.
    assert startup.check_configuration(today=date(2026, 12, 6)) == [
        f"{realtime} (in 45 days); use gpt-realtime-2.1"
    ]
    assert startup.check_configuration(today=date(2027, 1, 1)) == [
        f"{realtime} (in 19 days); use gpt-realtime-2.1",
        f"{transcription} (in 56 days); use gpt-live-transcribe",
    ]
    with pytest.raises(
        ConfigError, match=r"^Server misconfigured: REALTIME_MODEL .*; use gpt-realtime-2\.1$"
    ):
        startup.check_configuration(today=SHUTDOWN)
    with pytest.raises(SystemExit, match=r"^configuration error: REALTIME_MODEL"):
        startup.check_at_start(today=SHUTDOWN)
    monkeypatch.setenv("REALTIME_MODEL", "gpt-realtime-2.1")
    monkeypatch.setenv("TRANSCRIPTION_MODEL", "off")  # off names no model: nothing to check
    get_settings.cache_clear()
    assert startup.check_configuration(today=date(2030, 1, 1)) == []


def test_profiles_are_checked_too(tmp_path: Path) -> None:
    text = (
        "agents:\n  default: {}\n  old:\n    numbers: ['+12025550150']\n    model: gpt-realtime-mini\n"
        "    transcription: whisper-1\n"
    )
    parsed = agents.parse(text, available_tools())
    assert [n.line for n in agents.model_notices(parsed, "agents.yaml", date(2027, 2, 1))] == [
        "agents.yaml: profile 'old', field 'model': OpenAI shut gpt-realtime-mini down on 2027-01-20; "
        "use gpt-realtime-2.1-mini",
        "agents.yaml: profile 'old', field 'transcription': OpenAI shuts whisper-1 down on 2027-02-26 "
        "(in 25 days); use gpt-live-transcribe",
    ]
    # Today (whatever the date) a file naming a model past its date fails the lint and the layer build.
    retired = tmp_path / "agents.yaml"
    retired.write_text(text.replace("gpt-realtime-mini", "gpt-realtime").replace("whisper-1", "off"))
    expect = 1 if lifecycle.RETIREMENTS["gpt-realtime"].shutdown <= date.today() else 0
    assert agents.main([str(retired)]) == expect


def test_the_template_defaults_and_the_shipped_profiles_name_no_retiring_model() -> None:
    # Not even a warning: a fresh deploy must not start on a model with a shutdown date announced.
    assert check_agents.template_model_notices() == []
    assert (
        agents.model_notices(agents.parse_file(agents.DEFAULT_FILE, available_tools()), "agents.yaml") == []
    )
    settings = Settings()
    assert lifecycle.notice(settings.realtime_model, "x", date(2000, 1, 1)) is None
    assert settings.realtime_model not in lifecycle.RETIREMENTS
    assert settings.transcription_model not in lifecycle.RETIREMENTS


def test_make_lint_fails_on_a_retired_template_default(tmp_path: Path) -> None:
    template = Path(check_agents.TEMPLATE_FILE).read_text()
    stale = tmp_path / "template.yaml"
    stale.write_text(template.replace("Default: gpt-realtime-2.1\n", "Default: gpt-realtime\n", 1))
    notices = check_agents.template_model_notices(stale)
    assert [n.line.split(":")[0] for n in notices] == ["template.yaml"]
    assert "parameter ModelName default" in notices[0].line
    assert TEMPLATE_PARAMETERS["REALTIME_MODEL"] == "ModelName"
