"""OpenAI's announced shutdown dates for the models this stack can name, checked at start.

A model past its date is a configuration error (every call with it would fail); within
`WARNING_DAYS` of it, a warning line. The dates and replacements are the ones OpenAI announced
(the `openai` SDK 3.63.0 docstrings, `openai/resources/realtime/calls.py` and
`openai/types/realtime/audio_transcription.py`; developers.openai.com/api/docs/deprecations).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

WARNING_DAYS = 60


@dataclass(frozen=True)
class Retirement:
    shutdown: date
    replacement: str


_REALTIME = Retirement(date(2027, 1, 20), "gpt-realtime-2.1")
_REALTIME_MINI = Retirement(date(2027, 1, 20), "gpt-realtime-2.1-mini")
_TRANSCRIBE = Retirement(date(2027, 2, 26), "gpt-live-transcribe")

RETIREMENTS: dict[str, Retirement] = {
    "gpt-realtime": _REALTIME,
    "gpt-realtime-2025-08-28": _REALTIME,
    "gpt-realtime-mini": _REALTIME_MINI,
    "gpt-realtime-mini-2025-12-15": _REALTIME_MINI,
    "gpt-audio-mini": _REALTIME_MINI,
    "gpt-audio-mini-2025-12-15": _REALTIME_MINI,
    "whisper-1": _TRANSCRIBE,
    "gpt-4o-transcribe": _TRANSCRIBE,
    "gpt-4o-transcribe-diarize": _TRANSCRIBE,
    "gpt-4o-mini-transcribe": _TRANSCRIBE,
    "gpt-4o-mini-transcribe-2025-12-15": _TRANSCRIBE,
}


@dataclass(frozen=True)
class Notice:
    """What the guard says of one model setting: `retired` is an error, else a warning."""

    line: str
    retired: bool


def notice(model: str, where: str, today: date | None = None) -> Notice | None:
    """A notice for `model` set at `where` (`REALTIME_MODEL (template parameter ModelName)`, or
    `agents.yaml: profile 'x', field 'model'`); None when no shutdown is near."""
    retirement = RETIREMENTS.get(model.strip())
    if retirement is None:
        return None
    today = today or datetime.now(UTC).date()
    days = (retirement.shutdown - today).days
    if days <= 0:
        line = f"{where}: OpenAI shut {model} down on {retirement.shutdown}; use {retirement.replacement}"
        return Notice(line, retired=True)
    if days <= WARNING_DAYS:
        line = (
            f"{where}: OpenAI shuts {model} down on {retirement.shutdown} (in {days} days); "
            f"use {retirement.replacement}"
        )
        return Notice(line, retired=False)
    return None
