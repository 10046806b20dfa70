"""The realtime session config sent with every call, built only on the server from settings."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.settings import Settings

Voice = Literal["alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoiseReduction(_Model):
    type: Literal["near_field", "far_field"] = "near_field"


class AudioInput(_Model):
    noise_reduction: NoiseReduction | None = NoiseReduction()


class AudioOutput(_Model):
    voice: Voice = "marin"
    speed: float | None = Field(default=None, ge=0.25, le=1.5)


class AudioConfig(_Model):
    input: AudioInput = AudioInput()
    output: AudioOutput = AudioOutput()


class SessionConfig(_Model):
    """GA session config: the `session` part of /realtime/calls and client_secrets, and the accept body.

    `audio.format` is deliberately absent: SIP negotiates it, and WebRTC does not need it.
    """

    type: Literal["realtime"] = "realtime"
    model: str = Field(default="gpt-realtime", min_length=1)
    instructions: str
    audio: AudioConfig = AudioConfig()

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


def make_session(settings: Settings) -> SessionConfig:
    """The session config for every call, from settings (template parameters in AWS)."""
    return SessionConfig(
        model=settings.realtime_model,
        instructions=settings.instructions,
        audio=AudioConfig(output=AudioOutput(voice=settings.realtime_voice)),  # type: ignore[arg-type]
    )


def check_sip_session(payload: dict[str, Any]) -> dict[str, Any]:
    """Refuse, before any upstream call, a SIP accept body that OpenAI would take but the call would not
    survive: without `"type": "realtime"` the accept answers 200 and the call then fails, and
    `audio.format` must be left to SIP's own negotiation."""
    from shared.errors import ServiceError

    if payload.get("type") != "realtime":
        raise ServiceError('Server misconfigured: the session lacks "type": "realtime"')
    audio = payload.get("audio")
    if isinstance(audio, dict) and any(
        isinstance(audio.get(side), dict) and "format" in audio[side] for side in ("input", "output")
    ):
        raise ServiceError("Server misconfigured: a SIP session must not set audio.format")
    return payload
