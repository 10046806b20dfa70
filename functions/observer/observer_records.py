"""The observer's call recorder: buffers what the call's record gets and writes it in batches.

The reader hands it the typed events of either API (shared/voice_api): transcripts (Realtime: whole
turns; GPT-Live: fragments it joins into turns, ending one when the other speaker starts or after a
pause of TURN_GAP_MS), token usage (Realtime per response; Live: the Responses backend's), Live's
cumulative session seconds (the latest replaces the earlier) and the session's model (for the cost
estimate); `ToolCalls` hands it each answered tool call. It writes once the
session is open (creating the record, so a live call is listed), then every `flush_seconds` or sooner
when a turn ends (at most one write per TURN_FLUSH_SPACING_SECONDS, so a burst of turns is one write),
before a hand-off and at the end, always off the event loop (boto3 blocks). A failed write is logged and
counted (`RecordWriteFailures`); its batch is retried with the next one; it never breaks the call.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

from shared import metrics
from shared.launcher import ObserveRequest
from shared.log import logger
from shared.records import CallMeta, EndReason, RecordBatch, RecordStore, Role, tool_call, turn
from shared.voice_api import CallProgress, ObserverEvent, SessionInfo, SessionUsage, TokenUsage, Transcript

# The observer's outcome -> the record's end reason (None: this generation writes no end).
END_REASONS: dict[str, EndReason] = {
    "closed": "caller_hung_up",
    "model_ended": "model_ended",
    "transferred": "transferred",
    "max_duration": "max_length",
    "not_found": "error",
    "refused": "error",
    "transfer_failed": "error",
    "session_error": "error",
    "call_failed": "call_failed",  # an outbound call was never answered (busy, no answer, ...)
    "no_answer": "call_failed",  # ... or rang past OpenAI's 3 minutes: the observer hung up
}
# A finished turn is written this long after the previous write at the earliest: an operator watching a
# live call sees each turn within about a second, and a burst of events still costs one write.
TURN_FLUSH_SPACING_SECONDS = 1.0
# GPT-Live transcripts come as fragments without a "done": a pause this long (session ms between one
# fragment's end and the next one's start, or wall time since the last one) ends a turn.
TURN_GAP_MS = 1_000


@dataclass
class OpenTurn:
    """A GPT-Live turn being assembled from its fragments."""

    role: Role
    parts: list[str] = field(default_factory=list)
    end_ms: int | None = None
    last_at: float = field(default_factory=time.monotonic)

    def continues(self, fragment: Transcript) -> bool:
        if ROLES[fragment.speaker] != self.role:
            return False
        if fragment.start_ms is not None and self.end_ms is not None:
            return fragment.start_ms - self.end_ms < TURN_GAP_MS
        return (time.monotonic() - self.last_at) * 1000 < TURN_GAP_MS

    def add(self, fragment: Transcript) -> None:
        self.parts.append(fragment.text)
        self.end_ms = fragment.end_ms if fragment.end_ms is not None else self.end_ms
        self.last_at = time.monotonic()


ROLES: dict[str, Role] = {"caller": "caller", "agent": "assistant"}
# The typed events `on_event` records; the reader hands it only these (not the playback progress a
# GPT-Live call's output audio yields ~50 times a second).
RECORD_EVENTS: tuple[type, ...] = (Transcript, TokenUsage, CallProgress, SessionUsage, SessionInfo)


class Recorder:
    def __init__(
        self,
        store: RecordStore,
        request: ObserveRequest,
        *,
        model: str,
        retention_days: int,
        flush_seconds: float,
        backend_model: str = "",
    ) -> None:
        self.store, self.request = store, request
        self.model, self.retention_days, self.flush_seconds = model, retention_days, flush_seconds
        self.backend_model = backend_model
        self._turn: OpenTurn | None = None
        self._pending = RecordBatch()
        self._opened = False  # the sideband answered: the call is real, its record may be created
        self._written = False
        self._retrying = False  # the pending batch holds one that failed once
        self._open = asyncio.Event()
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()  # a turn ended, or stop: the next write need not wait the full period
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    # ----------------------------------------------------------------- fed by the reader and ToolCalls

    def on_event(self, event: ObserverEvent) -> None:
        if isinstance(event, Transcript):
            self._on_transcript(event)
        elif isinstance(event, TokenUsage):
            for name, count in event.counts.items():
                self._pending.usage[name] = self._pending.usage.get(name, 0) + count
        elif isinstance(event, CallProgress):
            entry = {"event": event.state, "at": time.time()}
            self._pending.progress.append(entry if event.code is None else {**entry, "code": event.code})
            self._wake.set()  # an operator watching the call sees it ring, answer or fail at once
        elif isinstance(event, SessionUsage):
            self._pending.seconds = event.seconds  # cumulative: the latest replaces the earlier
        elif isinstance(event, SessionInfo):
            if event.model and not self._written:
                self.model = event.model[:64]
            self.opened()

    def opened(self) -> None:
        """The session is real: its record may be created."""
        self._opened = True
        self._open.set()

    def _on_transcript(self, fragment: Transcript) -> None:
        if fragment.final:
            if fragment.text.strip():
                self._add_turn(ROLES[fragment.speaker], fragment.text)
            return
        if self._turn is not None and not self._turn.continues(fragment):
            self._close_turn()
        if self._turn is None:
            self._turn = OpenTurn(ROLES[fragment.speaker])
        self._turn.add(fragment)

    def _close_turn(self, *, if_quiet: bool = False) -> None:
        current = self._turn
        if current is None or (if_quiet and (time.monotonic() - current.last_at) * 1000 < TURN_GAP_MS):
            return
        self._turn = None
        text = "".join(current.parts).strip()
        if text:
            logger.info(
                "transcript", extra={"call_id": self.request.call_id, "speaker": current.role, "text": text}
            )
            self._add_turn(current.role, text)

    def _add_turn(self, role: Role, text: str) -> None:
        self._pending.turns.append(turn(role, text.strip(), self.retention_days))
        self._wake.set()

    def on_tool_call(self, name: str, arguments: str, output: str, *, ok: bool, ms: float) -> None:
        self._pending.tool_calls.append(
            tool_call(name, arguments, output, ok=ok, ms=ms, retention_days=self.retention_days)
        )

    # ----------------------------------------------------------------- writing

    def start(self, *, opened: bool = False) -> None:
        """Start the periodic writes; `opened`: the session is known to exist already."""
        if opened:
            self.opened()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        # First write as soon as the session is open (the model is known then), then periodically.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._open.wait(), self.flush_seconds)
        while not self._stop.is_set():
            self._wake.clear()  # before the write: a turn that ends during it wakes the next one
            written_at = time.monotonic()
            await self.flush()
            await self._until_next_flush(written_at)

    async def _until_next_flush(self, written_at: float) -> None:
        """`flush_seconds` after the last write, or once a turn has ended (but not before
        TURN_FLUSH_SPACING_SECONDS after that write), or at stop."""
        period = max(0.0, written_at + self.flush_seconds - time.monotonic())
        if self._turn is not None:  # a Live turn ends by a pause: look again once one may have passed
            period = min(period, TURN_GAP_MS / 1000)
        try:
            await asyncio.wait_for(self._wake.wait(), period)
        except TimeoutError:
            return  # the periodic write
        spacing = written_at + TURN_FLUSH_SPACING_SECONDS - time.monotonic()
        if spacing > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), spacing)

    async def flush(self) -> None:
        async with self._lock:
            batch = self._take()
            if batch is not None and not await asyncio.to_thread(self._write, batch):
                self._requeue(batch)  # on the loop: the reader appends to the same buffer

    async def stop(self) -> None:
        """Stop the periodic writes, letting one in flight finish (the end is written by `finish`)."""
        self._stop.set()
        self._open.set()
        self._wake.set()
        if self._task is not None:
            await self._task

    def finish(self, outcome: str) -> None:
        """The last write, after the event loop is gone: what is left and, unless handed off, the end."""
        self._close_turn()
        batch = self._pending
        reason = END_REASONS.get(outcome)
        if reason is not None:
            batch.ended_at, batch.end_reason = time.time(), reason
        # A first observer that never got a session writes nothing: the call id may be anyone's guess.
        if (self._opened or self.request.generation > 0) and (batch or not self._written):
            self._write(batch)

    def _take(self) -> RecordBatch | None:
        self._close_turn(if_quiet=True)
        if not self._opened or (self._written and not self._pending):
            return None
        batch, self._pending = self._pending, RecordBatch()
        return batch

    def _write(self, batch: RecordBatch) -> bool:
        try:
            self.store.write(self.meta(), batch, first=not self._written)
        except Exception as exc:  # the call goes on without its record
            logger.error(
                "call record write failed",
                extra={"call_id": self.request.call_id, "error": type(exc).__name__},
            )
            metrics.emit(metrics.RECORD_WRITE_FAILURES)
            return False
        self._written = True
        self._retrying = False
        return True

    def _requeue(self, batch: RecordBatch) -> None:
        """A failed batch goes in front of what came since, for the next write; once only, so that a
        batch the table refuses (not just a passing outage) cannot block the record for good."""
        if self._retrying:
            self._retrying = False
            logger.error("call record batch dropped", extra={"call_id": self.request.call_id})
            return
        self._retrying = True
        self._pending.turns[:0] = batch.turns
        self._pending.tool_calls[:0] = batch.tool_calls
        self._pending.progress[:0] = batch.progress
        for name, count in batch.usage.items():
            self._pending.usage[name] = self._pending.usage.get(name, 0) + count
        if self._pending.seconds is None:
            self._pending.seconds = batch.seconds

    def meta(self) -> CallMeta:
        request = self.request
        return CallMeta(
            call_id=request.call_id,
            # "api": a browser's direct call; "outbound": placed by this stack (POST /calls)
            source=request.source if request.source in ("sip", "outbound") else "webrtc",
            caller=request.caller,
            dialed=request.dialed,
            agent=request.agent,
            model=self.model,
            backend_model=self.backend_model,
            started_at=request.call_started_at or request.requested_at,
        )
