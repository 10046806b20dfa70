"""One call as its observer holds it: the API (from the call id), the sideband socket, and the three
ways a call ends or moves on: hang-up, transfer (REFER) and hand-off to a successor observer.

Realtime (`rtc_...`): hang-up and refer are `/realtime/calls/{id}/...`. GPT-Live (`live_...`):
`/live/sessions/{id}/hangup|refer` for SIP; a Live WebRTC session has no hang-up and ends with
`session.close` on the sideband. Either way the sideband then sees the end (`session.closed` on Live).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
import uuid
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from observer_records import Recorder
from observer_tools import ToolCalls
from shared import deps, metrics, tls
from shared.errors import UpstreamError
from shared.launcher import ObserveRequest
from shared.log import logger
from shared.settings import Settings
from shared.store import CallStore
from shared.upstream import OpenAIClient, make_headers
from shared.voice_api import ADAPTERS, ClientEvent, VoiceApiAdapter, adapter_for_call

HANDOFF_POLL_SECONDS = 0.2
SEEN_EVENT_IDS = 4_096  # a 3 s replay holds a few dozen non-audio events: ample, and bounded


@dataclass(frozen=True)
class Lease:
    """The call's lease as this observer holds it (shared/store): what a hand-off passes on."""

    store: CallStore
    owner: str
    settings: Settings


class SeenEvents:
    """The event ids acted on, the last SEEN_EVENT_IDS of them: a GPT-Live attach replays the last
    3 s of events with their original `event_id`, and a replayed event must not count twice."""

    def __init__(self, size: int = SEEN_EVENT_IDS) -> None:
        self._ids: set[str] = set()
        self._order: deque[str] = deque()
        self._size = size

    def first(self, event_id: str) -> bool:
        """True the first time `event_id` is seen (then remembered), False for a replay."""
        if event_id in self._ids:
            return False
        self._ids.add(event_id)
        self._order.append(event_id)
        if len(self._order) > self._size:
            self._ids.discard(self._order.popleft())
        return True


