"""The HTTP functions resolve the process singletons on the event loop (no thread hop per request)."""

from __future__ import annotations

import asyncio

import pytest
from fastapi import FastAPI

import rtc_app
import sip_app
import token_app
from shared import deps


@pytest.mark.parametrize("app", [rtc_app.app, token_app.app, sip_app.app])
def test_providers_are_served_by_async_twins_returning_the_same_singletons(
    app: FastAPI, env: pytest.MonkeyPatch
) -> None:
    for provider in (deps.settings, deps.secret_store, deps.openai_client, deps.session_config):
        twin = app.dependency_overrides[provider]
        assert asyncio.iscoroutinefunction(twin)
        assert asyncio.run(twin()) is provider()


def test_an_override_set_by_a_test_wins() -> None:
    app = FastAPI()
    app.dependency_overrides[deps.settings] = lambda: "mine"
    deps.serve_inline(app)
    assert app.dependency_overrides[deps.settings]() == "mine"
    assert asyncio.iscoroutinefunction(app.dependency_overrides[deps.openai_client])
