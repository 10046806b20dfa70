"""Measures 2, 3 and 6, in this process, against the fake OpenAI and moto in their own processes.

2. Warm added latency: the whole path (API Gateway v2 event -> Mangum -> FastAPI -> upstream call) timed
   against the same upstream request sent directly with a pooled httpx client, interleaved pair by
   pair, so both see the same machine load; the figure is the median of the pairs' differences. /sip
   includes the signature check and the (in-process) dedupe. Both sides send the same bytes; where
   the route sends them more cheaply than a plain `client.post(path, json=...)` (a body encoded once
   per container, a URL parsed once), that is the route's own work saved and counts to its credit.
   Observer launches are off here: they are a second upstream call. /observer (HTTP) and the page
   call no upstream: their whole time is ours.
3. Connection reuse: TCP connections counted by a relay in front of the fake (and in front of moto's
   Lambda API for the observer launches) over N warm invocations of each function.
6. Webhook to accept: from the moment /sip's handler gets a signed webhook to the moment the fake
   receives the accept (one monotonic clock: Linux shares CLOCK_MONOTONIC across processes).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from bench.procs import AWS_TEST_ENV, OBSERVER_FUNCTION, ConnectionCounter, FakeProcess
from bench.scenarios import API_KEY, ROOT, SIGNING_SECRET, event_call_ids, incoming_call, signed
from shared.tools import Channel
from tests.samples import load_event

for _name in ("rtc", "token", "sip", "observer", "page"):
    sys.path.insert(0, str(ROOT / "functions" / _name))


class Context:
    function_name = "bench"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    aws_request_id = "bench-request"
    log_group_name = "/aws/lambda/bench"
    log_stream_name = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Set env vars for one measurement and rebuild the process singletons (a fresh container)."""
    from shared import deps

    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    deps.reset()
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        deps.reset()


def bench_env(base_url: str, **extra: str) -> dict[str, str]:
    return {
        "OPENAI_BASE_URL": base_url,
        "OPENAI_API_KEY": API_KEY,
        "OPENAI_SIGNING_SECRET": SIGNING_SECRET,
        **AWS_TEST_ENV,
        **extra,
    }


def _session(channel: Channel) -> dict[str, Any]:
    """The session the route itself sends (tools and MCP differ per channel): both sides of a pair
    carry the same body, so the upstream's work on it is not counted as ours."""
    from shared import deps

    return deps.default_session_body(channel)


Case = tuple[Callable[[], dict[str, Any]], Callable[[httpx.AsyncClient], Any]]


def cases(call_ids: Iterator[str]) -> dict[str, Case]:
    """label -> (make the API Gateway event, send the same upstream request directly)."""
    rtc_event, token_event, sip_event = load_event("rtc"), load_event("token"), load_event("sip")
    offer = rtc_event["body"]

    def rtc_direct(client: httpx.AsyncClient) -> Any:
        files = {"sdp": (None, offer), "session": (None, json.dumps(_session("webrtc")))}
        headers = {"Authorization": f"Bearer {API_KEY}"}
        request = client.build_request("POST", "/realtime/calls", files=files, headers=headers)
        request.read()  # one buffer, as `OpenAIClient.create_call` sends it: the same writes on both sides
        return client.send(request)

    def token_direct(client: httpx.AsyncClient) -> Any:
        body = {"expires_after": {"anchor": "created_at", "seconds": 600}, "session": _session("browser")}
        return client.post(
            "/realtime/client_secrets", json=body, headers={"Authorization": f"Bearer {API_KEY}"}
        )

    sip_call = event_call_ids()[1]

    def sip_direct(client: httpx.AsyncClient) -> Any:
        path = f"/realtime/calls/{sip_call}/accept"
        return client.post(path, json=_session("sip"), headers={"Authorization": f"Bearer {API_KEY}"})

    return {
        "/rtc": (lambda: dict(rtc_event), rtc_direct),
        "/token": (lambda: dict(token_event), token_direct),
        "/sip": (lambda: signed(sip_event, body=incoming_call(next(call_ids))), sip_direct),
    }


def handler_for(label: str) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    module = {
        "/rtc": "rtc_app",
        "/token": "token_app",
        "/sip": "sip_app",
        "/observer (HTTP)": "observer_app",
        "page": "page_app",
    }[label]
    return __import__(module).handler  # type: ignore[no-any-return]


@dataclass
class WarmResult:
    label: str
    handler_ms: float
    direct_ms: float  # 0 for routes that make no upstream call (their whole time is ours)
    added_ms: float  # p50 of (full path - direct call), pair by pair


def _check(label: str, result: dict[str, Any]) -> None:
    if result.get("statusCode") not in (200, 202):
        raise RuntimeError(f"{label}: warm call failed: {str(result)[:300]}")


