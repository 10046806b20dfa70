"""Process-wide singletons, built once per warm container and injectable for tests.

FastAPI routes take these through `Depends(...)`, so a test can swap any of them with
`app.dependency_overrides` (e.g. an `OpenAIClient` on an `httpx.MockTransport`) instead of patching.
"""

from __future__ import annotations

from functools import lru_cache

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
from shared.upstream import OpenAIClient

_local_launcher: ObserverLauncher | None = None


def settings() -> Settings:
    return get_settings()


@lru_cache(maxsize=1)
def secret_store() -> SecretStore:
    return SecretStore(get_settings())


@lru_cache(maxsize=1)
def openai_client() -> OpenAIClient:
    return OpenAIClient(get_settings(), secret_store())


@lru_cache(maxsize=1)
def session_config() -> SessionConfig:
    return make_session(get_settings())


@lru_cache(maxsize=1)
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


@lru_cache(maxsize=1)
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


@lru_cache(maxsize=1)
def _lambda_launcher() -> LambdaObserverLauncher:
    return LambdaObserverLauncher(get_settings().observer_function_name)


def install_local_launcher(launcher: ObserverLauncher | None) -> None:
    """Used by the local server: observers run as background work in the same process."""
    global _local_launcher
    _local_launcher = launcher


def reset() -> None:
    """Forget every singleton (tests change the environment between cases)."""
    for cached in (
        get_settings,
        secret_store,
        openai_client,
        session_config,
        _lambda_launcher,
        call_store,
        caller_policy,
    ):
        cached.cache_clear()


# FastAPI runs a plain `def` dependency in a worker thread: a thread hop per dependency per request
# (measured by `make bench`), for what is a cached lookup. Routes take these async twins instead,
# which run on the event loop; code outside FastAPI calls the plain functions above.
async def use_settings() -> Settings:
    return settings()


async def use_secret_store() -> SecretStore:
    return secret_store()


async def use_openai_client() -> OpenAIClient:
    return openai_client()


async def use_session_config() -> SessionConfig:
    return session_config()


async def use_observer_launcher() -> ObserverLauncher:
    return observer_launcher()


async def use_call_store() -> CallStore:
    return call_store()


async def use_caller_policy() -> CallerPolicy:
    return caller_policy()
