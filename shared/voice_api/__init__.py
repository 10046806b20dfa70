"""One adapter per OpenAI voice API (Realtime, GPT-Live), so the observer speaks to either through
the same small interface (`VoiceApiAdapter`) and sees the same typed events (shared/voice_api/base.py).

    adapter = adapter_for(agent.settings.voice_api)
    url = adapter.sideband_url(settings.sideband_base, call_id)
    parser = adapter.parser()                      # one per call
    for event in parser.parse(message): ...        # ToolCall, Transcript, Playback, Closed, ...
    await send(adapter.tool_outputs([(call_id, output)]))
"""

from __future__ import annotations

from shared.settings import VoiceApi
from shared.voice_api.base import (
    ApiError,
    CallProgress,
    ClientEvent,
    Closed,
    EventParser,
    Keypad,
    ObserverEvent,
    Playback,
    ResponseDone,
    ResponseStarted,
    SessionInfo,
    SessionUsage,
    TokenUsage,
    ToolCall,
    Transcript,
    VoiceApiAdapter,
)
from shared.voice_api.live import LiveAdapter
from shared.voice_api.realtime import RealtimeAdapter

ADAPTERS: dict[VoiceApi, VoiceApiAdapter] = {"realtime": RealtimeAdapter(), "live": LiveAdapter()}
# A call of either API (`rtc_...` or `live_...`: shared/upstream.py CALL_ID_PATTERN, LIVE_SESSION_ID_PATTERN).


def adapter_for(api: VoiceApi) -> VoiceApiAdapter:
    return ADAPTERS[api]


def adapter_for_call(call_id: str) -> VoiceApiAdapter | None:
    """The API a call id belongs to (`rtc_...` Realtime, `live_...` GPT-Live), None for neither."""
    return next((adapter for adapter in ADAPTERS.values() if adapter.call_id_ok(call_id)), None)


__all__ = [
    "ADAPTERS",
    "ApiError",
    "CallProgress",
    "ClientEvent",
    "Closed",
    "EventParser",
    "Keypad",
    "LiveAdapter",
    "ObserverEvent",
    "Playback",
    "RealtimeAdapter",
    "ResponseDone",
    "ResponseStarted",
    "SessionInfo",
    "SessionUsage",
    "TokenUsage",
    "ToolCall",
    "Transcript",
    "VoiceApiAdapter",
    "adapter_for",
    "adapter_for_call",
]
