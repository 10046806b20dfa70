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
from shared.secrets import SecretStore
from shared.session import SessionConfig, make_session
from shared.settings import Settings, get_settings
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
    launcher = LambdaObserverLauncher(get_settings().observer_function_name)
    launcher.prepare()  # the boto3 client builds while the request talks to OpenAI
    return launcher


def install_local_launcher(launcher: ObserverLauncher | None) -> None:
    """Used by the local server: observers run as background work in the same process."""
    global _local_launcher
    _local_launcher = launcher


def reset() -> None:
    """Forget every singleton (tests change the environment between cases)."""
    for cached in (get_settings, secret_store, openai_client, session_config, _lambda_launcher):
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
