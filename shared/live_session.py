"""GPT-Live request bodies (`/v1/live/sessions`), built only on the server from a profile's settings.

The Live voice model has no tools of its own: a profile's tools go to the Responses model it
delegates to (`delegation: {type: "responses", responses: {model, instructions, tools}}`), whose
function calls the observer answers over the sideband. Every Live session here uses Responses
delegation, with or without tools: client delegation (`{type: "client"}`, also what an omitted
delegation means) would hand every delegated task to our sideband with no task text, and nothing
here answers those; a Responses backend without tools still answers from its backend prompt.

Left out on purpose: `audio.format` (SIP and WebRTC negotiate it), `store` unless asked (recordings
and forks need it; default false), and MCP servers: GPT-Live takes MCP only as a backend tool and
that is unverified server-side, so a Live session runs without them (logged once).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_serializer

from shared.log import logger
from shared.policy import DECLINE
from shared.settings import Settings, Voice
from shared.tools import Channel, Tool, call_tools

# The browser is untrusted and tools run on the server: its data channel may end the session and
# sees the conversation (transcripts, tool calls, errors), nothing else. The sideband is unaffected.
BROWSER_CLIENT_EVENTS: tuple[str, ...] = ("session.close",)
BROWSER_SERVER_EVENTS: tuple[tuple[str, str | None], ...] = (
    ("session.started", None),
    ("session.closed", None),
    ("session.input_transcript.delta", None),
    ("session.output_transcript.delta", None),
    ("session.delegation.created", None),
    ("response.event", "response.output_item.done"),
    ("error", None),
    ("info", None),
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class LiveAudioOutput(_Model):
    voice: Voice = "marin"


class LiveAudio(_Model):
    """Only the voice: the media format is negotiated by the transport (SIP, WebRTC)."""

    output: LiveAudioOutput = LiveAudioOutput()


class ResponsesBackend(_Model):
    """`delegation.responses`: the Responses model, its prompt and its function tools."""

    model: str = Field(min_length=1)
    instructions: str | None = None  # the backend prompt (business rules, tool workflows)
    tools: tuple[dict[str, Any], ...] | None = None  # shared/tools.py Tool.schema(), as for Realtime
    tool_choice: Literal["auto", "none", "required"] | None = None
    # One call at a time (the Live migration guide's advice to start with): simpler turns.
    parallel_tool_calls: bool | None = None


class ResponsesDelegation(_Model):
    type: Literal["responses"] = "responses"
    responses: ResponsesBackend


class ServerEventSelector(_Model):
    type: str = Field(min_length=1)
    response_event: str | None = None  # only with type "response.event"


class DataChannel(_Model):
    allowed_client_events: tuple[str, ...] | Literal["all"] = "all"
    allowed_server_events: tuple[ServerEventSelector, ...] | Literal["all"] = "all"


class ClientConfig(_Model):
    data_channel: DataChannel


class LiveSession(_Model):
    """What every Live transport takes at startup (all immutable once the session runs)."""

    model: str = Field(min_length=1)
    instructions: str | None = None  # the voice ("frontend") prompt; None: OpenAI's default
    audio: LiveAudio = LiveAudio()
    delegation: ResponsesDelegation | None = None
    store: bool | None = None


class SipAcceptSession(LiveSession):
    """The `session` of an accept: the only Live body that names its `type`."""

    type: Literal["live"] = "live"


class WebRtcSession(LiveSession):
    client: ClientConfig | None = None


class LiveAcceptBody(_Model):
    """`POST /live/sessions/{id}/accept`: the session is wrapped (Realtime's accept body *is* it)."""

    session: SipAcceptSession


class WebRtcTransport(_Model):
    type: Literal["webrtc"] = "webrtc"
    sdp: str = Field(min_length=1)


class LiveCreateBody(_Model):
    """`POST /live/sessions` for a browser: JSON, with the offer inside (no multipart, no `type`)."""

    session: WebRtcSession
    transport: WebRtcTransport


# E.164, as OpenAI takes `destination` and `caller_number` (no SIP URIs).
E164_PATTERN = r"^\+[1-9][0-9]{6,14}$"
# `sips:host[:port][;transport=tcp]`: TLS signalling only; no userinfo, path or other parameters.
PROVIDER_URL_PATTERN = r"^sips:(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?(;transport=tcp)?$"


class SipTrunkAuth(_Model):
    """Digest credentials OpenAI answers the trunk's 401/407 challenges with. The password is a
    SecretStr: no repr, log line or error message shows it; only the request body carries it."""

    type: Literal["digest"] = "digest"
    username: str = Field(min_length=1, max_length=256, pattern=r"^[^\r\n\x00]+$")
    password: SecretStr = Field(min_length=1, max_length=4096)

    @field_serializer("password", when_used="json")
    def _reveal(self, value: SecretStr) -> str:
        return value.get_secret_value()


class SipTrunk(_Model):
    provider_url: str = Field(pattern=PROVIDER_URL_PATTERN, max_length=300)
    auth: SipTrunkAuth
    caller_number: str = Field(pattern=E164_PATTERN)  # sent in the SIP From header


class SipTransport(_Model):
    type: Literal["sip"] = "sip"
    destination: str = Field(pattern=E164_PATTERN)
    trunk: SipTrunk


class LiveOutboundBody(_Model):
    """`POST /live/sessions` for an outbound phone call: the session (no `type`, no `client`) and the
    SIP transport (the SDK types only WebRTC here; live-api.md §5 gives the fields)."""

    session: LiveSession
    transport: SipTransport


class LiveRejectBody(_Model):
    status_code: int = Field(ge=300, le=699)  # required on Live (Realtime defaults to 603)


class LiveReferBody(_Model):
    target_uri: str = Field(min_length=1, pattern=r"\S")


def live_session(
    settings: Settings,
    channel: Channel | None = None,
    registry: dict[str, Tool] | None = None,
    *,
    store: bool | None = None,
) -> LiveSession:
    """The Live session of a call on `channel` ("sip" or "webrtc": the tools the observer runs there,
    as `make_session` chooses them; None: no tools), from a profile's settings. `store` defaults to the
    profile's `store: true` (else left out: OpenAI's default, false)."""
    tools: list[dict[str, Any]] = []
    if channel in ("sip", "webrtc"):
        tools = [tool.schema() for tool in call_tools(settings, channel, "live", registry).values()]
    if settings.mcp_servers and channel is not None:
        _mcp_left_out(len(settings.mcp_servers))
    backend = ResponsesBackend(
        model=settings.live_backend_model,
        instructions=settings.backend_instructions or None,
        tools=tuple(tools) if tools else None,
        tool_choice="auto" if tools else None,
        parallel_tool_calls=False if tools else None,
    )
    return LiveSession(
        model=settings.live_model,
        instructions=settings.instructions or None,
        audio=LiveAudio(output=LiveAudioOutput(voice=settings.realtime_voice)),
        delegation=ResponsesDelegation(responses=backend),
        store=store if store is not None else (settings.live_store or None),
    )


def accept_body(session: LiveSession) -> LiveAcceptBody:
    """The SIP accept body of `session`."""
    return LiveAcceptBody(session=SipAcceptSession(**dict(session)))


def webrtc_create_body(
    session: LiveSession, offer_sdp: str, *, data_channel: DataChannel | None = None
) -> LiveCreateBody:
    """The WebRTC create body: `session` with the browser's offer; `data_channel` defaults to the
    browser's restricted permissions (`browser_data_channel()`)."""
    channel = browser_data_channel() if data_channel is None else data_channel
    webrtc = WebRtcSession(**dict(session), client=ClientConfig(data_channel=channel))
    return LiveCreateBody(session=webrtc, transport=WebRtcTransport(sdp=offer_sdp))


def outbound_create_body(session: LiveSession, destination: str, trunk: SipTrunk) -> LiveOutboundBody:
    """The create body that dials `destination` through `trunk`. Each create places a new call."""
    return LiveOutboundBody(session=session, transport=SipTransport(destination=destination, trunk=trunk))


def browser_data_channel(
    client_events: Iterable[str] = BROWSER_CLIENT_EVENTS,
    server_events: Sequence[tuple[str, str | None]] = BROWSER_SERVER_EVENTS,
) -> DataChannel:
    return DataChannel(
        allowed_client_events=tuple(client_events),
        allowed_server_events=tuple(
            ServerEventSelector(type=kind, response_event=inner) for kind, inner in server_events
        ),
    )


def reject_body(status_code: int = DECLINE) -> LiveRejectBody:
    """Live requires the SIP status (Realtime defaults to 603): shared/policy.py's BUSY (486) for our
    caps and limits, DECLINE (603) for a caller the policy refuses."""
    return LiveRejectBody(status_code=status_code)


def refer_body(target_uri: str) -> LiveReferBody:
    return LiveReferBody(target_uri=target_uri)


@lru_cache(maxsize=1)
def _mcp_left_out(count: int) -> None:
    logger.warning(
        "MCP_SERVERS are left out of GPT-Live sessions (Live takes MCP only as an unverified backend tool)",
        extra={"mcp_servers": count},
    )
