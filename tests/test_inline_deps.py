"""The HTTP routes resolve their dependencies on the event loop: no thread hop per request."""

from __future__ import annotations

import asyncio

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

import observer_http
import rtc_app
import sip_app
import token_app
from shared import deps
from shared.launcher import DisabledObserverLauncher


def _calls(dependant: Dependant) -> list[object]:
    calls: list[object] = []
    for sub in dependant.dependencies:
        calls += [sub.call, *_calls(sub)]
    return calls


@pytest.mark.parametrize("app", [rtc_app.app, token_app.app, sip_app.app, observer_http.app])
def test_every_route_dependency_is_async(app: FastAPI) -> None:
    routes = [route for route in app.routes if isinstance(route, APIRoute)]
    assert routes
    for route in routes:
        calls = _calls(route.dependant)
        assert calls, route.path
        assert all(asyncio.iscoroutinefunction(call) for call in calls), (route.path, calls)


def test_async_twins_return_the_process_singletons(env: pytest.MonkeyPatch) -> None:
    assert asyncio.run(deps.use_settings()) is deps.settings()
    assert asyncio.run(deps.use_secret_store()) is deps.secret_store()
    assert asyncio.run(deps.use_openai_client()) is deps.openai_client()
    assert asyncio.run(deps.use_session_config()) is deps.session_config()
    env.setenv("OBSERVER_LAUNCH", "off")
    deps.reset()
    assert isinstance(asyncio.run(deps.use_observer_launcher()), DisabledObserverLauncher)
