"""One TLS context per process: every outgoing connection verifies against the same loaded CA bundle."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import observer_worker
from shared import tls
from shared.launcher import ObserveRequest
from shared.secrets import SecretStore
from shared.settings import Settings
from shared.upstream import OpenAIClient


def _pool_context(client: Any) -> Any:
    return client._transport._pool._ssl_context  # httpx -> httpcore pool: what its connections use


def test_the_openai_client_uses_the_shared_context(env: pytest.MonkeyPatch) -> None:
    # (AWS calls go through boto3, which keeps its own verified TLS setup.)
    settings = Settings(openai_base_url="https://api.openai.example/v1")
    openai = OpenAIClient(settings, SecretStore(settings))

    async def http_client() -> Any:
        return openai._http()

    assert _pool_context(asyncio.run(http_client())) is tls.client_context()


@pytest.mark.parametrize(
    ("url", "shared"), [("wss://api.openai.example/v1/realtime", True), ("ws://x/", False)]
)
def test_sideband_uses_the_shared_context_for_wss(url: str, shared: bool) -> None:
    seen: dict[str, Any] = {}

    async def connect(target: str, **kwargs: Any) -> Any:
        seen.update(kwargs)
        raise OSError("not connecting in this test")

    async def run() -> None:
        request = ObserveRequest(call_id="rtc_tls", source="api")
        call = observer_worker.CallSession(request, url=url, api_key="sk-test")
        await observer_worker.observe(call, observer_worker.Timing(time_budget=1), connect=connect)

    with pytest.raises(OSError, match="not connecting"):
        asyncio.run(run())
    assert (seen.get("ssl") is tls.client_context()) is shared
