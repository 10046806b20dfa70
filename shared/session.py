"""The realtime session config sent with every call, built only on the server from settings."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.settings import DEFAULT_REALTIME_MODEL, McpServer, Settings, Voice
from shared.tools import Channel, Tool, call_tools


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoiseReduction(_Model):
    type: Literal["near_field", "far_field"] = "near_field"


class Transcription(_Model):
    """The caller's words as text (`conversation.item.input_audio_transcription.*`); off when absent."""

    model: str = Field(min_length=1)


class AudioInput(_Model):
    noise_reduction: NoiseReduction | None = NoiseReduction()
    transcription: Transcription | None = None


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
    model: str = Field(default=DEFAULT_REALTIME_MODEL, min_length=1)
    instructions: str | None = None  # None: OpenAI's own default instructions
    audio: AudioConfig = AudioConfig()
    # Function tools (run by the observer) and remote MCP servers (run by OpenAI): shared/tools.py.
    tools: tuple[dict[str, Any], ...] | None = None
    tool_choice: Literal["auto", "none", "required"] | None = None

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


def make_session(
    settings: Settings, channel: Channel | None = None, registry: dict[str, Tool] | None = None
) -> SessionConfig:
    """The session config of a call on `channel`, from settings (template parameters in AWS).

    - "sip" (the accept body): the function tools of `TOOLS` (transfer_call only with a
      `TRANSFER_TARGET`) and the MCP servers with their headers;
    - "webrtc" (/rtc, the server posts the offer; the observer runs the tools): the same without
      transfer_call, since there is no phone line to refer;
    - "browser" (/token, a browser connects with an ephemeral key and no observer runs): no function
      tools (nobody would answer them) and only MCP servers that need no headers, so no MCP
      credential ever reaches a browser.
    - None: the bare session (model, voice, instructions), without tools.
    `registry`: the tools `TOOLS` may name (default: shared/tools.py `available_tools()`).
    """
    tools: list[dict[str, Any]] = []
    if channel in ("sip", "webrtc"):
        tools += [tool.schema() for tool in call_tools(settings, channel, "realtime", registry).values()]
    if channel is not None:
        tools += [
            mcp_tool(server, with_headers=channel != "browser")
            for server in settings.mcp_servers
            if channel != "browser" or not server.headers
        ]
    return SessionConfig(
        model=settings.realtime_model,
        instructions=settings.instructions or None,
        audio=AudioConfig(
            input=AudioInput(
                transcription=Transcription(model=settings.transcription_model)
                if settings.transcription_model
                else None
            ),
            output=AudioOutput(voice=settings.realtime_voice),
        ),
        tools=tuple(tools) if tools else None,
        tool_choice="auto" if tools else None,
    )


def mcp_tool(server: McpServer, *, with_headers: bool) -> dict[str, Any]:
    """A remote MCP server as a session tool; OpenAI calls it, so approval is never asked for."""
    entry: dict[str, Any] = {
        "type": "mcp",
        "server_label": server.server_label,
        "server_url": server.server_url,
        "require_approval": "never",
    }
    if server.allowed_tools is not None:
        entry["allowed_tools"] = list(server.allowed_tools)
    if with_headers and server.headers:
        entry["headers"] = {name: value.get_secret_value() for name, value in server.headers.items()}
    return entry


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
