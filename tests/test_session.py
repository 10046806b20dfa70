from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.session import SessionConfig, make_session
from shared.settings import Settings
from tests.samples import DEFAULT_INSTRUCTIONS


def test_default_session_is_the_original_shape() -> None:
    session = make_session(Settings(realtime_instructions=DEFAULT_INSTRUCTIONS))
    assert session.to_json() == {
        "type": "realtime",
        "model": "gpt-realtime-2.1",
        "instructions": DEFAULT_INSTRUCTIONS,
        "audio": {
            "input": {
                "noise_reduction": {"type": "near_field"},
                "transcription": {"model": "gpt-live-transcribe"},
            },
            "output": {"voice": "marin"},
        },
    }


def test_settings_change_model_voice_and_instructions() -> None:
    settings = Settings(
        realtime_model="gpt-realtime-mini", realtime_voice="cedar", realtime_instructions="Hi"
    )
    body = make_session(settings).to_json()
    assert body["model"] == "gpt-realtime-mini"
    assert body["audio"]["output"] == {"voice": "cedar"}
    assert body["instructions"] == "Hi"
    assert "format" not in body["audio"]["input"]  # SIP negotiates the format itself


def test_unknown_voice_is_refused() -> None:
    with pytest.raises(ValidationError):
        Settings(realtime_voice="robot")  # type: ignore[arg-type]


def test_session_type_is_always_realtime() -> None:
    with pytest.raises(ValidationError):
        SessionConfig(type="transcription", instructions="x")  # type: ignore[arg-type]
