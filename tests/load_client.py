"""Load client for tests/test_load.py, run as its own process so it does not share the server's GIL.

    python -m tests.load_client rtc URL TOTAL CLIENTS      (body: the sample SDP offer)
    python -m tests.load_client sip URL TOTAL CLIENTS      (signed with LOAD_SIGNING_SECRET)

Prints one JSON object: per-request status (or error text), latencies in seconds, elapsed seconds.
Bounded: TOTAL requests and a 60 s cap.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
from standardwebhooks import Webhook

from tests.conftest import incoming_call_body, load_event

CAP_SECONDS = 60.0
Send = Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]


async def drive(
    url: str, total: int, clients: int, send: Send, expect: Callable[[httpx.Response], bool]
) -> dict[str, Any]:
    results: list[str] = [""] * total
    latencies: list[float] = []
    queue = iter(range(total))

    async def worker(client: httpx.AsyncClient) -> None:
        for index in queue:  # shared iterator: each index is taken by exactly one worker
            started = time.perf_counter()
            try:
                response = await send(client, index)
                results[index] = "ok" if expect(response) else f"{response.status_code} {response.text[:80]}"
            except Exception as exc:
                results[index] = repr(exc)[:120]
            latencies.append(time.perf_counter() - started)

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        async with asyncio.timeout(CAP_SECONDS):
            await asyncio.gather(*(worker(client) for _ in range(clients)))
    return {"results": results, "latencies": latencies, "elapsed": time.perf_counter() - started}


def rtc(url: str, total: int, clients: int) -> dict[str, Any]:
    offer = str(load_event("rtc")["body"]).encode()

    async def send(client: httpx.AsyncClient, index: int) -> httpx.Response:
        return await client.post("/rtc", content=offer, headers={"content-type": "application/sdp"})

    return asyncio.run(
        drive(url, total, clients, send, lambda r: r.status_code == 200 and r.text.startswith("v=0"))
    )


def sip(url: str, total: int, clients: int) -> dict[str, Any]:
    hook = Webhook(os.environ["LOAD_SIGNING_SECRET"])

    async def send(client: httpx.AsyncClient, index: int) -> httpx.Response:
        body = incoming_call_body(f"rtc_load{index:06d}")
        now = datetime.now(tz=UTC)
        msg_id = f"msg_load{index:06d}"
        headers = {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": hook.sign(msg_id, now, body.decode()),
        }
        return await client.post("/sip", content=body, headers=headers)

    return asyncio.run(drive(url, total, clients, send, lambda r: r.status_code == 200))


def main(argv: list[str]) -> None:
    mode, url, total, clients = argv[0], argv[1], int(argv[2]), int(argv[3])
    run = {"rtc": rtc, "sip": sip}[mode]
    print(json.dumps(run(url, total, clients)))


if __name__ == "__main__":
    main(sys.argv[1:])
