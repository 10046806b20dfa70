"""Every environment variable the project reads, with its default, in one place."""

from __future__ import annotations

import json
import os
import re
from functools import lru_cache
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from shared.errors import ServiceError

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_REALTIME_MODEL = "gpt-realtime-2.1"
DEFAULT_LIVE_MODEL = "gpt-live-1.1"
# The Responses model a Live session delegates tool work to (its `delegation.responses.model`). The
# Live guides name gpt-5.6-terra (balanced) and gpt-5.6-luna (the fast, low-cost tier): the caller
# hears silence while the backend thinks, and the tools here are small function calls, so the
# latency tier is the default; a profile with heavier business reasoning can name terra.
DEFAULT_LIVE_BACKEND_MODEL = "gpt-5.6-luna"
DEFAULT_TRANSCRIPTION_MODEL = "gpt-live-transcribe"
TRANSCRIPTION_OFF = "off"
MODEL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
# GPT-Live voice models (gpt-live-1, gpt-live-1.1, dated snapshots); they serve only /v1/live/sessions,
# and no Realtime model serves it. The digit keeps gpt-live-transcribe (a transcription model) out.
LIVE_MODEL_PATTERN = re.compile(r"^gpt-live-[0-9][A-Za-z0-9._-]{0,54}$")

# Set by Lambda for the init phase: "snap-start" while a SnapStart version is initialised for its
# snapshot (shared/snapstart.py warms everything then), "on-demand" otherwise. Read straight from the
# environment at import, before (and whatever) the settings validate.
LAMBDA_INITIALIZATION_TYPE = "AWS_LAMBDA_INITIALIZATION_TYPE"

Voice = Literal["alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar"]
ObserverLaunch = Literal["lambda", "local", "off"]
# Which OpenAI API carries a call: the Realtime API (/v1/realtime) or GPT-Live (/v1/live/sessions).
VoiceApi = Literal["realtime", "live"]
CallStoreKind = Literal["memory", "dynamodb"]
# Your tools (shared/my_tools.py) by name; the built-ins end_call and transfer_call are always offered.
DEFAULT_TOOLS = "get_current_time"
# Where transfer_call sends the caller: a phone number in E.164 or a SIP URI (never the model's choice).
TRANSFER_TARGET_PATTERN = re.compile(r"^(?:tel:\+[1-9][0-9]{6,14}|sips?:[^\s@]+@[^\s]+)$")
TOOL_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
# One entry of OUTBOUND_ALLOWED_PREFIXES: `+` and 1-15 digits, a trailing `*` optional (prefix either way).
OUTBOUND_PREFIX_PATTERN = re.compile(r"^\+[1-9][0-9]{0,14}\*?$")


