"""Process-wide singletons, built once per warm container and injectable for tests.

Routes call these (`deps.openai_client()`); a test swaps one for the length of a `with` block
(`with deps.openai_client.override(client): ...`, e.g. an `OpenAIClient` on an `httpx.MockTransport`)
instead of patching. `reset()` forgets them all (tests change the environment between cases).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from shared import background, snapstart
from shared.hard_stop import HardStop
from shared.launcher import (
    DisabledObserverLauncher,
    LambdaObserverLauncher,
    ObserverLauncher,
)
from shared.log import logger
from shared.policy import CallerPolicy
from shared.secrets import SecretStore
from shared.session import SessionConfig, check_sip_session, make_session
from shared.settings import Settings, VoiceApi, get_settings
from shared.store import CallStore, DynamoCallStore, MemoryCallStore
from shared.tools import Channel, Tool, available_tools
from shared.upstream import EncodedJson, OpenAIClient

if TYPE_CHECKING:  # imported where first used: not every function routes calls or keeps records
    from shared.agents import Agents
    from shared.records import RecordStore

CHANNELS: tuple[Channel, ...] = ("sip", "webrtc", "browser")

T = TypeVar("T")


class Singleton(Generic[T]):
    """Decorates a builder: run once per process (thread-safe), unless a test put an override in place."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._built: list[T] = []  # a list, so that "not built yet" differs from any built value
        self._overrides: list[T] = []

    def __call__(self) -> T:
        if self._overrides:
            return self._overrides[-1]
        if not self._built:
            with self._lock:
                if not self._built:
                    self._built.append(self._build())
        return self._built[0]

    def peek(self) -> T | None:
        """The built value (or the override in place), without building it."""
        if self._overrides:
            return self._overrides[-1]
        return self._built[0] if self._built else None

    def reset(self) -> None:
        with self._lock:
            self._built.clear()

    @contextmanager
    def override(self, value: T) -> Iterator[T]:
        """`value` stands in for the singleton inside the block (tests)."""
        self._overrides.append(value)
        try:
            yield value
        finally:
            self._overrides.remove(value)


_local_launcher: ObserverLauncher | None = None


def settings() -> Settings:
    return get_settings()


@Singleton
def secret_store() -> SecretStore:
    return SecretStore(get_settings())


@Singleton
def openai_client() -> OpenAIClient:
    return OpenAIClient(get_settings(), secret_store())


@Singleton
def agents() -> Agents:
    """The agent profiles (agents.yaml, shared/agents.py), read and checked once per container; an
    invalid file raises (500 "Server misconfigured: agents.yaml: ...") on every use, never half-loads."""
    from shared.agents import load_agents  # ~10 ms: hangup and the records API never route a call

    return load_agents(get_settings(), tool_registry())


@Singleton
def agent_sessions() -> dict[str, dict[Channel, SessionConfig]]:
    """The session of each agent profile and channel: tools and MCP differ per channel."""
    registry = tool_registry()
    return {
        name: {channel: make_session(agent.settings, channel, registry) for channel in CHANNELS}
        for name, agent in agents().profiles.items()
    }


def session_for(agent: str, channel: Channel) -> SessionConfig:
    """`agent`'s session on `channel` (`agent` is a name from `agents()`, so it is always there)."""
    return agent_sessions()[agent][channel]


@Singleton
def _session_bodies() -> dict[tuple[str, Channel], dict[str, Any]]:
    """Every profile's session on every channel as JSON, dumped once per container (a pydantic dump per
    request is measurable on the warm path). Shared: callers send them and never mutate them."""
    return {
        (name, channel): session.to_json()
        for name, by_channel in agent_sessions().items()
        for channel, session in by_channel.items()
    }


def session_body(agent: str, channel: Channel) -> dict[str, Any]:
    """`session_for(agent, channel)` as JSON (`agent` is a name from `agents()`)."""
    return _session_bodies()[agent, channel]


def default_session_body(channel: Channel) -> dict[str, Any]:
    """The default profile's `session_body` (/rtc, /token)."""
    from shared.agents import DEFAULT

    return session_body(DEFAULT, channel)


@Singleton
def sip_accept_bodies() -> dict[str, EncodedJson]:
    """The SIP accept body of each profile, in the shape of its API, built, checked and encoded once per
    container: GPT-Live's wraps its session (`{"session": {"type": "live", ...}}`), Realtime's is the
    session."""
    from shared.live_session import accept_body, live_session

    registry = tool_registry()
    return {
        name: EncodedJson.of(
            accept_body(live_session(agent.settings, "sip", registry)).to_json()
            if agent.settings.voice_api == "live"
            else check_sip_session(session_body(name, "sip"))
        )
        for name, agent in agents().profiles.items()
    }


def sip_accept_body(agent: str) -> EncodedJson:
    """The accept body of a SIP call routed to `agent`, as JSON bytes."""
    return sip_accept_bodies()[agent]


def sessions() -> dict[Channel, SessionConfig]:
    """The default profile's session of each channel (`deps.sessions()["webrtc"]`: /rtc and /token)."""
    from shared.agents import DEFAULT

    return agent_sessions()[DEFAULT]


def browser_api(asked: VoiceApi | None = None) -> VoiceApi:
    """The voice API of a browser call (/rtc, /token): the one the page asked for (`?api=`), else the
    default profile's (`VOICE_API`, or `api:` in agents.yaml; the page function reads the same)."""
    return asked or agents().default.settings.voice_api


@Singleton
def tool_registry() -> dict[str, Tool]:
    """Every tool `TOOLS` may name: the built-ins and shared/my_tools.py (tests add their own)."""
    return available_tools()


