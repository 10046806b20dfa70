"""Load against the local server on 127.0.0.1: 2,000 /rtc offers at 50 concurrent clients, then 500
signed webhooks at 20. Zero errors, every accept happens exactly once, p50/p99 printed.

The clients run in their own process (tests/load_client.py) so they do not share this process's GIL
with the server and the fake OpenAI. Each phase is bounded by its count and a 60 s cap (and a 90 s
subprocess timeout). The latencies are this machine's, with the fake in the same process as the
gateway: an upper bound, not a Lambda figure.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local_api.server import LocalServer, create_gateway
from shared import deps
from tests import tally
from tests.conftest import SIGNING_SECRET, RecordingLauncher
from tests.fake_openai import FakeOpenAI

REPO = Path(__file__).resolve().parent.parent
RTC_REQUESTS, RTC_CLIENTS = 2000, 50
SIP_REQUESTS, SIP_CLIENTS = 500, 20


@pytest.fixture
def server(env: pytest.MonkeyPatch) -> Iterator[tuple[LocalServer, RecordingLauncher]]:
    with LocalServer(create_gateway()) as running:
        recording = RecordingLauncher()
        deps.install_local_launcher(recording)  # count observer starts instead of opening 2,500 sidebands
        yield running, recording


def load(mode: str, url: str, total: int, clients: int) -> dict[str, Any]:
    done = subprocess.run(  # noqa: S603 - fixed arguments, our own module
        [sys.executable, "-m", "tests.load_client", mode, url, str(total), str(clients)],
        cwd=REPO,
        env={**os.environ, "LOAD_SIGNING_SECRET": SIGNING_SECRET},
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, Any] = json.loads(done.stdout)
    assert len(result["results"]) == total
    assert len(result["latencies"]) == total
    return result


def summary(result: dict[str, Any], total: int, clients: int) -> str:
    latencies = result["latencies"]
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return (
        f"{total} at {clients} clients in {result['elapsed']:.1f} s ({total / result['elapsed']:.0f}/s), "
        f"p50={cuts[49] * 1000:.1f} ms p99={cuts[98] * 1000:.1f} ms max={max(latencies) * 1000:.1f} ms"
    )


def test_load_rtc_then_sip(server: tuple[LocalServer, RecordingLauncher], fake: FakeOpenAI) -> None:
    running, launched = server

    result = load("rtc", running.url, RTC_REQUESTS, RTC_CLIENTS)
    errors = [r for r in result["results"] if r != "ok"]
    assert errors == [], errors[:5]
    assert len(fake.requests_to("/realtime/calls")) == RTC_REQUESTS  # no retries, nothing lost
    rtc_ids = Counter(r.call_id for r in launched.requests if r.source == "webrtc")
    assert sum(rtc_ids.values()) == RTC_REQUESTS
    assert set(rtc_ids) == fake.known_calls  # every call the fake created got exactly one observer
    assert max(rtc_ids.values()) == 1
    tally.record(
        "load /rtc",
        note=summary(result, RTC_REQUESTS, RTC_CLIENTS),
        requests=RTC_REQUESTS,
        errors=len(errors),
        lost=len(fake.known_calls - set(rtc_ids)),
        duplicated=sum(n - 1 for n in rtc_ids.values()),
    )

    call_ids = [f"rtc_load{index:06d}" for index in range(SIP_REQUESTS)]  # what load_client sends
    for call_id in call_ids:
        fake.register_call(call_id)
    result = load("sip", running.url, SIP_REQUESTS, SIP_CLIENTS)
    errors = [r for r in result["results"] if r != "ok"]
    assert errors == [], errors[:5]
    accepts = fake.requests_to("/accept")
    accepted = Counter(r.path.split("/")[-2] for r in accepts)
    lost = [c for c in call_ids if accepted[c] == 0]
    duplicated = [c for c, n in accepted.items() if n > 1]
    assert (lost, duplicated) == ([], [])
    assert set(accepted) == set(call_ids)
    assert all(r.json is not None and r.json["type"] == "realtime" for r in accepts)
    sip_ids = Counter(r.call_id for r in launched.requests if r.source == "sip")
    assert set(sip_ids) == set(call_ids)
    assert max(sip_ids.values()) == 1
    tally.record(
        "load /sip (signed webhooks)",
        note=summary(result, SIP_REQUESTS, SIP_CLIENTS),
        requests=SIP_REQUESTS,
        errors=len(errors),
        lost=len(lost),
        duplicated=len(duplicated),
    )
