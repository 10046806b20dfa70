"""Agent profiles per dialed number: `agents.yaml` maps the SIP `To` number to instructions, voice,
tools, transfer target and greeting; the `default` profile answers every other number and WebRTC.

Routing reads the `To` header only (the number the caller dialed, which our trunk routes on). `From`
is the caller's to write and only ever feeds the allow/deny lists (shared/policy.py). A profile's
unset fields inherit the settings (VOICE_API, REALTIME_VOICE, REALTIME_MODEL or LIVE_MODEL,
LIVE_BACKEND_MODEL, TRANSCRIPTION_MODEL, TOOLS, TRANSFER_TARGET), except `instructions` and
`backend_instructions`, which a profile inherits from the file's `default` profile: the shipped file
holds the original hello-realtime instructions there. `model` names a model of the profile's own API
(`api`, else VOICE_API): a Realtime model on a Live profile, or the reverse, is refused.

The file is checked when it is loaded (once per container: `deps.agents()`), by `make lint`
(scripts/check_agents.py) and by the layer build (`python -m shared.agents FILE`): an invalid file
fails the build, and at run time every function answers 500 "Server misconfigured: agents.yaml: ..."
before any upstream call.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from shared.errors import ServiceError
from shared.lifecycle import Notice, notice
from shared.log import logger
from shared.policy import caller_number
from shared.settings import (
    LIVE_MODEL_PATTERN,
    MODEL_NAME_PATTERN,
    TOOL_NAME_PATTERN,
    TRANSCRIPTION_OFF,
    TRANSFER_TARGET_PATTERN,
    Settings,
    Voice,
    VoiceApi,
)

if TYPE_CHECKING:
    from shared.tools import Tool

DEFAULT = "default"
DEFAULT_FILE = Path(__file__).with_name("agents.yaml")  # in the layer: /opt/python/shared/agents.yaml
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")  # logged and passed on with each call
# An E.164 number (`+12025550123`) or a prefix of one written with a trailing `*` (`+1202555*`).
NUMBER_PATTERN = re.compile(r"^\+[1-9][0-9]{1,14}$")
PREFIX_PATTERN = re.compile(r"^\+[1-9][0-9]{0,13}\*$")


class Profile(BaseModel):
    """One agent profile as written in the file; a field left out inherits the settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    numbers: tuple[str, ...] = Field(
        default=(),
        description="Dialed (To) numbers in E.164, or prefixes written '+1202555*'.",
        # For editors; the validator below says what is wrong in plainer words than a pattern.
        json_schema_extra={
            "items": {"type": "string", "pattern": f"{NUMBER_PATTERN.pattern}|{PREFIX_PATTERN.pattern}"}
        },
    )
    api: VoiceApi | None = Field(
        default=None,
        description="The OpenAI API of this profile's calls: realtime or live (GPT-Live). "
        "Left out: VOICE_API.",
    )
    instructions: str | None = Field(default=None, min_length=1, max_length=20_000)
    voice: Voice | None = None
    model: str | None = Field(
        default=None,
        pattern=MODEL_NAME_PATTERN.pattern,
        description="The voice model of the profile's API: a Realtime model (REALTIME_MODEL) or, on a "
        "Live profile, a GPT-Live model (LIVE_MODEL).",
    )
    backend_model: str | None = Field(
        default=None,
        pattern=MODEL_NAME_PATTERN.pattern,
        description="Live only: the Responses model the session delegates tools to. Left out: "
        "LIVE_BACKEND_MODEL.",
    )
    backend_instructions: str | None = Field(
        default=None,
        min_length=1,
        max_length=20_000,
        description="Live only: the backend prompt (business rules, tool workflows) of the Responses "
        "model; `instructions` stay the voice instructions. Left out: those of `default`.",
    )
    store: bool | None = Field(
        default=None,
        description="Live only: true = OpenAI stores the session (kept 30 days), and the stack copies "
        "its recording into its own bucket at call end (GET /calls/{call_id}/recording). Left out: false.",
    )
    transcription: str | None = Field(
        default=None,
        description="The model that transcribes the caller (as TRANSCRIPTION_MODEL), or off. "
        "Left out: TRANSCRIPTION_MODEL.",
    )
    tools: tuple[str, ...] | None = Field(
        default=None, description="Tool names (as in TOOLS); [] = none. Left out: TOOLS."
    )
    transfer_target: str | None = Field(
        default=None,
        description="tel:+<E.164> or sip:user@host; '' = no transfer. Left out: TRANSFER_TARGET.",
    )
    greeting: str | None = Field(
        default=None,
        min_length=1,
        max_length=2_000,
        description="The first response's instructions, e.g. 'Greet the caller by saying: ...'.",
    )

    @model_validator(mode="after")
    def _api_fields(self) -> Profile:
        # Only what the profile itself says of its API is checked here; `resolve` checks a profile
        # that inherits VOICE_API once the settings are known.
        if self.api is not None:
            problem = api_problem(self, self.api)
            if problem:
                raise ValueError(problem)
        return self

    @field_validator("numbers", mode="before")
    @classmethod
    def _quoted(cls, value: Any) -> Any:
        # YAML reads an unquoted +12025550123 as the integer 12025550123: say so rather than guess.
        if isinstance(value, list | tuple):
            for item in value:
                if isinstance(item, int | float):
                    raise ValueError(f"write numbers in quotes ('+{item}'): unquoted, YAML reads a number")
        return value

    @field_validator("numbers")
    @classmethod
    def _numbers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            if not (NUMBER_PATTERN.match(item) or PREFIX_PATTERN.match(item)):
                raise ValueError(
                    f"{item[:24]!r} is neither an E.164 number (+12025550123) nor a prefix (+1202555*)"
                )
        if len(set(value)) != len(value):
            raise ValueError("a number is listed twice")
        return value

    @field_validator("transcription", mode="before")
    @classmethod
    def _transcription(cls, value: Any) -> Any:
        # Unquoted `off` (and `no`, `false`) is YAML's false: read it as off.
        if value is False:
            return TRANSCRIPTION_OFF
        if isinstance(value, str):
            value = value.strip()
            if value.lower() != TRANSCRIPTION_OFF and not MODEL_NAME_PATTERN.match(value):
                raise ValueError("must be a transcription model name (e.g. gpt-live-transcribe) or off")
        return value

    @field_validator("tools")
    @classmethod
    def _tools(cls, value: tuple[str, ...] | None, info: ValidationInfo) -> tuple[str, ...] | None:
        known = (info.context or {}).get("tools")
        for name in value or ():
            if not TOOL_NAME_PATTERN.match(name):
                raise ValueError(f"{name[:40]!r} is not a tool name")
            if known is not None and name not in known:
                raise ValueError(f"unknown tool {name[:40]!r} (known: {', '.join(sorted(known))})")
        return value

    @field_validator("transfer_target")
    @classmethod
    def _transfer_target(cls, value: str | None) -> str | None:
        if value is not None:
            value = value.strip()
            if value and not TRANSFER_TARGET_PATTERN.match(value):
                raise ValueError("must be tel:+<E.164 number> or sip:user@host (or '' for none)")
        return value