class CallSession:
    """Owns the call's sideband and its control; `observe()` (observer_worker.py) drives it."""

    def __init__(
        self,
        request: ObserveRequest,
        *,
        url: str,
        api_key: str,
        client: OpenAIClient | None = None,
        lease: Lease | None = None,
        tool_calls: ToolCalls | None = None,
        recorder: Recorder | None = None,
        adapter: VoiceApiAdapter | None = None,
    ) -> None:
        self.request, self.call_id = request, request.call_id
        self.adapter = adapter or adapter_for_call(request.call_id) or ADAPTERS["realtime"]
        self.live = self.adapter.name == "live"
        self.url, self.api_key, self.client, self.lease = url, api_key, client, lease
        self.tool_calls, self.recorder = tool_calls, recorder
        self.parser = self.adapter.parser()
        self.seen = SeenEvents()
        self.websocket: ClientConnection | None = None
        # A GPT-Live observer that is not the call's first: the attach replays events a predecessor
        # already acted on. Until the answer to this marker command arrives, events are not acted on.
        self.replay_marker: str | None = None
        # An outbound call's line (`transport.*`): the greeting waits for the answer.
        self.answered = asyncio.Event()
        self.ringing_at: float | None = None  # monotonic
        self.failed = False
        self._tasks: set[asyncio.Task[None]] = set()
        if tool_calls is not None:
            tool_calls.attach(self.send)

    # ----------------------------------------------------------------- the sideband

    async def connect(self, connect: Any) -> ClientConnection:
        """Open the sideband (InvalidStatus when refused: 404 = no such call, or over)."""
        # No permessage-deflate: inflating every small event costs the observer more CPU (and a zlib
        # context's memory) than the bytes it saves on a loopback-to-region socket.
        tls_context = {"ssl": tls.client_context()} if self.url.startswith("wss://") else {}
        websocket: ClientConnection = await connect(
            self.url, additional_headers=make_headers(self.api_key), compression=None, **tls_context
        )
        self.websocket = websocket
        return websocket

    async def send(self, event: ClientEvent) -> None:
        websocket = self.websocket
        if websocket is None:
            return
        with contextlib.suppress(ConnectionClosed):
            await websocket.send(json.dumps(event))

    async def send_all(self, events: list[ClientEvent]) -> None:
        for event in events:
            await self.send(event)

    async def mark_replay(self) -> None:
        """Send the marker whose answer ends the replay (`session.update` with no change: a no-op
        acknowledged by `session.updated`, which the server sends after everything replayed)."""
        self.replay_marker = f"replay_end_{uuid.uuid4().hex[:16]}"
        await self.send({"type": "session.update", "event_id": self.replay_marker, "session": {}})

    def replay_ended_by(self, event: dict[str, Any]) -> bool:
        marker = self.replay_marker
        if marker is None:
            return False
        error = event.get("error")
        echoed = error.get("client_event_id") if isinstance(error, dict) else event.get("client_event_id")
        return echoed == marker

    def attached(self) -> None:
        """This observer is the call's now: a predecessor handing off may stop reading."""
        self.replay_marker = None
        if self.lease is not None:
            self.lease.store.mark_attached(self.call_id, self.lease.owner)

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` beside the reader (kept referenced until done)."""
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ----------------------------------------------------------------- ending, transferring

    async def hangup(self) -> None:
        """End the call: POST hangup (SIP, and any Realtime call), else `session.close` (Live WebRTC)."""
        close = self.adapter.close()
        if close is not None and self.request.source not in ("sip", "outbound"):
            await self.send(close)
            return
        if self.client is None:
            return
        for attempt in (1, 2):  # one retry: an unended call would run on unobserved
            try:
                if self.live:
                    await self.client.hangup_live_session(self.call_id)
                else:
                    await self.client.hangup_call(self.call_id)
                return
            except UpstreamError as exc:
                logger.warning("hangup failed", extra={"call_id": self.call_id, "reason": exc.reason})
                if exc.upstream_status == 404 or attempt == 2:  # 404: already over, which is the goal
                    return
                await asyncio.sleep(0.5)

    async def refer(self, target_uri: str) -> None:
        """SIP transfer; raises UpstreamError when OpenAI refuses."""
        if self.client is None:
            raise UpstreamError("no call control")
        if self.live:
            await self.client.refer_live_session(self.call_id, target_uri)
        else:
            await self.client.refer_call(self.call_id, target_uri)

    # ----------------------------------------------------------------- hand-off

    async def hand_off(self) -> bool:
        """Start the successor and hand it the lease; True once it has claimed the lease."""
        if self.lease is None:
            return False
        if self.recorder is not None:
            await self.recorder.flush()  # the successor appends after what this one has so far
        store, owner, settings = self.lease.store, self.lease.owner, self.lease.settings
        request = self.request
        # Everything but the generation and the request time carries over (agent, numbers, granted length).
        successor = dataclasses.replace(
            request,
            requested_at=time.time(),
            call_started_at=request.call_started_at or request.requested_at,
            generation=request.generation + 1,
        )
        token = handoff_token(successor.generation)
        # Hand over first, so the successor finds the lease waiting for it however fast it starts.
        if not store.hand_over(
            self.call_id, owner, token, until=time.time() + settings.observer_handoff_seconds
        ):
            logger.error("lease lost before hand-off", extra={"call_id": self.call_id})
            return False
        try:
            deps.observer_launcher().launch(successor)
        except Exception:
            logger.exception("successor launch failed", extra={"call_id": self.call_id})
            # Take the lease back from the token no successor will claim, so it can be released.
            store.hand_over(self.call_id, token, owner, until=time.time() + settings.observer_handoff_seconds)
            return False
        logger.info("successor started", extra={"call_id": self.call_id, "successor": successor.generation})
        # Read on (the reader task runs meanwhile) until the successor's own sideband is open.
        wait_until = time.monotonic() + max(0.5, settings.observer_stop_margin_seconds / 2)
        while time.monotonic() < wait_until:
            if store.attached_owner(self.call_id) not in (None, token, owner):
                metrics.emit(metrics.OBSERVER_HANDOFFS, api=self.adapter.name)
                logger.info("successor took over", extra={"call_id": self.call_id})
                return True
            await asyncio.sleep(HANDOFF_POLL_SECONDS)
        logger.error("successor did not take over in time", extra={"call_id": self.call_id})
        return False


def handoff_token(generation: int) -> str:
    """The lease owner while a call waits for its observer of this generation to claim it."""
    return f"handoff:{generation}"
