"""The configuration check every function runs once at start (Lambda init, `make dev`).

An invalid setting, or a model past OpenAI's shutdown date, stops the start with one line naming the
variable, its template parameter and what to set instead: never a traceback, and never a function that
starts only to fail every request. A model close to its shutdown date is one warning line.
"""

from __future__ import annotations

from datetime import date

from shared import lifecycle
from shared.settings import TEMPLATE_PARAMETERS, ConfigError, Settings, get_settings


def model_notices(settings: Settings, today: date | None = None) -> list[lifecycle.Notice]:
    """What the lifecycle guard says of the models the settings name."""
    found = []
    for variable, model in (
        ("REALTIME_MODEL", settings.realtime_model),
        ("TRANSCRIPTION_MODEL", settings.transcription_model),
    ):
        where = f"{variable} (template parameter {TEMPLATE_PARAMETERS[variable]})"
        found.append(lifecycle.notice(model, where, today) if model else None)
    return [notice for notice in found if notice is not None]


def check_configuration(today: date | None = None) -> list[str]:
    """The warning lines; raises ConfigError (one line) for an invalid setting or a retired model."""
    settings = get_settings()
    notices = model_notices(settings, today)
    retired = next((notice for notice in notices if notice.retired), None)
    if retired is not None:
        raise ConfigError(retired.line)
    return [notice.line for notice in notices]


_checked: list[bool] = []  # once per process: the observer's two entry points share one container


def check_at_start(today: date | None = None) -> None:
    """Exit with one line on stderr when the configuration cannot work; log each warning once."""
    if _checked and today is None:
        return
    try:
        warnings = check_configuration(today)
    except ConfigError as exc:
        raise SystemExit(f"configuration error: {exc.line}") from None
    _checked.append(True)
    if warnings:
        from shared.log import logger

        for line in warnings:
            logger.warning(line)
