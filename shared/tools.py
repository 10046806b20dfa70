"""Server-side tools: a registry of plain async functions the model may call, run by the observer.

A tool is an `async def` whose one parameter is a pydantic model (its arguments) and whose docstring
tells the model what it does; it returns a string, or anything JSON-serialisable, for the model to
read. Users add tools in `shared/my_tools.py` and name them in `TOOLS` (or a profile's `tools`). The
built-ins here (`end_call`, `transfer_call`) are always offered and return a `CallAction`: the observer
carries it out (functions/observer). `press_keys` (GPT-Live phone calls only: Realtime cannot send
tones) is offered only where a profile names it; it returns `KeyPresses`, which the observer sends
as one `transport.dtmf.send` per key.

`run_tool` never raises: bad arguments, unknown names, exceptions and timeouts become an error
output the model reads (`{"error": "..."}`), so a tool can neither crash nor hang a call.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
import typing
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.errors import ServiceError, redact
from shared.log import logger
from shared.settings import Settings, VoiceApi

Channel = Literal["sip", "webrtc", "browser"]
ActionName = Literal["end_call", "transfer_call"]
MAX_OUTPUT_CHARS = 16_000  # what the model reads of one output; also bounds the call store record
MAX_KEYS = 32  # press_keys: one menu choice or an account number, not a tone concert


@dataclass(frozen=True)
class CallAction:
    """Returned by a built-in tool: something the observer does to the call itself."""

    name: ActionName


@dataclass(frozen=True)
class KeyPresses:
    """Returned by `press_keys`: keypad tones the observer sends on the call's line, in order."""

    keys: str


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    arguments: type[BaseModel]
    function: Callable[[Any], Awaitable[object]]
    channels: frozenset[Channel] = frozenset(("sip", "webrtc"))
    apis: frozenset[VoiceApi] = frozenset(("realtime", "live"))
    opt_in: bool = False  # a built-in offered only where `TOOLS` (or a profile's `tools`) names it

    def schema(self) -> dict[str, Any]:
        """The session's `tools` entry (GA function tool)."""
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": clean_schema(self.arguments.model_json_schema()),
        }


@dataclass(frozen=True)
class ToolResult:
    output: str  # the function_call_output string
    ok: bool
    action: ActionName | None = None
    keys: str = ""  # press_keys: the tones to send before the output


class NoArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")


def tool_from_function(function: Callable[[Any], Awaitable[object]], **extra: Any) -> Tool:
    """A Tool from an async function `f(args: SomeModel)`: name, docstring and argument model."""
    if not inspect.iscoroutinefunction(function):
        raise TypeError(f"tool {function.__name__} must be an async function")
    hints = typing.get_type_hints(function)
    parameters = list(inspect.signature(function).parameters)
    model = hints.get(parameters[0]) if len(parameters) == 1 else None
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(f"tool {function.__name__} must take exactly one pydantic model argument")
    description = " ".join((inspect.getdoc(function) or "").split())
    if not description:
        raise TypeError(f"tool {function.__name__} needs a docstring: it is the model's description")
    return Tool(function.__name__, description, model, function, **extra)


