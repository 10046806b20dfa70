"""Measure 7: a tool call's turnaround in the observer (in this process; the fake in its own).

From the moment the fake has sent `response.function_call_arguments.done` to the moment it receives
the observer's `function_call_output` for that call (one monotonic clock, shared by processes on
Linux), for a trivial tool: the observer's own cost of a tool call (parse, the call-store record,
validation, the task, the send) plus two loopback hops.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from pydantic import BaseModel

from bench.procs import FakeProcess
from bench.warm import Context, bench_env, environment
from tests.samples import load_event

CALL_ID = "rtc_benchtools0001"  # the fake must know it (bench.run registers it)
WARMUP = 3


class PingArgs(BaseModel):
    pass


async def ping(args: PingArgs) -> str:
    """Answer pong."""
    return "pong"


@dataclass
class ToolTurnaround:
    runs: int
    median_ms: float
    p90_ms: float


def turnaround(fake: FakeProcess, runs: int) -> ToolTurnaround:
    """`runs` calls of a trivial tool (after a few warm-ups) in one observed call; their turnaround."""
    import observer_app
    from shared import deps
    from shared.tools import available_tools, tool_from_function

    fake.command("reset")
    fake.command(f"tools {runs + WARMUP} ping")
    values = bench_env(fake.base_url, OBSERVER_LAUNCH="off", OBSERVER_GREETING_DELAY_MS="0", TOOLS="ping")
    # The built-ins stay known: the shipped agents.yaml names them (TOOLS=ping offers only ping).
    registry = {**available_tools(), "ping": tool_from_function(ping)}
    with environment(values), deps.tool_registry.override(registry):
        event = load_event("observer_async")
        event.update(call_id=CALL_ID, source="sip", requested_at=time.time(), call_started_at=time.time())
        observer_app.handler(event, Context())
    times = fake.command("tool_times")
    fake.command("script 0 0 0.5")
    latencies = sorted((answered - sent) * 1000 for _, sent, answered in times[WARMUP:])
    if len(latencies) != runs:
        raise RuntimeError(f"{runs + WARMUP - len(times)} tool calls got no output")
    return ToolTurnaround(
        runs=len(latencies),
        median_ms=statistics.median(latencies),
        p90_ms=latencies[min(len(latencies) - 1, int(len(latencies) * 0.9))],
    )
