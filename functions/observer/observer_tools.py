"""The observer's side of server-side tools: runs the model's function calls and carries out call actions.

Fed the typed events of either API (shared/voice_api: `ToolCall`, `ResponseStarted`, `ResponseDone`,
`Playback`, `Keypad`), it answers through the call's adapter, so one implementation serves both. The
Realtime API repeats a call in up to three events; each `call_id` runs once. Exactly once across
observers too: the call store records the call (`claim_tool_call`) before it runs and its output
after (`finish_tool_call`). Then:

- recorded `done` (a duplicate, or a predecessor answered it): nothing is sent again;
- recorded `started` by another observer (a predecessor handing off finishes its tools, bounded by
  the tool time limit, and sends their outputs before it lets go): it is theirs; this one waits until
  the owner's time limit (+ a grace) has passed and reads the record again;
- still `started` after that (its observer died): the model gets an error output instead of a
  second run, since the tool may have had an effect already.

Each tool runs as a task, so events keep flowing; after `filler_after` s without a result the
Realtime model is asked for a short "one moment" line (GPT-Live acknowledges a delegation itself).
Once every tool of a response is answered and that response is done, one continue (`response.create`)
makes the model go on. `end_call` and `transfer_call` instead ask for a goodbye / hand-over line,
wait until it has played, then hang up / refer. Realtime: `output_audio_buffer.stopped`, or
`response.done` plus a margin where that event never comes. GPT-Live has no playback events: the
reflected output audio must have been quiet for `quiet_gap` s. Both capped by `speech_cap`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from shared import metrics, my_tools
from shared.errors import ServiceError, UpstreamError
from shared.log import logger
from shared.settings import Settings
from shared.store import CallStore
from shared.tools import ActionName, Tool, error_output, run_tool
from shared.voice_api import (
    ADAPTERS,
    Keypad,
    ObserverEvent,
    Playback,
    ResponseDone,
    ResponseStarted,
    ToolCall,
    VoiceApiAdapter,
)

ToolOutcome = Literal["model_ended", "transferred", "transfer_failed"]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class Answered(Protocol):
    """Told of each tool call answered (the call record): name, arguments, output, ok, ms."""

    def __call__(self, name: str, arguments: str, output: str, *, ok: bool, ms: float) -> None: ...


RESPONSE_START_WAIT = 1.0  # seconds for the `response.created` of a `response.create` we sent
QUIET_POLL_SECONDS = 0.05  # GPT-Live: how often a goodbye's end is checked (no event per audio frame)
# The typed events `on_event` acts on; the reader hands it only these.
TOOL_EVENTS: tuple[type, ...] = (ToolCall, ResponseStarted, ResponseDone, Playback, Keypad)

FILLER = (
    "A tool you called is still working. Tell the caller in a few words that you are on it "
    "(for example 'One moment, please.'). Do not guess its result."
)
GOODBYE = "Say a short, friendly goodbye to the caller now. The call ends after it."
HANDOVER = "Tell the caller in one short sentence that you are transferring them to a colleague now."
TRANSFER_FAILED = (
    "The transfer did not go through. Apologise in one short sentence, tell the caller to call back "
    "later, and say goodbye. The call ends after it."
)


@dataclass(frozen=True)
class ToolKnobs:
    time_limit: float = 10.0
    filler_after: float = 1.5  # 0: never
    end_margin: float = 1.5
    speech_cap: float = 12.0
    transfer_target: str = ""
    transfer_confirm: float = 20.0
    stale_grace: float = 5.0  # beyond the time limit: a `started` record this old has a dead owner
    quiet_gap: float = 0.8  # GPT-Live: reflected output audio this long quiet = the line has played

    @classmethod
    def from_settings(cls, settings: Settings) -> ToolKnobs:
        return cls(
            time_limit=settings.tool_timeout_seconds,
            filler_after=settings.tool_filler_seconds,
            end_margin=settings.end_call_margin_seconds,
            speech_cap=settings.speech_wait_max_seconds,
            transfer_target=settings.transfer_target,
            transfer_confirm=settings.transfer_confirm_seconds,
            quiet_gap=settings.end_call_quiet_ms / 1000,
        )


@dataclass(frozen=True)
class CallControl:
    hangup: Callable[[], Awaitable[None]]
    refer: Callable[[str], Awaitable[None]]  # raises UpstreamError when OpenAI refuses


class ToolCalls:
    """Fed the parsed sideband events of `TOOL_EVENTS` (`on_event`) by the observer's reader; sends
    through `attach`."""

    def __init__(
        self,
        call_id: str,
        owner: str,
        *,
        tools: dict[str, Tool],
        store: CallStore,
        control: CallControl,
        knobs: ToolKnobs,
        on_answered: Answered | None = None,
        adapter: VoiceApiAdapter = ADAPTERS["realtime"],
    ) -> None:
        self.call_id, self.owner, self.adapter = call_id, owner, adapter
        self.live = adapter.name == "live"
        self._on_answered = on_answered
        self.tools, self.store, self.control, self.knobs = tools, store, control, knobs
        self.outcome: ToolOutcome | None = None
        self._send_event: Send | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._seen: set[str] = set()
        self._changed = asyncio.Event()
        self._closed = False
        # Responses: which are live, how many started, and the tools each one asked for.
        self._active: set[str] = set()
        self._done: set[str] = set()
        self._created: list[str] = []  # response ids in the order they started
        self._playing: set[str] = set()  # responses whose audio is playing (output_audio_buffer)
        self._played: set[str] = set()  # ... and whose audio has stopped
        self._pending: dict[str, int] = {}
        self._answered: dict[str, list[ActionName | None]] = {}
        self._continued: set[str] = set()
        self._speak_lock = asyncio.Lock()
        self._action: asyncio.Task[None] | None = None
        self._audio_at = 0.0  # GPT-Live: monotonic time of the last reflected output audio frame

    @property
    def can_transfer(self) -> bool:
        return "transfer_call" in self.tools and bool(self.knobs.transfer_target)

    def attach(self, send: Send) -> None:
        self._send_event = send

    # ----------------------------------------------------------------- events

    def on_event(self, event: ObserverEvent) -> None:
        if isinstance(event, Playback) and event.state == "progress":
            # GPT-Live output audio, ~50 frames a second: a timestamp, no wake-up (`_say` polls).
            self._audio_at = time.monotonic()
            return
        if isinstance(event, ToolCall):
            self._call_requested(event)
        elif isinstance(event, ResponseStarted):
            self._created.append(event.response_id)
            self._active.add(event.response_id)
        elif isinstance(event, ResponseDone):
            self._active.discard(event.response_id)
            self._done.add(event.response_id)
            self._maybe_continue(event.response_id)
        elif isinstance(event, Playback):
            self._on_playback(event.state, event.response_id)
        elif isinstance(event, Keypad):
            self._keypad(event.digit)
        else:
            return
        self._notify()

    def _on_playback(self, state: str, response_id: str) -> None:
        if state == "started":
            self._playing.add(response_id)
            return
        if response_id:  # stopped or cleared
            self._playing.discard(response_id)
        else:  # no id: whatever was playing has stopped
            self._played.update(self._playing)
            self._playing.clear()
        self._played.add(response_id)

    def on_closed(self) -> None:
        self._closed = True
        self._notify()

    async def close(self) -> None:
        """Let running tools finish and answer (bounded by the time limit), then stop the rest."""
        deadline = time.monotonic() + self.knobs.time_limit + 1
        # A loop: an answered tool spawns its response.create, which must go out too.
        while self._tasks and (remaining := deadline - time.monotonic()) > 0:
            await asyncio.wait(set(self._tasks), timeout=remaining)
        for task in list(self._tasks):
            task.cancel()

    # ----------------------------------------------------------------- tool calls

    def _call_requested(self, call: ToolCall) -> None:
        if call.call_id in self._seen:
            return  # already handled by this observer: Realtime repeats a call in three events
        self._seen.add(call.call_id)
        rid = call.response_id
        self._pending[rid] = self._pending.get(rid, 0) + 1
        self._spawn(self._handle(call.call_id, call.name, call.arguments, rid))

    async def _handle(self, tool_call_id: str, name: str, arguments: str, response_id: str) -> None:
        fields = {"call_id": self.call_id, "tool": name, "tool_call_id": tool_call_id}
        answered: list[ActionName | None] | None = None
        try:
            try:
                record = await asyncio.to_thread(
                    self.store.claim_tool_call, self.call_id, tool_call_id, self.owner
                )
            except ServiceError:
                # Without a record a second observer could run it again: answer, do not run.
                logger.error("tool call not recorded: not running it", extra=fields)
                refused = error_output("the tool could not be started; try again")
                await self._output(tool_call_id, refused)
                self._report(name, arguments, refused, ok=False, ms=0.0)
                answered = [None]
                return
            if record is not None:
                if await self._settled_elsewhere(tool_call_id, record.status, record.started_at, fields):
                    return
                lost = error_output("this tool call was interrupted; it may or may not have taken effect")
                await self._output(tool_call_id, lost)
                self._report(name, arguments, lost, ok=False, ms=0.0)
                with contextlib.suppress(ServiceError):
                    await asyncio.to_thread(self.store.finish_tool_call, self.call_id, tool_call_id, lost)
                answered = [None]
                return
            started = time.perf_counter()
            run = asyncio.create_task(run_tool(self.tools, name, arguments, time_limit=self.knobs.time_limit))
            if self.knobs.filler_after > 0:
                await asyncio.wait({run}, timeout=self.knobs.filler_after)
                if not run.done() and not self.live:  # Live acknowledges a delegation itself
                    logger.info("tool is slow: asking for a filler line", extra=fields)
                    self._spawn(self._speak_only(FILLER))
            result = await run
            for key in result.keys:  # press_keys: the tones go out before the model hears they did
                await self._send(self.adapter.keypad(key))
            await self._output(tool_call_id, result.output)
            ms = round((time.perf_counter() - started) * 1000, 2)
            logger.info("tool call answered", extra={**fields, "ok": result.ok, "ms": ms})
            self._report(name, arguments, result.output, ok=result.ok, ms=ms)
            with contextlib.suppress(ServiceError):  # the output is sent; a lost mark only looks stale later
                await asyncio.to_thread(
                    self.store.finish_tool_call, self.call_id, tool_call_id, result.output
                )
            answered = [result.action]
        finally:
            self._pending[response_id] -= 1
            if answered is not None:
                self._answered.setdefault(response_id, []).extend(answered)
            self._maybe_continue(response_id)

    async def _settled_elsewhere(
        self, tool_call_id: str, status: str, started_at: float, fields: dict[str, str]
    ) -> bool:
        """A call someone else recorded: True if it is (or gets) answered by them. A `started` one is
        given until its owner's time limit (+ grace) to finish; still `started` then, its owner died."""
        wait = started_at + self.knobs.time_limit + self.knobs.stale_grace - time.time()
        if status == "started" and wait > 0:
            logger.info("tool call running in another observer: waiting for it", extra=fields)
            await self._until(lambda: False, wait)  # returns early if the call ends
            if self._closed:
                return True
            with contextlib.suppress(ServiceError):
                record = await asyncio.to_thread(
                    self.store.claim_tool_call, self.call_id, tool_call_id, self.owner
                )
                status = "started" if record is None else record.status  # None: it vanished; now ours
        if status == "done":
            logger.info("duplicate tool call suppressed", extra=fields)
            return True
        logger.warning("tool call of a dead observer: answering with an error", extra=fields)
        return False

    async def _output(self, tool_call_id: str, output: str) -> None:
        await self._send(self.adapter.tool_output(tool_call_id, output))

    def _maybe_continue(self, response_id: str) -> None:
        """Every tool of a finished response is answered: let the model speak on (or act), once."""
        if self._pending.get(response_id, 0) > 0 or response_id in self._continued:
            return
        if response_id and response_id not in self._done:
            return
        answered = self._answered.get(response_id)
        if not answered:
            return  # nothing of ours in it (e.g. all duplicates answered by a predecessor)
        self._continued.add(response_id)
        action = next((a for a in answered if a is not None), None)
        if action is not None:
            self._start_action(action, reason="model")
        else:
            self._spawn(self._speak_only(None))

    def _report(self, name: str, arguments: str, output: str, *, ok: bool, ms: float) -> None:
        if not ok:
            metrics.emit(metrics.TOOL_ERRORS)  # {service} only: the dashboard alarms on that set
        if self._on_answered is not None:
            try:
                self._on_answered(name, arguments, output, ok=ok, ms=ms)
            except Exception:  # recording must never break a tool call
                logger.exception("tool call not recorded", extra={"call_id": self.call_id, "tool": name})

    # ----------------------------------------------------------------- call actions

    def _keypad(self, digit: str) -> None:
        logger.info("keypad", extra={"call_id": self.call_id, "digit": digit})
        try:
            action = my_tools.on_dtmf(digit, my_tools.KeypadCall(self.call_id, self.can_transfer))
        except Exception:
            logger.exception("on_dtmf failed", extra={"call_id": self.call_id})
            return
        if action is not None:
            self._start_action(action, reason="keypad")

    def _start_action(self, action: ActionName, *, reason: str) -> None:
        if self._action is not None:
            return  # one way out of a call
        if action == "transfer_call" and not self.can_transfer:
            logger.warning("transfer asked for but not available", extra={"call_id": self.call_id})
            self._spawn(self._speak_only(None))
            return
        logger.info("call action", extra={"call_id": self.call_id, "action": action, "reason": reason})
        run = self._end_call() if action == "end_call" else self._transfer()
        self._action = self._spawn(run)

    async def _end_call(self) -> None:
        await self._say(GOODBYE)
        self.outcome = "model_ended"  # before the hang-up: the socket may close while it is answered
        logger.info(
            "hanging up: the model ended the call", extra={"call_id": self.call_id, "reason": "model_ended"}
        )
        await self.control.hangup()

    async def _transfer(self) -> None:
        await self._say(HANDOVER)
        self.outcome = "transferred"
        try:
            await self.control.refer(self.knobs.transfer_target)
            logger.info("transfer requested", extra={"call_id": self.call_id})
            # A completed REFER takes the call away from OpenAI: the sideband closes.
            if await self._until(lambda: self._closed, self.knobs.transfer_confirm):
                return
            logger.warning("transfer did not complete in time", extra={"call_id": self.call_id})
        except UpstreamError as exc:
            logger.warning("transfer refused", extra={"call_id": self.call_id, "reason": exc.reason})
        self.outcome = "transfer_failed"
        await self._say(TRANSFER_FAILED)
        await self.control.hangup()

    # ----------------------------------------------------------------- speaking

    async def _speak_only(self, instructions: str | None) -> None:
        await self._speak(instructions)

    async def _speak(self, instructions: str | None) -> str | None:
        """Realtime: `response.create` once no response is live; returns the id of the response it
        started. GPT-Live: an instruction to the session, or the continue after tool outputs."""
        if self.live:
            if instructions is None:
                await self._send(self.adapter.continue_after_tools())
            else:
                for event in self.adapter.instruct(instructions):
                    await self._send(event)
            return None
        async with self._speak_lock:
            await self._until(lambda: not self._active, self.knobs.speech_cap)
            before = len(self._created)
            await self._send(
                self.adapter.instruct(instructions)[0]
                if instructions is not None
                else self.adapter.continue_after_tools()
            )
            # Hold the lock until it has started, so the next speaker waits behind it.
            if await self._until(lambda: len(self._created) > before, RESPONSE_START_WAIT):
                return self._created[before]
            return None

    async def _say(self, instructions: str) -> None:
        """Speak and wait until it has played: `.stopped`, else `response.done` + margin; capped.
        GPT-Live: until its reflected audio has begun and then been quiet for `quiet_gap`."""
        deadline = time.monotonic() + self.knobs.speech_cap
        if self.live:
            asked_at = time.monotonic()
            await self._speak(instructions)
            await self._quiet_after(asked_at, deadline)
            return
        spoken = await self._speak(instructions)
        if spoken is not None:
            await self._until(lambda: spoken in self._done, deadline - time.monotonic())
        if spoken not in self._playing and spoken not in self._played:
            # Playback events may never come (or come late): wait a margin for them.
            margin = min(self.knobs.end_margin, deadline - time.monotonic())
            await self._until(lambda: spoken in self._playing or spoken in self._played, margin)
        if spoken in self._playing:
            await self._until(lambda: spoken not in self._playing, deadline - time.monotonic())

    async def _quiet_after(self, asked_at: float, deadline: float) -> None:
        """Polled, not woken per frame: output audio after `asked_at`, then `quiet_gap` without any."""
        while not self._closed and (now := time.monotonic()) < deadline:
            heard = self._audio_at > asked_at
            if heard and now - self._audio_at >= self.knobs.quiet_gap:
                return
            await asyncio.sleep(min(QUIET_POLL_SECONDS, deadline - now))

    async def _until(self, predicate: Callable[[], bool], seconds: float) -> bool:
        """Wait until `predicate()` holds, the socket closes, or `seconds` pass; returns predicate()."""
        deadline = time.monotonic() + seconds
        while not predicate() and not self._closed:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)
        return predicate()

    # ----------------------------------------------------------------- plumbing

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _spawn(self, work: Awaitable[None]) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _send(self, event: dict[str, Any]) -> None:
        if self._send_event is None or self._closed:
            return
        try:
            await self._send_event(event)
        except Exception as exc:  # the call ended under us (ConnectionClosed): nothing to answer
            logger.info(
                "sideband gone while sending", extra={"call_id": self.call_id, "error": type(exc).__name__}
            )