def overhead(fake: FakeProcess, repeats: int, warmup: int = 20) -> list[WarmResult]:
    results = []
    sip_ids = iter(event_call_ids()[1:2] * (repeats + warmup + 5))
    with environment(bench_env(fake.base_url, OBSERVER_LAUNCH="off")):
        loop = asyncio.new_event_loop()
        client = httpx.AsyncClient(base_url=fake.base_url, timeout=10)
        try:
            for label, (make_event, direct) in cases(sip_ids).items():
                handler = handler_for(label)
                events = [make_event() for _ in range(repeats + warmup)]  # signing is OpenAI's work
                via_handler: list[float] = []
                via_httpx: list[float] = []
                for i, event in enumerate(events):
                    # Alternate which goes first: the second request of a pair meets an upstream
                    # that has just served one, which would bias whichever always goes second.
                    if i % 2:
                        started = time.perf_counter()
                        response = loop.run_until_complete(direct(client))
                        middle = time.perf_counter()
                        result = handler(event, Context())
                        ended = time.perf_counter()
                        ours, theirs = ended - middle, middle - started
                    else:
                        started = time.perf_counter()
                        result = handler(event, Context())
                        middle = time.perf_counter()
                        response = loop.run_until_complete(direct(client))
                        ended = time.perf_counter()
                        ours, theirs = middle - started, ended - middle
                    _check(label, result)
                    response.raise_for_status()
                    if i >= warmup:
                        via_handler.append(ours)
                        via_httpx.append(theirs)
                h, d = statistics.median(via_handler) * 1000, statistics.median(via_httpx) * 1000
                added = statistics.median(a - b for a, b in zip(via_handler, via_httpx, strict=True)) * 1000
                results.append(WarmResult(label, h, d, added))
            for label in ("/observer (HTTP)", "page"):  # no upstream call: the whole handler is ours
                handler = handler_for(label)
                event_name = "observer_http" if label != "page" else "page"
                times = []
                for i in range(repeats + warmup):
                    event = load_event(event_name)
                    started = time.perf_counter()
                    _check(label, handler(event, Context()))
                    if i >= warmup:
                        times.append(time.perf_counter() - started)
                own = statistics.median(times) * 1000
                results.append(WarmResult(label, own, 0.0, own))
        finally:
            loop.run_until_complete(client.aclose())
            loop.close()
    return results


@dataclass
class ReuseResult:
    label: str
    invocations: int
    openai_connections: int | None
    lambda_connections: int | None


def connection_reuse(fake: FakeProcess, moto_url: str, invocations: int) -> list[ReuseResult]:
    results = []
    moto_port = int(moto_url.rsplit(":", 1)[1])
    labels = ("/rtc", "/token", "/sip", "/observer (HTTP)")
    sip_ids = iter(event_call_ids()[1:2] * (invocations + 5))
    for label in labels:
        upstream, lam = ConnectionCounter(fake.port), ConnectionCounter(moto_port)
        env = bench_env(
            f"http://127.0.0.1:{upstream.port}/v1",
            OBSERVER_LAUNCH="lambda",
            OBSERVER_FUNCTION_NAME=OBSERVER_FUNCTION,
            AWS_ENDPOINT_URL_LAMBDA=f"http://127.0.0.1:{lam.port}",
        )
        try:
            with environment(env):
                make_event = (
                    cases(sip_ids)[label][0]
                    if label != "/observer (HTTP)"
                    else lambda: load_event("observer_http")
                )
                handler = handler_for(label)
                for _ in range(invocations):
                    _check(label, handler(make_event(), Context()))
        finally:
            upstream.close()
            lam.close()
        launches = label != "/token"
        results.append(
            ReuseResult(
                label,
                invocations,
                upstream.connections if label != "/observer (HTTP)" else None,
                lam.connections if launches else None,
            )
        )
    return results


@dataclass
class WebhookResult:
    median_ms: float
    p90_ms: float
    runs: int
    dedupe: str


def webhook_to_accept(
    fake: FakeProcess, moto_url: str, call_ids: list[str], dedupe: tuple[str, dict[str, str]]
) -> WebhookResult:
    label, dedupe_env = dedupe
    env = bench_env(
        fake.base_url,
        OBSERVER_LAUNCH="lambda",
        OBSERVER_FUNCTION_NAME=OBSERVER_FUNCTION,
        AWS_ENDPOINT_URL_LAMBDA=moto_url,
        **dedupe_env,
    )
    sip_event = load_event("sip")
    delays: list[float] = []
    with environment(env):
        handler = handler_for("/sip")
        # Two warm-up deliveries: a cold container is measure 1's business.
        for i, call_id in enumerate(call_ids):
            event = signed(sip_event, body=incoming_call(call_id))
            fake.command("reset")
            started = time.monotonic()
            _check("/sip", handler(event, Context()))
            accepts = [r for r in fake.stats()["requests"] if r[1].endswith(f"/{call_id}/accept")]
            if len(accepts) != 1:
                raise RuntimeError(f"/sip: expected one accept for {call_id}, saw {len(accepts)}")
            if i >= 2:
                delays.append((accepts[0][2] - started) * 1000)
    delays.sort()
    return WebhookResult(statistics.median(delays), delays[int(0.9 * (len(delays) - 1))], len(delays), label)