def clean_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """pydantic's JSON schema reduced to what the Realtime API takes: `$ref`s inlined, no `$defs`
    or `title`s, always an object with `properties` (an empty model is `{"type": "object", ...}`)."""
    definitions = schema.get("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                target = definitions[str(node["$ref"]).rsplit("/", 1)[-1]]
                return walk({**target, **{k: v for k, v in node.items() if k != "$ref"}})
            return {k: walk(v) for k, v in node.items() if k not in ("title", "$defs")}
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    cleaned: dict[str, Any] = walk(schema)
    cleaned["type"] = "object"
    cleaned.setdefault("properties", {})
    return cleaned


# ----------------------------------------------------------------------------- built-ins


async def end_call(args: NoArguments) -> CallAction:
    """Hang up the phone call. Use it when the caller says goodbye or asks to end the call, or the
    conversation is clearly finished. Do not say goodbye first: you will be asked to say it next."""
    return CallAction("end_call")


async def transfer_call(args: NoArguments) -> CallAction:
    """Transfer the caller to a human colleague. Use it when the caller asks for a person or you
    cannot help. Do not announce it first: you will be asked to tell the caller next."""
    return CallAction("transfer_call")


class KeysArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keys: str = Field(
        pattern=f"^[0-9*#A-D]{{1,{MAX_KEYS}}}$",
        description="The keys to press, in order: digits 0-9, * , # and A-D, e.g. '1' or '4711#'.",
    )


async def press_keys(args: KeysArguments) -> KeyPresses:
    """Press keys on the phone keypad (DTMF tones), e.g. to choose an option in a phone menu or enter
    a number the other side asks for. Press only what the menu or the person asked for."""
    return KeyPresses(args.keys)


BUILT_INS = (
    tool_from_function(end_call),
    # SIP only: a WebRTC session has no phone line to refer.
    tool_from_function(transfer_call, channels=frozenset(("sip",))),
    # GPT-Live SIP only (Realtime has no outgoing tones); only where a profile asks for it.
    tool_from_function(press_keys, channels=frozenset(("sip",)), apis=frozenset(("live",)), opt_in=True),
)


def available_tools() -> dict[str, Tool]:
    """Every tool that `TOOLS` may name: the built-ins and the public async functions of
    shared/my_tools.py that take one pydantic model."""
    from shared import my_tools

    found = {tool.name: tool for tool in BUILT_INS}
    for name, value in vars(my_tools).items():
        if name.startswith("_") or not inspect.iscoroutinefunction(value):
            continue
        if getattr(value, "__module__", None) == my_tools.__name__ and name != "on_dtmf":
            found[name] = tool_from_function(value)
    return found


def call_tools(
    profile: Settings, channel: Channel, api: VoiceApi, registry: dict[str, Tool] | None = None
) -> dict[str, Tool]:
    """The tools a call of this agent `profile` offers on `channel` and `api` (its `TOOLS` and transfer
    target): what its session declares and what its observer runs."""
    return select_tools(
        profile.tool_names, transfer_target=profile.transfer_target, known=registry, channel=channel, api=api
    )


def select_tools(
    names: Iterable[str],
    *,
    transfer_target: str,
    known: dict[str, Tool] | None = None,
    channel: Channel | None = None,
    api: VoiceApi | None = None,
) -> dict[str, Tool]:
    """The built-ins (`end_call`; `transfer_call` when `TRANSFER_TARGET` is set; `press_keys` only when
    named) and the tools named in `TOOLS` out of `known` (default: `available_tools()`; unknown names
    are a misconfiguration); with `channel` and `api`, only the tools offered there. Naming a
    built-in is allowed and changes nothing. The session and the observer both choose here, so the
    model is offered exactly the tools the observer runs."""
    known = available_tools() if known is None else known
    chosen: dict[str, Tool] = {}
    for name in (*(tool.name for tool in BUILT_INS if not tool.opt_in), *names):
        if name not in known:
            raise ServiceError(f"Server misconfigured: TOOLS names an unknown tool {name[:40]!r}")
        if name == "transfer_call" and not transfer_target:
            continue
        if channel is not None and channel not in known[name].channels:
            continue
        if api is not None and api not in known[name].apis:
            continue
        chosen[name] = known[name]
    return chosen


# ----------------------------------------------------------------------------- running


def error_output(reason: str) -> str:
    return json.dumps({"error": redact(reason)})


async def run_tool(tools: dict[str, Tool], name: str, arguments: str, *, time_limit: float) -> ToolResult:
    """Validate the arguments and run the tool within `time_limit` s; every failure is an error output."""
    started = time.perf_counter()
    tool = tools.get(name)
    if tool is None:
        return ToolResult(error_output(f"unknown tool {name[:64]!r}"), ok=False)
    try:
        args = tool.arguments.model_validate_json(arguments or "{}")
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'arguments'}: {error['msg']}"
            for error in exc.errors()[:5]
        )
        return ToolResult(error_output(f"invalid arguments: {problems}"), ok=False)
    try:
        async with asyncio.timeout(time_limit):
            value = await tool.function(args)
    except TimeoutError:
        logger.warning("tool timed out", extra={"tool": name, "time_limit": time_limit})
        return ToolResult(error_output(f"{name} did not finish within {time_limit:g} s"), ok=False)
    except Exception as exc:  # a tool's bug must not end the call: the model hears it failed
        logger.warning("tool failed", extra={"tool": name, "error": type(exc).__name__})
        return ToolResult(error_output(f"{name} failed: {type(exc).__name__}: {exc}"), ok=False)
    logger.debug("tool ran", extra={"tool": name, "ms": round((time.perf_counter() - started) * 1000, 2)})
    if isinstance(value, CallAction):
        return ToolResult(json.dumps({"ok": True}), ok=True, action=value.name)
    if isinstance(value, KeyPresses):
        return ToolResult(json.dumps({"pressed": value.keys}), ok=True, keys=value.keys)
    return ToolResult(_as_output(value), ok=True)


def _as_output(value: object) -> str:
    if isinstance(value, BaseModel):
        text = value.model_dump_json()
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, default=str)
    return text[:MAX_OUTPUT_CHARS]
