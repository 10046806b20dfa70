"""What the observer sees of a call, whichever API carries it: its own typed events, and the small
interface each API's adapter implements (shared/voice_api/realtime.py, live.py)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

from shared.settings import VoiceApi
from shared.upstream import ControlAction

Speaker = Literal["caller", "agent"]
PlaybackState = Literal["started", "stopped", "cleared", "progress"]
ProgressState = Literal["ringing", "answered", "failed"]


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """The session is up (Realtime `session.created|updated`, Live `session.started`)."""

    model: str
    expires_at: int | None = None  # Live: unix s when the session expires


@dataclass(frozen=True, slots=True)
class ToolCall:
    """The model asks for a function tool. Realtime repeats a call in up to three events: run each
    `call_id` once. `response_id` groups the calls answered together before one continue."""

    call_id: str
    name: str
    arguments: str  # JSON text, unvalidated
    response_id: str
    delegation_id: str | None = None  # Live: the outer delegation the backend response serves


@dataclass(frozen=True, slots=True)
class ResponseStarted:
    response_id: str


@dataclass(frozen=True, slots=True)
class ResponseDone:
    """A model response ended (Realtime `response.done`; Live: the backend response's completion)."""

    response_id: str
    status: str  # completed, cancelled, failed, incomplete


@dataclass(frozen=True, slots=True)
class Transcript:
    """Words of either side. Realtime gives whole turns (`final`); Live gives only fragments in
    order (never final): join them, and tell turns apart by speaker changes and pauses."""

    speaker: Speaker
    text: str
    final: bool
    # Live: session ms of the words (approximate); not part of equality, tests compare the words.
    start_ms: int | None = field(default=None, compare=False)
    end_ms: int | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """Tokens by kind of one response: Realtime's voice model (per `response.done`, shared/records.py
    kinds) or, with `backend`, a Live session's Responses backend (add them up)."""

    counts: Mapping[str, int]
    backend: bool = False


@dataclass(frozen=True, slots=True)
class SessionUsage:
    """Live billing time, cumulative (the latest replaces the earlier; never add them up); `final`
    from `session.closed`."""

    seconds: float
    active_seconds: int | None = None
    paused_seconds: int | None = None
    final: bool = False


@dataclass(frozen=True, slots=True)
class Keypad:
    digit: str  # 0-9, *, #, A-D


@dataclass(frozen=True, slots=True)
class CallProgress:
    """An outbound SIP call's line (Live `transport.ringing|answered|failed`); `code` for a failure
    (e.g. busy, no_answer)."""

    state: ProgressState
    code: str | None = None


@dataclass(frozen=True, slots=True)
class Playback:
    """Agent audio on the line. Realtime: `started` / `stopped` / `cleared` per response; Live has no
    playback events, only `progress` while its reflected output audio flows."""

    state: PlaybackState
    response_id: str = ""


@dataclass(frozen=True, slots=True)
class ApiError:
    """An `error` event: mostly recoverable, the session goes on."""

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Closed:
    """The session ended (Live `session.closed`). On Realtime the socket closing is the only sign:
    the reader makes this event itself then."""

    reason: str


ObserverEvent = (
    SessionInfo
    | ToolCall
    | ResponseStarted
    | ResponseDone
    | Transcript
    | TokenUsage
    | SessionUsage
    | Keypad
    | CallProgress
    | Playback
    | ApiError
    | Closed
)
ClientEvent = dict[str, Any]
NO_EVENTS: tuple[ObserverEvent, ...] = ()


def json_event(message: str | bytes) -> dict[str, Any] | None:
    """A sideband frame as an event: a JSON object with a string `type`, else None."""
    try:
        event = json.loads(message)
    except ValueError:
        return None
    return event if isinstance(event, dict) and isinstance(event.get("type"), str) else None


def as_dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_text(value: object) -> str:
    return value if isinstance(value, str) else ""


class EventParser(Protocol):
    """One call's server events -> observer events. Holds the little state an API needs (Live: which
    backend response each delegation is on), so use one per call."""

    def parse(self, message: str | bytes) -> tuple[ObserverEvent, ...]:
        """The observer events in one WebSocket message (none for what the observer does not use,
        and for a frame that is not a JSON event)."""
        ...

    def quick(self, message: str | bytes) -> tuple[ObserverEvent, ...] | None:
        """The events of a frame read without a JSON parse (deltas, reflected audio), else None: then
        parse it (`json_event`) and hand the event to `on_event`. `parse` is these two steps."""
        ...

    def on_event(self, event: dict[str, Any]) -> tuple[ObserverEvent, ...]:
        """The observer events of one parsed server event (`json_event`: `type` is a str)."""
        ...


class VoiceApiAdapter(Protocol):
    """How the observer talks to one API: where to attach, how to control the call, what its events
    mean, and how to say things back."""

    name: VoiceApi
    can_send_keypad: bool

    def call_id_ok(self, call_id: str) -> bool: ...

    def sideband_url(self, sideband_base: str, call_id: str) -> str: ...

    def control_path(self, call_id: str, action: ControlAction) -> str:
        """The HTTP path (under OPENAI_BASE_URL) of accept, reject, refer or hangup."""
        ...

    def parser(self) -> EventParser: ...

    def greeting(self, text: str = "") -> list[ClientEvent]:
        """Make the model speak first; `text`: what to open with (a profile's greeting)."""
        ...

    def instruct(self, text: str) -> list[ClientEvent]:
        """Make the model say something now (a filler line, a goodbye)."""
        ...

    def tool_output(self, call_id: str, output: str) -> ClientEvent: ...

    def continue_after_tools(self) -> ClientEvent:
        """Sent once after every output of a response: outputs alone do not continue."""
        ...

    def tool_outputs(self, outputs: Sequence[tuple[str, str]]) -> list[ClientEvent]:
        """(call_id, output) pairs -> every output, then one continue."""
        ...

    def keypad(self, digit: str) -> ClientEvent:
        """Send a keypad tone (SIP); ValueError on an API without it (`can_send_keypad`)."""
        ...

    def close(self) -> ClientEvent | None:
        """End the session over the sideband (Live `session.close`); None where only hangup does."""
        ...


class AdapterBase:
    """What the adapters share: call ids of one shape, a sideband path, outputs then one continue."""

    id_pattern: ClassVar[re.Pattern[str]]
    id_kind: ClassVar[str]  # for errors: "call id", "Live session id"
    sideband_path: ClassVar[str]  # under the sideband base, with `{id}`

    def call_id_ok(self, call_id: str) -> bool:
        return bool(self.id_pattern.match(call_id))

    def sideband_url(self, sideband_base: str, call_id: str) -> str:
        if not self.call_id_ok(call_id):
            raise ValueError(f"not a {self.id_kind}: {call_id[:40]!r}")
        return sideband_base.rstrip("/") + self.sideband_path.format(id=call_id)

    def tool_output(self, call_id: str, output: str) -> ClientEvent:
        raise NotImplementedError

    def continue_after_tools(self) -> ClientEvent:
        raise NotImplementedError

    def tool_outputs(self, outputs: Sequence[tuple[str, str]]) -> list[ClientEvent]:
        return [
            *(self.tool_output(call_id, output) for call_id, output in outputs),
            self.continue_after_tools(),
        ]