LIVE_ONLY_FIELDS = ("backend_model", "backend_instructions", "store")


def api_problem(profile: Profile, api: VoiceApi) -> str:
    """What is wrong with `profile` on `api` ('' when nothing): a model of the other API, or Live-only
    fields on a Realtime profile (they would be ignored without a word)."""
    model = profile.model
    if model is not None and api == "live" and not LIVE_MODEL_PATTERN.match(model):
        return f"model {model[:64]!r} is not a GPT-Live model (gpt-live-1, gpt-live-1.1) on a Live profile"
    if model is not None and api == "realtime" and LIVE_MODEL_PATTERN.match(model):
        return f"model {model[:64]!r} serves only GPT-Live: set `api: live` or name a Realtime model"
    given = [field for field in LIVE_ONLY_FIELDS if getattr(profile, field) is not None]
    if api == "realtime" and given:
        return f"only a Live profile (`api: live`) takes {', '.join(given)}"
    return ""


class AgentsFile(BaseModel):
    """The whole file: `agents:` maps profile names to profiles."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="agents.yaml")

    agents: dict[str, Profile] = Field(
        default={}, json_schema_extra={"propertyNames": {"pattern": NAME_PATTERN.pattern}}
    )

    @field_validator("agents", mode="before")
    @classmethod
    def _empty(cls, value: Any) -> Any:
        # `agents:` or `default:` with nothing under it is YAML's null: read it as empty.
        if value is None:
            return {}
        if isinstance(value, dict):
            return {name: {} if profile is None else profile for name, profile in value.items()}
        return value

    @field_validator("agents")
    @classmethod
    def _routes(cls, value: dict[str, Profile]) -> dict[str, Profile]:
        owner: dict[str, str] = {}
        for name, profile in value.items():
            if not NAME_PATTERN.match(name):
                raise ValueError(f"profile name {name[:40]!r}: use a-z, 0-9, '-' and '_' (at most 64)")
            if name == DEFAULT and profile.numbers:
                raise ValueError(
                    "profile 'default' takes no numbers: it answers every number no profile lists"
                )
            for number in profile.numbers:
                if number in owner:
                    raise ValueError(f"{number[:24]!r} is listed by both {owner[number]!r} and {name!r}")
                owner[number] = name
        return value


@dataclass(frozen=True)
class Agent:
    """A resolved profile: `settings` are the process settings with the profile's fields laid over them
    (so make_session, select_tools and the observer's tool knobs read them as they read settings)."""

    name: str
    settings: Settings
    greeting: str = ""


@dataclass(frozen=True)
class Agents:
    profiles: dict[str, Agent]  # always holds DEFAULT
    exact: dict[str, str]  # number -> profile name
    prefixes: tuple[tuple[str, str], ...]  # (prefix without '*', profile name), longest first

    @property
    def default(self) -> Agent:
        return self.profiles[DEFAULT]

    def route(self, to_header: str) -> Agent:
        """The profile for the dialed number in a SIP `To` header: an exact number, else the longest
        prefix, else `default` (also when the header holds no number)."""
        number = caller_number(to_header)
        if not number:
            return self.default
        name = self.exact.get(number)
        if name is None:
            name = next((agent for prefix, agent in self.prefixes if number.startswith(prefix)), DEFAULT)
        return self.profiles[name]

    def get(self, name: str) -> Agent:
        """The profile called `name`; an unknown name (an event from before a redeploy) gets `default`."""
        agent = self.profiles.get(name)
        if agent is None:
            logger.warning("unknown agent profile: using default", extra={"agent": name[:64]})
            return self.default
        return agent


class AgentsError(ServiceError):
    """The agents file cannot be used; the message names the file, the profile and the field."""

    def __init__(self, file_name: str, problem: str) -> None:
        super().__init__(f"Server misconfigured: {file_name}: {problem}")
        self.detail = f"{file_name}: {problem}"  # unshortened, for the build check


def agents_path(settings: Settings) -> Path:
    return Path(settings.agents_file) if settings.agents_file.strip() else DEFAULT_FILE


def load_agents(settings: Settings, registry: dict[str, Tool] | None = None) -> Agents:
    """Read and check the agents file (AGENTS_FILE, else the shipped shared/agents.yaml); `registry`:
    the tools a profile may name (default: shared/tools.py `available_tools()`)."""
    from shared.tools import available_tools

    path = agents_path(settings)
    parsed = parse_file(path, available_tools() if registry is None else registry)
    for found in model_notices(parsed, path.name):
        if found.retired:
            raise AgentsError(path.name, found.line.removeprefix(f"{path.name}: "))
        logger.warning(found.line)
    agents = resolve(parsed, settings, path.name)
    logger.debug("agent profiles loaded", extra={"agents": sorted(agents.profiles), "file": path.name})
    return agents


def model_notices(parsed: AgentsFile, file_name: str, today: date | None = None) -> list[Notice]:
    """The lifecycle guard (shared/lifecycle.py) on the models the profiles name."""
    found = []
    for name, profile in parsed.agents.items():
        for field, model in (("model", profile.model), ("transcription", profile.transcription)):
            if model and model.lower() != TRANSCRIPTION_OFF:
                found.append(notice(model, f"{file_name}: profile {name!r}, field {field!r}", today))
    return [item for item in found if item is not None]


def parse_file(path: Path, registry: Iterable[str]) -> AgentsFile:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AgentsError(path.name, f"cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
    return parse(text, registry, file_name=path.name)


def parse(text: str, registry: Iterable[str], *, file_name: str = "agents.yaml") -> AgentsFile:
    import yaml  # only the functions that route calls need it (the page and hangup never do)

    try:
        data = yaml.load(text, Loader=_loader())  # noqa: S506 - a SafeLoader (C or Python), see _loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise AgentsError(file_name, f"not valid YAML: {where}{problem}") from None
    if data is None:
        data = {}  # an empty (or all-comment) file: only the default profile, from settings
    if not isinstance(data, dict):
        raise AgentsError(file_name, "must be a mapping with the key 'agents'")
    try:
        return AgentsFile.model_validate(data, context={"tools": set(registry)})
    except ValidationError as exc:
        raise AgentsError(file_name, _describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    """`profile 'sales', field 'voice': Input should be ...`, for the first few problems."""
    problems = []
    for error in exc.errors()[:3]:
        loc = [str(part) for part in error["loc"]]
        message = str(error["msg"]).removeprefix("Value error, ")
        if len(loc) >= 3 and loc[0] == "agents":
            field = ".".join(loc[2:])
            problems.append(f"profile {loc[1]!r}, field {field!r}: {message}")
        elif len(loc) == 2 and loc[0] == "agents":
            problems.append(f"profile {loc[1]!r}: {message}")
        else:
            problems.append(f"key {'.'.join(loc)!r}: {message}" if loc else message)
    more = len(exc.errors()) - len(problems)
    return "; ".join(problems) + (f" (and {more} more)" if more > 0 else "")


def resolve(parsed: AgentsFile, settings: Settings, file_name: str = "agents.yaml") -> Agents:
    profiles = {DEFAULT: Profile(), **parsed.agents}
    for name, profile in profiles.items():
        if profile.api is None and (problem := api_problem(profile, settings.voice_api)):
            raise AgentsError(
                file_name, f"profile {name!r} (api {settings.voice_api} from VOICE_API): {problem}"
            )
    # A profile without instructions speaks with those of `default` (the one place the app's text
    # lives); the same for a Live profile's backend prompt.
    for field in ("instructions", "backend_instructions"):
        fallback = getattr(profiles[DEFAULT], field)
        if fallback is not None:
            profiles = {
                name: p if getattr(p, field) is not None else p.model_copy(update={field: fallback})
                for name, p in profiles.items()
            }
    resolved = {name: Agent(name, _overlay(settings, p), p.greeting or "") for name, p in profiles.items()}
    exact = {n: name for name, p in profiles.items() for n in p.numbers if not n.endswith("*")}
    prefixes = [(n[:-1], name) for name, p in profiles.items() for n in p.numbers if n.endswith("*")]
    prefixes.sort(key=lambda entry: len(entry[0]), reverse=True)
    return Agents(resolved, exact, tuple(prefixes))


def _overlay(settings: Settings, profile: Profile) -> Settings:
    update: dict[str, Any] = {}
    if profile.instructions is not None:
        update["realtime_instructions"] = profile.instructions
    if profile.voice is not None:
        update["realtime_voice"] = profile.voice
    if profile.api is not None:
        update["voice_api"] = profile.api
    api = profile.api or settings.voice_api
    if profile.model is not None:
        update["live_model" if api == "live" else "realtime_model"] = profile.model
    if profile.backend_model is not None:
        update["live_backend_model"] = profile.backend_model
    if profile.backend_instructions is not None:
        update["live_backend_instructions"] = profile.backend_instructions
    if profile.store is not None:
        update["live_store"] = profile.store
    if profile.transcription is not None:
        off = profile.transcription.lower() == TRANSCRIPTION_OFF
        update["transcription_model"] = "" if off else profile.transcription
    if profile.tools is not None:
        update["tools"] = ",".join(profile.tools)
    if profile.transfer_target is not None:
        update["transfer_target"] = profile.transfer_target
    # Every value was validated above with the settings' own rules: a copy, not a second env read.
    return settings.model_copy(update=update) if update else settings


@lru_cache(maxsize=1)
def _loader() -> type[Any]:
    """PyYAML's safe loader (its C build when present: ~10x faster), refusing duplicate keys, which
    PyYAML would otherwise resolve silently to the last one (a profile written twice would vanish)."""
    import yaml

    base: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class UniqueKeyLoader(base):  # type: ignore[misc]
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: set[str] = set()
            for key_node, _ in node.value:
                if isinstance(key_node, yaml.ScalarNode):
                    if key_node.value in seen:
                        raise yaml.constructor.ConstructorError(
                            None, None, f"duplicate key {key_node.value[:40]!r}", key_node.start_mark
                        )
                    seen.add(key_node.value)
            return super().construct_mapping(node, deep)

    return UniqueKeyLoader


def main(argv: list[str] | None = None) -> int:
    """`python -m shared.agents [FILE]`: check a file with the tools this tree defines (the layer build
    runs it; scripts/check_agents.py too). Exit 1 with the problem on stderr."""
    from shared.tools import available_tools

    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else DEFAULT_FILE
    try:
        parsed = parse_file(path, available_tools())
    except AgentsError as exc:
        print(f"invalid agent profiles: {exc.detail}", file=sys.stderr)
        return 1
    notices = model_notices(parsed, path.name)
    for item in notices:
        print(f"{'retired model' if item.retired else 'warning'}: {item.line}", file=sys.stderr)
    if any(item.retired for item in notices):
        return 1
    names = [DEFAULT, *(name for name in parsed.agents if name != DEFAULT)]
    print(f"{path.name}: ok ({len(names)} profiles: {', '.join(names)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