@Singleton
def call_store() -> CallStore:
    """DynamoDB in AWS (shared by every instance); one in-process store for `make dev` and tests."""
    settings = get_settings()
    if settings.call_store == "dynamodb":
        from shared import aws  # boto3 only when configured: local runs never load it

        # AWS_ENDPOINT_URL_DYNAMODB points it at a local DynamoDB or moto_server.
        return DynamoCallStore(
            settings.calls_table_name,
            aws.client("dynamodb"),
            lock_seconds=settings.webhook_lock_seconds,
        )
    return MemoryCallStore(lock_seconds=settings.webhook_lock_seconds)


@Singleton
def record_store() -> RecordStore:
    """Call records: DynamoDB (RECORDS_TABLE_NAME) when CALL_STORE=dynamodb, else one in-process store
    that the local server's observers and its /calls routes share."""
    from shared.records import (  # ~5 ms: only the observer and the records API keep records
        DynamoRecordStore,
        MemoryRecordStore,
        RecordPolicy,
        merged_prices,
    )

    settings = get_settings()
    policy = RecordPolicy(settings.record_retention_days, merged_prices(settings.token_prices))
    if settings.call_store == "dynamodb":
        from shared import aws

        return DynamoRecordStore(settings.records_table_name, aws.client("dynamodb"), policy)
    return MemoryRecordStore(policy)


@Singleton
def hard_stop() -> HardStop:
    """Each call's hangup schedule (EventBridge Scheduler); a no-op without HANGUP_FUNCTION_ARN."""
    return HardStop(get_settings())


@Singleton
def caller_policy() -> CallerPolicy:
    return CallerPolicy.from_settings(get_settings())


def observer_launcher() -> ObserverLauncher:
    mode = get_settings().observer_launch
    if mode == "off":
        return DisabledObserverLauncher()
    if mode == "local":
        if _local_launcher is None:
            raise RuntimeError(
                "OBSERVER_LAUNCH=local needs the local server (make dev) to install a launcher"
            )
        return _local_launcher
    return _lambda_launcher()


@Singleton
def _lambda_launcher() -> LambdaObserverLauncher:
    return LambdaObserverLauncher(get_settings().observer_function_name)


def prepare_call_start() -> None:
    """Start building the AWS clients a call start needs (observer launch, hard stop) in background
    threads: /rtc and /sip call this before they wait on OpenAI. Returns at once."""
    observer_launcher().prepare()
    hard_stop().prepare()


def install_local_launcher(launcher: ObserverLauncher | None) -> None:
    """Used by the local server: observers run as background work in the same process."""
    global _local_launcher
    _local_launcher = launcher


def warm() -> list[str]:
    """Build every singleton and AWS client this function's settings call for, opening no connection
    and reading no secret (a SnapStart init, `shared.snapstart`). Synchronous, unlike the call-start
    `prepare()`s: nothing may still be running when the snapshot is taken. What cannot be built is left
    to the first request, which then answers the same clear error it would have anyway. Answers the
    names built."""
    from shared import aws

    settings = get_settings()
    wanted: list[tuple[str, Callable[[], object]]] = [
        # The agent profiles and their sessions; the tool registry too (shared/my_tools.py is imported).
        ("agent_sessions", agent_sessions),
        ("sip_accept_bodies", sip_accept_bodies),
        ("openai_client", openai_client),
        ("caller_policy", caller_policy),
        ("secret_store", lambda: secret_store().prepare()),
        ("hard_stop", hard_stop),
    ]
    if settings.call_store == "dynamodb":
        # Each only where the function is given its table (the records API has no calls table).
        if settings.calls_table_name:
            wanted.append(("call_store", call_store))
        if settings.records_table_name:
            wanted.append(("record_store", record_store))
    if settings.observer_launch == "lambda" and settings.observer_function_name:
        wanted.append(("observer_launcher", lambda: (_lambda_launcher(), aws.client("lambda"))))
    if hard_stop().enabled:
        wanted.append(("scheduler", lambda: aws.client("scheduler")))
    if settings.recordings_bucket_name:
        wanted.append(("s3", lambda: aws.client("s3")))
    built = []
    for name, build in wanted:
        try:
            build()
        except Exception as exc:  # init must not fail over what the first request reports better
            logger.warning("not warmed at init", extra={"singleton": name, "error": type(exc).__name__})
        else:
            built.append(name)
    return built


def forget_secrets_and_connections() -> None:
    """Drop every cached secret value and pooled connection (SnapStart hooks, `shared.snapstart`): the
    next request reads secrets again and opens new connections."""
    from shared import aws

    store = secret_store.peek()
    if store is not None:
        store.clear_cache()
    client = openai_client.peek()
    if client is not None:
        client.drop_connections()
    aws.close_connections()


def settle(timeout: float) -> None:
    """Wait (bounded) for call-start work still running in the background, such as a hard-stop
    schedule being created: Lambda freezes the container when the handler returns."""
    stop = hard_stop.peek()
    if stop is not None:
        stop.settle(timeout)


# SnapStart warms the singletons at init and forgets secrets and connections around a snapshot; every
# invocation waits (bounded) for call-start work left in the background. Registered by importing this.
snapstart.on_init(warm)
snapstart.on_restore(forget_secrets_and_connections)
background.on_settle(settle)


def reset() -> None:
    """Forget every singleton and AWS client (tests change the environment between cases)."""
    from shared import aws

    get_settings.cache_clear()
    aws.reset()
    for singleton in (
        secret_store,
        openai_client,
        agents,
        agent_sessions,
        sip_accept_bodies,
        _session_bodies,
        tool_registry,
        _lambda_launcher,
        call_store,
        record_store,
        hard_stop,
        caller_policy,
    ):
        singleton.reset()
