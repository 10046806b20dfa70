"""One adapter per OpenAI voice API (Realtime, GPT-Live), so the observer speaks to either through
the same small interface (`VoiceApiAdapter`) and sees the same typed events (shared/voice_api/base.py).

    adapter = adapter_for(agent.settings.voice_api)
    url = adapter.sideband_url(settings.sideband_base, call_id)
    parser = adapter.parser()                      # one per call
    for event in parser.parse(message): ...        # ToolCall, Transcript, Playback, Closed, ...
    await send(adapter.tool_outputs([(call_id, output)]))
"""

from __future__ import annotations

import re

from shared.settings import VoiceApi
from shared.voice_api.base import (
    ApiError,
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
VOICE_CALL_ID_PATTERN = re.compile(r"^(?:rtc|live)_[A-Za-z0-9_-]{1,200}$")


def adapter_for(api: VoiceApi) -> VoiceApiAdapter:
    return ADAPTERS[api]


def adapter_for_call(call_id: str) -> VoiceApiAdapter | None:
    """The API a call id belongs to (`rtc_...` Realtime, `live_...` GPT-Live), None for neither."""
    return next((adapter for adapter in ADAPTERS.values() if adapter.call_id_ok(call_id)), None)


def api_of(call_id: str) -> VoiceApi:
    """The API of a call id (records, logs): `live_...` is GPT-Live, anything else Realtime."""
    return "live" if call_id.startswith("live_") else "realtime"


__all__ = [
    "ADAPTERS",
    "VOICE_CALL_ID_PATTERN",
    "ApiError",
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
    "api_of",
]
