"""Process-wide singletons, built once per warm container and injectable for tests.

Routes call these (`deps.openai_client()`); a test swaps one for the length of a `with` block
(`with deps.openai_client.override(client): ...`, e.g. an `OpenAIClient` on an `httpx.MockTransport`)
instead of patching. `reset()` forgets them all (tests change the environment between cases).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

from shared.launcher import (
    DisabledObserverLauncher,
    LambdaObserverLauncher,
    ObserverLauncher,
)
from shared.policy import CallerPolicy
from shared.secrets import SecretStore
from shared.session import SessionConfig, make_session
from shared.settings import Settings, get_settings
from shared.store import CallStore, DynamoCallStore, MemoryCallStore
from shared.tools import Channel, Tool, available_tools
from shared.upstream import OpenAIClient

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
def session_config() -> SessionConfig:
    return make_session(get_settings())


@Singleton
def sessions() -> dict[Channel, SessionConfig]:
    """The session of each channel (`deps.sessions()["sip"]`): tools and MCP differ per channel."""
    settings = get_settings()
    registry = tool_registry()
    return {channel: make_session(settings, channel, registry) for channel in ("sip", "webrtc", "browser")}


@Singleton
def tool_registry() -> dict[str, Tool]:
    """Every tool `TOOLS` may name: the built-ins and shared/my_tools.py (tests add their own)."""
    return available_tools()


@Singleton
def call_store() -> CallStore:
    """DynamoDB in AWS (shared by every instance); one in-process store for `make dev` and tests."""
    settings = get_settings()
    if settings.call_store == "dynamodb":
        from shared import aws  # only when configured: local runs never load it

        # AWS_ENDPOINT_URL_DYNAMODB points it at a local DynamoDB or moto_server.
        return DynamoCallStore(
            settings.calls_table_name,
            aws.client("dynamodb", settings),
            lock_seconds=settings.webhook_lock_seconds,
        )
    return MemoryCallStore(lock_seconds=settings.webhook_lock_seconds)


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


def install_local_launcher(launcher: ObserverLauncher | None) -> None:
    """Used by the local server: observers run as background work in the same process."""
    global _local_launcher
    _local_launcher = launcher


def reset() -> None:
    """Forget every singleton (tests change the environment between cases)."""
    get_settings.cache_clear()
    for singleton in (
        secret_store,
        openai_client,
        session_config,
        sessions,
        tool_registry,
        _lambda_launcher,
        call_store,
        caller_policy,
    ):
        singleton.reset()
