"""Process-wide singletons, built once per warm container and injectable for tests.

FastAPI routes take these through `Depends(...)`, so a test can swap any of them with
`app.dependency_overrides` (e.g. an `OpenAIClient` on an `httpx.MockTransport`) instead of patching.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from shared.launcher import (
    DisabledObserverLauncher,
    LambdaObserverLauncher,
    ObserverLauncher,
)
from shared.secrets import SecretStore
from shared.session import SessionConfig, make_session
from shared.settings import Settings, get_settings
from shared.upstream import OpenAIClient

if TYPE_CHECKING:
    from fastapi import FastAPI

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
    for cached in (get_settings, secret_store, openai_client, session_config, _lambda_launcher):
        cached.cache_clear()


def _inline(provider: Callable[[], Any]) -> Callable[[], Awaitable[Any]]:
    async def dependency() -> Any:
        return provider()

    return dependency


def serve_inline(app: FastAPI) -> None:
    """Resolve these providers on the event loop instead of in a worker thread.

    FastAPI runs every plain `def` dependency through a thread pool: a thread hop per dependency per
    request (~0.1 ms each, measured by `make bench`), for what is a cached lookup here. Routes keep
    `Depends(deps.x)` (so a test can still override `deps.x`); the app maps each to an async twin.
    """
    for provider in (settings, secret_store, openai_client, session_config, observer_launcher):
        app.dependency_overrides.setdefault(provider, _inline(provider))