class McpServer(BaseModel):
    """One remote MCP server the model may call (`MCP_SERVERS`, a JSON list of these)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    server_label: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    server_url: str = Field(pattern=r"^https?://[^\s]+$", max_length=2000)
    allowed_tools: tuple[str, ...] | None = None
    # Credentials for the server (e.g. Authorization): SecretStr so no repr or log line shows them.
    headers: dict[str, SecretStr] | None = None


class Settings(BaseModel):
    """Configuration from the environment (and `.env` for the local server).

    Field names map to environment variables of any case (`openai_base_url` <- `OPENAI_BASE_URL`);
    keyword arguments win over the environment. Secret values are never read from here in AWS: see
    `shared.secrets`. A plain pydantic model rather than pydantic-settings: every field is a scalar
    read from one source, and pydantic-settings cost ~60 ms of each cold start (`make bench`).
    """

    model_config = ConfigDict(extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _from_environment(cls, given: Any) -> Any:
        environment = {name.lower(): value for name, value in os.environ.items()}
        found = {field: environment[field] for field in cls.model_fields if field in environment}
        return {**found, **given} if isinstance(given, dict) else given

    # Secrets: plain values for local runs, or Secrets Manager ARNs in AWS (the ARN wins when both are set).
    openai_api_key: str = ""
    openai_api_key_secret_arn: str = ""
    openai_signing_secret: str = ""
    openai_signing_secret_arn: str = ""
    # The outbound SIP trunk (shared/outbound.py): JSON {provider_url, username, password, caller_number};
    # OUTBOUND_TRUNK locally (.env), a Secrets Manager secret in AWS.
    outbound_trunk: str = ""
    outbound_trunk_secret_arn: str = ""
    secrets_cache_seconds: int = Field(default=60, ge=0, le=3600)

    # Upstream.
    openai_base_url: str = DEFAULT_BASE_URL
    upstream_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    token_ttl_seconds: int = Field(default=600, ge=10, le=7200)

    # Session config.
    realtime_model: str = DEFAULT_REALTIME_MODEL
    realtime_voice: Voice = "marin"
    # The caller's words transcribed (`audio.input.transcription`): the GA API leaves it off, and then no
    # caller turn reaches the page or the call record. "off" (or empty) turns it off.
    transcription_model: str = DEFAULT_TRANSCRIPTION_MODEL
    # A profile's own instructions (shared/agents.yaml); the file's `default` profile holds the app's text.
    realtime_instructions: str = ""

    # GPT-Live (shared/live_session.py): the API of the `default` profile (a profile may set `api:`),
    # the Live voice model, and the Responses model its sessions delegate tools to.
    voice_api: VoiceApi = "realtime"
    live_model: str = DEFAULT_LIVE_MODEL
    live_backend_model: str = Field(default=DEFAULT_LIVE_BACKEND_MODEL, pattern=MODEL_NAME_PATTERN.pattern)
    # A Live profile's backend prompt (agents.yaml `backend_instructions`): profile only, like
    # `instructions` (business rules and tool workflows, apart from the voice instructions).
    live_backend_instructions: str = ""
    # A Live profile's `store: true` (agents.yaml): OpenAI keeps the session (recording, fork). Profile only.
    live_store: bool = False

    # Observer.
    observer_launch: ObserverLaunch = "lambda"
    observer_function_name: str = ""
    observer_greeting_delay_ms: int = Field(default=250, ge=0, le=10_000)
    observer_stop_margin_seconds: float = Field(default=10.0, ge=0, le=120)
    observer_max_seconds: float = Field(default=900.0, gt=0)  # local runs, where no Lambda deadline exists
    # A successor must claim a handed-over lease within this window, or the lease lapses.
    observer_handoff_seconds: float = Field(default=60.0, gt=0, le=300)

    # Exactly-once state shared by all instances: DynamoDB in AWS, one in-process store locally.
    call_store: CallStoreKind = "memory"
    calls_table_name: str = ""
    # A webhook delivery still "in progress" after this long is treated as crashed and may be retried.
    webhook_lock_seconds: float = Field(default=30.0, gt=0, le=900)

    # Accepting a SIP call: bounded retries that fit in the webhook's few-second answer budget.
    accept_max_attempts: int = Field(default=3, ge=1, le=10)
    accept_attempt_timeout_seconds: float = Field(default=2.5, gt=0, le=30)
    accept_deadline_seconds: float = Field(default=7.0, gt=0, le=25)
    accept_backoff_seconds: float = Field(default=0.25, ge=0, le=5)

    # Caller policy (SIP): comma-separated numbers, `+1555*` = prefix; empty = no rule.
    allowed_callers: str = ""
    denied_callers: str = ""
    max_concurrent_calls: int = Field(default=0, ge=0)  # 0 = no cap

    # Outbound calls (POST /calls, shared/outbound.py): the destinations allowed, comma-separated E.164
    # prefixes (`+1415*` or `+1415`). Empty = outbound calls off (the toll-fraud guard).
    outbound_allowed_prefixes: str = ""

    # Call recordings (shared/recordings.py): the stack's bucket; empty = recordings are not copied.
    recordings_bucket_name: str = ""

    # Call length, SIP and WebRTC alike: 0 = no limit (OpenAI still ends sessions at 60 minutes).
    max_call_seconds: int = Field(default=900, ge=0, le=7200)
    wrap_up_seconds: float = Field(default=20.0, ge=0, le=300)

    # The hard stop (shared/hard_stop.py): at call start an EventBridge Scheduler one-shot schedule that
    # invokes the hangup function at MAX_CALL_SECONDS (or OpenAI's 60-minute cap) + the grace, whatever
    # becomes of the observer. HANGUP_FUNCTION_ARN empty (local runs): no schedule.
    hangup_function_arn: str = ""
    scheduler_role_arn: str = ""  # the role Scheduler assumes to invoke it
    hangup_schedule_group: str = "default"
    hard_stop_grace_seconds: int = Field(default=60, ge=0, le=3600)

    # Server-side tools (shared/tools.py, shared/my_tools.py), run by the observer over the sideband.
    tools: str = DEFAULT_TOOLS  # comma-separated names of your tools; empty = none of them
    tool_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    tool_filler_seconds: float = Field(default=1.5, ge=0, le=30)  # then "one moment"; 0 = never
    end_call_margin_seconds: float = Field(default=1.5, ge=0, le=10)  # response.done + this, if no .stopped
    speech_wait_max_seconds: float = Field(default=12.0, gt=0, le=60)  # hard cap on waiting for audio
    # GPT-Live has no "playback stopped": a goodbye has played once the reflected output audio has
    # been quiet this long (then hang up; capped by SPEECH_WAIT_MAX_SECONDS).
    end_call_quiet_ms: int = Field(default=800, ge=100, le=10_000)
    transfer_target: str = ""  # tel:+E164 or sip:user@host; empty = no transfer_call tool
    transfer_confirm_seconds: float = Field(default=20.0, gt=0, le=120)  # sideband still open: failed
    mcp_servers: tuple[McpServer, ...] = ()  # MCP_SERVERS: JSON list

    # Agent profiles per dialed number (shared/agents.py): a YAML file; empty = shared/agents.yaml.
    agents_file: str = ""

    # Call records (shared/records/): one per call, in RECORDS_TABLE_NAME (DynamoDB, CALL_STORE=dynamodb)
    # or in process. Kept RECORD_RETENTION_DAYS days (TTL); 0 = records without transcript text, tool
    # arguments or tool results, kept METADATA_RETENTION_DAYS.
    records_table_name: str = ""
    record_retention_days: int = Field(default=30, ge=0, le=3650)
    # The observer batches record writes: one DynamoDB UpdateItem costs ~2.4 ms of CPU (boto3: signing,
    # hooks, HTTP), i.e. ~3 ms per 1,000 events of a call at 50 events/s with 15 s (bench/observer.py).
    record_flush_seconds: float = Field(default=15.0, gt=0, le=300)
    # USD per 1M tokens by model and token kind, for each record's estimated cost (JSON, merged over
    # DEFAULT_TOKEN_PRICES; a model missing from both gets no estimate).
    token_prices: dict[str, dict[str, float]] = {}

    # Spend limits (shared/limits.py), counters in the call store: 0 = no limit.
    max_call_minutes_per_day: int = Field(default=0, ge=0, le=1_000_000)  # whole stack, UTC day
    max_calls_per_client_per_hour: int = Field(default=0, ge=0, le=100_000)  # /rtc and /token, by source IP

    # Abuse: web origins allowed to call /rtc and /token (comma-separated, e.g. "https://a.example");
    # empty = any. A request without an Origin header (curl, server-to-server) is not a browser's.
    allowed_origins: str = ""

    # AWS itself (region, credentials, endpoints) is configured by the variables botocore reads
    # (AWS_DEFAULT_REGION, AWS_ENDPOINT_URL[_<SERVICE>], ...): see shared/aws.py.

    @field_validator("tools")
    @classmethod
    def _tool_names(cls, value: str) -> str:
        for name in (n.strip() for n in value.split(",") if n.strip()):
            if not TOOL_NAME_PATTERN.match(name):
                raise ValueError(f"TOOLS: {name[:40]!r} is not a tool name")
        return value

    @field_validator("outbound_allowed_prefixes")
    @classmethod
    def _outbound_prefixes(cls, value: str) -> str:
        for entry in (e.strip() for e in value.split(",") if e.strip()):
            if not OUTBOUND_PREFIX_PATTERN.match(entry):
                raise ValueError(f"{entry[:24]!r} is not an E.164 prefix such as +1415 or +1415*")
        return value

    @field_validator("transcription_model")
    @classmethod
    def _transcription_model(cls, value: str) -> str:
        value = value.strip()
        if value.lower() in ("", TRANSCRIPTION_OFF):
            return ""
        if not MODEL_NAME_PATTERN.match(value):
            raise ValueError("TRANSCRIPTION_MODEL must be a model name (e.g. gpt-live-transcribe) or off")
        return value

    @field_validator("live_model")
    @classmethod
    def _live_model(cls, value: str) -> str:
        value = value.strip()
        if not LIVE_MODEL_PATTERN.match(value):
            raise ValueError("LIVE_MODEL must be a GPT-Live model (gpt-live-1, gpt-live-1.1)")
        return value

    @field_validator("transfer_target")
    @classmethod
    def _transfer_target(cls, value: str) -> str:
        value = value.strip()
        if value and not TRANSFER_TARGET_PATTERN.match(value):
            raise ValueError("TRANSFER_TARGET must be tel:+<E.164 number> or sip:user@host")
        return value

    @field_validator("mcp_servers", mode="before")
    @classmethod
    def _mcp_json(cls, value: Any) -> Any:
        if isinstance(value, str):
            if not value.strip():
                return ()
            try:
                value = json.loads(value)
            except ValueError:
                raise ValueError(
                    "MCP_SERVERS must be a JSON list of {server_label, server_url, ...}"
                ) from None
        if not isinstance(value, list | tuple):
            raise ValueError("MCP_SERVERS must be a JSON list")
        labels = [item.get("server_label") for item in value if isinstance(item, dict)]
        if len(labels) != len(set(labels)):
            raise ValueError("MCP_SERVERS: server_label values must be unique")
        return value

    @field_validator("token_prices", mode="before")
    @classmethod
    def _prices_json(cls, value: Any) -> Any:
        if isinstance(value, str):
            if not value.strip():
                return {}
            try:
                return json.loads(value)
            except ValueError:
                raise ValueError("TOKEN_PRICES must be JSON: {model: {token kind: USD per 1M}}") from None
        return value

    @property
    def tool_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(n.strip() for n in self.tools.split(",") if n.strip()))

    @property
    def instructions(self) -> str:
        return self.realtime_instructions.strip()

    @property
    def backend_instructions(self) -> str:
        return self.live_backend_instructions.strip()

    @property
    def outbound_prefixes(self) -> tuple[str, ...]:
        """OUTBOUND_ALLOWED_PREFIXES without their `*` (every entry is a prefix)."""
        entries = (e.strip().rstrip("*") for e in self.outbound_allowed_prefixes.split(","))
        return tuple(dict.fromkeys(e for e in entries if e))

    @property
    def allowed_origin_list(self) -> tuple[str, ...]:
        return tuple(o.strip().rstrip("/").lower() for o in self.allowed_origins.split(",") if o.strip())

    @property
    def api_base(self) -> str:
        return self.openai_base_url.rstrip("/")

    @property
    def sideband_base(self) -> str:
        """`OPENAI_BASE_URL` with its scheme turned into the WebSocket one (http -> ws, https -> wss)."""
        base = self.api_base
        if base.startswith("https://"):
            return "wss://" + base.removeprefix("https://")
        if base.startswith("http://"):
            return "ws://" + base.removeprefix("http://")
        return base


# The template parameter that sets each variable in AWS, for error messages (tests/test_settings.py
# checks this table against template.yaml).
TEMPLATE_PARAMETERS: dict[str, str] = {
    "ALLOWED_CALLERS": "AllowedCallers",
    "ALLOWED_ORIGINS": "AllowedOrigins",
    "DENIED_CALLERS": "DeniedCallers",
    "HARD_STOP_GRACE_SECONDS": "HardStopGraceSeconds",
    "LIVE_BACKEND_MODEL": "LiveBackendModel",
    "LIVE_MODEL": "LiveModelName",
    "MAX_CALLS_PER_CLIENT_PER_HOUR": "MaxCallsPerClientPerHour",
    "MAX_CALL_MINUTES_PER_DAY": "MaxCallMinutesPerDay",
    "MAX_CALL_SECONDS": "MaxCallSeconds",
    "MAX_CONCURRENT_CALLS": "MaxConcurrentCalls",
    "MCP_SERVERS": "McpServers",
    "OPENAI_API_KEY_SECRET_ARN": "OpenAIApiKeySecretArn",
    "OPENAI_SIGNING_SECRET_ARN": "SigningSecretArn",
    "OUTBOUND_ALLOWED_PREFIXES": "OutboundAllowedPrefixes",
    "OUTBOUND_TRUNK_SECRET_ARN": "OutboundTrunkSecretArn",
    "REALTIME_MODEL": "ModelName",
    "REALTIME_VOICE": "Voice",
    "RECORD_RETENTION_DAYS": "RecordRetentionDays",
    "SECRETS_CACHE_SECONDS": "SecretsCacheSeconds",
    "TOKEN_PRICES": "TokenPrices",
    "TOOLS": "Tools",
    "TRANSCRIPTION_MODEL": "TranscriptionModel",
    "TRANSFER_TARGET": "TransferTarget",
    "VOICE_API": "VoiceApi",
}
# Variables whose value may hold a credential: an error names them but never echoes the value.
SECRET_VARIABLES = frozenset(("OPENAI_API_KEY", "OPENAI_SIGNING_SECRET", "MCP_SERVERS", "OUTBOUND_TRUNK"))
# Gone variables, and where their setting lives now.
MOVED_VARIABLES = {
    "REALTIME_INSTRUCTIONS": "instructions now live in shared/agents.yaml (the `instructions:` of a profile; "
    "`default` answers every other number and the browser)",
}
# Fields a profile sets (shared/agents.py) that the environment must not: prompt text is long, and
# Lambda's environment has 4 KB in all.
PROFILE_ONLY_VARIABLES = {
    "LIVE_BACKEND_INSTRUCTIONS": "a Live profile's backend prompt is `backend_instructions:` in "
    "shared/agents.yaml",
    "LIVE_STORE": "a Live profile stores its sessions (recordings) with `store: true` in shared/agents.yaml",
}


class ConfigError(ServiceError):
    """An invalid setting: one line naming the variable, its template parameter and what it allows."""

    def __init__(self, line: str) -> None:
        super().__init__(f"Server misconfigured: {line}")
        self.line = line


def _parameter_hint(variable: str) -> str:
    parameter = TEMPLATE_PARAMETERS.get(variable)
    return f"template parameter {parameter}" if parameter else "no template parameter: set in the environment"


def _allowed(info: FieldInfo) -> str:
    """What a field takes, in words: its choices, or its number range."""
    choices = typing_args(info.annotation)
    if choices:
        return "allowed values: " + ", ".join(str(choice) for choice in choices)
    bounds = {b: getattr(m, b) for m in info.metadata for b in ("ge", "gt", "le", "lt") if hasattr(m, b)}
    kind = "a whole number" if info.annotation is int else "a number"
    low = f"from {bounds['ge']}" if "ge" in bounds else f"above {bounds['gt']}" if "gt" in bounds else ""
    high = f"at most {bounds['le']}" if "le" in bounds else f"below {bounds['lt']}" if "lt" in bounds else ""
    if info.annotation in (int, float):
        return f"allowed: {kind}" + "".join(f", {part}" for part in (low, high) if part)
    return ""


def typing_args(annotation: Any) -> tuple[Any, ...]:
    from typing import get_args, get_origin

    return get_args(annotation) if get_origin(annotation) is Literal else ()


def describe_invalid(exc: ValidationError) -> str:
    """One line for the first invalid setting: the variable (never a secret's value) and what it allows."""
    error = exc.errors()[0]
    field = str(error["loc"][0]) if error["loc"] else ""
    variable = field.upper()
    info = Settings.model_fields.get(field)
    given = error.get("input")
    shown = "" if variable in SECRET_VARIABLES or not isinstance(given, str) else f"={given[:60]!r}"
    allowed = _allowed(info) if info is not None and len(error["loc"]) == 1 else ""
    reason = allowed or str(error["msg"]).removeprefix("Value error, ").removeprefix(variable).lstrip(": ")
    inner = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"][1:])
    return f"{variable}{inner}{shown} is invalid ({_parameter_hint(variable)}): {reason}"


def load_settings(**overrides: Any) -> Settings:
    """The settings from the environment; any problem is a ConfigError of one line."""
    for variable, where in MOVED_VARIABLES.items():
        if os.environ.get(variable, "").strip():
            raise ConfigError(f"{variable} is no longer read: {where}")
    for variable, where in PROFILE_ONLY_VARIABLES.items():
        if os.environ.get(variable, "").strip():
            raise ConfigError(f"{variable} is not read from the environment: {where}")
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(describe_invalid(exc)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once per container (tests call `get_settings.cache_clear()`)."""
    return load_settings()
