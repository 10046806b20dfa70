"""GPT-Live rows of measures 5, 6 and 7 (issue 18), against the fake (tests/fake_live.py) in its own process.

- 6 (Live): webhook -> accept for a `live.transport.incoming` delivery to `/sip` (a profile on GPT-Live),
  the DynamoDB call store on moto, as the Realtime row: from handing the handler the signed webhook to
  the fake receiving `POST /live/sessions/{id}/accept`.
- 7 (Live): tool turnaround, from the fake sending the inner `response.output_item.done` (the function
  call, wrapped in `response.event`) to it receiving the observer's `response.item.create`.
- 5 (Live): the observer worker (the twin, its own process) through a call whose model talks all along:
  reflected audio both ways (PCM16 24 kHz base64, 50 frames/s each way), streamed `SPEED` times faster
  than real time. CPU per call-minute = the worker's CPU (the whole invocation) / minutes of call
  streamed; peak RSS. The baseline reads a second session with the same script and speed in its own
  process and `json.loads` every frame: the adapter's fast path must cost well under that (<= 0.5x).
  The ratio compares like with like: each side's CPU from its first read to its socket's end (the
  worker's setup, handshake and final record write are in the per-minute figure, not the ratio).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
import uuid
from dataclasses import dataclass
from typing import Any

from bench.artifact import WORK, Build
from bench.observer import run_worker
from bench.procs import FakeProcess
from bench.scenarios import API_KEY, signed
from bench.tools import WARMUP, ping
from bench.warm import Context, WebhookResult, _check, bench_env, environment, handler_for
from tests.samples import live_incoming_call_body, load_event

SPEED = 20  # session seconds per real second: a call-minute streams in 3 s
FRAMES_PER_SECOND = 50  # each way


def session_ids(prefix: str, count: int) -> list[str]:
    return [f"live_bench{prefix}{uuid.uuid4().hex[:12]}{i:04d}" for i in range(count)]


def webhook_to_accept(
    fake: FakeProcess, moto_url: str, runs: int, dedupe: tuple[str, dict[str, str]], launch: dict[str, str]
) -> WebhookResult:
    """Measure 6 for a GPT-Live SIP call: 2 warm-ups, then `runs` deliveries (median, p90)."""
    label, dedupe_env = dedupe
    ids = session_ids("wh", runs + 2)
    fake.command(f"live_pending 1 {' '.join(ids)}")  # each timeline ends a second after its accept
    env = bench_env(fake.base_url, VOICE_API="live", **launch, **dedupe_env)
    sip_event = load_event("sip")
    delays: list[float] = []
    with environment(env):
        handler = handler_for("/sip")
        for i, session_id in enumerate(ids):
            event = signed(sip_event, body=live_incoming_call_body(session_id))
            fake.command("reset")
            started = time.monotonic()
            _check("/sip", handler(event, Context()))
            path = f"/live/sessions/{session_id}/accept"
            accepts = [r for r in fake.stats()["requests"] if r[1].endswith(path)]
            if len(accepts) != 1:
                raise RuntimeError(f"/sip (Live): expected one accept for {session_id}, saw {len(accepts)}")
            if i >= 2:
                delays.append((accepts[0][2] - started) * 1000)
    delays.sort()
    return WebhookResult(statistics.median(delays), delays[int(0.9 * (len(delays) - 1))], len(delays), label)


@dataclass
class LiveToolTurnaround:
    runs: int
    median_ms: float
    p90_ms: float


def tool_turnaround(fake: FakeProcess, runs: int) -> LiveToolTurnaround:
    """Measure 7 on GPT-Live: `runs` calls of a trivial tool (after warm-ups) in one observed session."""
    import observer_app
    from shared import deps
    from shared.tools import available_tools, tool_from_function

    (session_id,) = session_ids("tools", 1)
    fake.command("reset")
    fake.command(f"live_tools 1 {runs + WARMUP} ping {session_id}")
    values = bench_env(fake.base_url, OBSERVER_LAUNCH="off", OBSERVER_GREETING_DELAY_MS="0", TOOLS="ping")
    registry = {**available_tools(), "ping": tool_from_function(ping)}
    with environment(values), deps.tool_registry.override(registry):
        event = load_event("observer_async")
        event.update(call_id=session_id, source="sip", requested_at=time.time(), call_started_at=time.time())
        observer_app.handler(event, Context())
    times = fake.command(f"live_tool_times {session_id}")
    latencies = sorted((answered - sent) * 1000 for _, sent, answered in sorted(times)[WARMUP:])
    if len(latencies) != runs:
        raise RuntimeError(f"Live: {runs + WARMUP - len(times)} tool calls got no output")
    return LiveToolTurnaround(
        len(latencies),
        statistics.median(latencies),
        latencies[min(len(latencies) - 1, int(len(latencies) * 0.9))],
    )


# Connects with the observer's options (observer_session.CallSession.connect: no permessage-deflate);
# the figure is the read loop's CPU only. Once timed, it saves the first KEPT_FRAMES frames it got (the
# stream as the fake sent it) for `frame_work`.
KEPT_FRAMES = 10_000
BASELINE = r"""
import asyncio, json, os, sys, time
layer, url, key, fd, kept_path, kept = sys.argv[1:7]
sys.path[:0] = [layer]
from websockets.asyncio.client import connect
async def main():
    frames, cpu, seen = 0, 0.0, []
    headers = {"Authorization": f"Bearer {key}"}
    async with connect(url, additional_headers=headers, compression=None) as ws:
        cpu = time.process_time()
        async for message in ws:
            json.loads(message)
            frames += 1
            if frames <= int(kept):
                seen.append(message)
        cpu = time.process_time() - cpu
    with open(kept_path, "w") as out:
        json.dump(seen, out)
    return frames, cpu
frames, cpu = asyncio.run(main())
os.write(int(fd), (json.dumps({"frames": frames, "cpu": cpu}) + "\n").encode())
"""


@dataclass
class LiveObserverCost:
    minutes: float
    audio_frames: int  # reflected frames the worker was sent (both ways)
    cpu_ms_per_minute: float  # the whole invocation
    read_cpu_ms_per_minute: float  # first read to the socket's end, as the baseline is timed
    peak_rss_mb: float
    baseline_cpu_ms_per_minute: float  # json.loads of every frame of the same stream
    audio_parses: int  # reflected frames that reached a full JSON parse in the worker (must be 0)

    @property
    def ratio(self) -> float:
        return self.read_cpu_ms_per_minute / self.baseline_cpu_ms_per_minute


def observer_cost(
    python: str, build: Build, fake: FakeProcess, env: dict[str, str], minutes: float, speed: float = SPEED
) -> LiveObserverCost:
    observed, baseline = session_ids("talk", 2)
    fake.command(f"live_talk {speed} {minutes} {observed} {baseline}")
    read, write = os.pipe()
    url = f"{fake.base_url.replace('http', 'ws', 1)}/live/sessions/{baseline}/attach"
    kept = [str(STREAM_FRAMES), str(KEPT_FRAMES)]
    reader = subprocess.Popen(
        [python, "-I", "-B", "-c", BASELINE, str(build.layer), url, API_KEY, str(write), *kept],
        env=env,
        pass_fds=(write,),
        stderr=subprocess.PIPE,
    )
    os.close(write)
    report = run_worker(python, build, env, observed, count_audio_parses=True)
    with os.fdopen(read, "rb") as pipe:
        line = pipe.readline()
    reader.wait(timeout=120)
    if not line:
        stderr = reader.stderr.read().decode()[-2000:] if reader.stderr else ""
        raise RuntimeError(f"Live baseline reader: no result\n{stderr}")
    base = json.loads(line)
    if report["result"].get("outcome") != "closed":
        raise RuntimeError(f"Live observer did not see the whole call: {report['result']}")
    frames = int(fake.command(f"live_audio {observed}"))
    expected = minutes * 60 * FRAMES_PER_SECOND * 2
    if frames < 0.9 * expected:
        raise RuntimeError(f"Live: {frames} reflected frames sent, expected ~{expected:.0f}")
    return LiveObserverCost(
        minutes=minutes,
        audio_frames=frames,
        cpu_ms_per_minute=report["cpu"] * 1000 / minutes,
        read_cpu_ms_per_minute=report["read_cpu"] * 1000 / minutes,
        peak_rss_mb=report["rss_kb"] / 1024,
        baseline_cpu_ms_per_minute=base["cpu"] * 1000 / minutes,
        audio_parses=int(report.get("audio_parses", 0)),
    )


STREAM_FRAMES = WORK / "live-stream.json"  # the baseline reader's first KEPT_FRAMES frames


@dataclass
class FrameWork:
    frames: int
    audio_frames: int
    observer_us: float  # per frame: the worker's frame handling, no socket
    json_loads_us: float  # per frame: json.loads

    @property
    def ratio(self) -> float:
        return self.observer_us / self.json_loads_us


class _Frames:
    """A socket that has received `frames` already: what `_read` iterates, without the socket."""

    def __init__(self, frames: list[str]) -> None:
        self._frames = iter(frames)

    def __aiter__(self) -> _Frames:
        return self

    async def __anext__(self) -> str:
        try:
            return next(self._frames)
        except StopIteration:
            raise StopAsyncIteration from None


def kept_frames() -> list[str]:
    """The frames `observer_cost`'s baseline reader received first (the fake's stream in this run)."""
    frames: list[str] = json.loads(STREAM_FRAMES.read_text())
    return frames


def frame_work(fake: FakeProcess, frames: list[str], repeats: int = 7) -> FrameWork:
    """The observer's own work per frame, apart from the socket: `frames` handed to the worker's
    `_read` for a GPT-Live call built as `_run` builds one (its adapter, tools and record), against
    `json.loads` of each, iterated the same way. CPU time, medians of `repeats` alternating runs, a
    fresh call each time (event ids are acted on once per call)."""
    import asyncio

    import observer_worker
    from shared import deps
    from shared.launcher import ObserveRequest
    from shared.tools import call_tools

    (call_id,) = session_ids("work", 1)

    async def observer() -> None:
        request = ObserveRequest(call_id=call_id, source="sip", requested_at=time.time())
        agent = deps.agents().default
        tools = call_tools(agent.settings, "sip", "live", deps.tool_registry())  # as `_run` chooses them
        call = observer_worker.new_call_session(
            request,
            agent,
            tools,
            store=deps.call_store(),
            owner="bench",
            api_key=API_KEY,
            settings=deps.settings(),
        )
        result = observer_worker.ObserveResult("closed")
        await observer_worker._read(call, _Frames(frames), result)  # type: ignore[arg-type]
        if result.events != len(frames):
            raise RuntimeError(f"Live frame work: {result.events} of {len(frames)} frames handled")

    async def baseline() -> None:
        async for message in _Frames(frames):
            json.loads(message)

    def cpu(run: Any) -> float:
        started = time.process_time()
        asyncio.run(run())
        return (time.process_time() - started) / len(frames) * 1e6

    ours: list[float] = []
    theirs: list[float] = []
    with environment(bench_env(fake.base_url, OBSERVER_LAUNCH="off")):
        for i in range(repeats + 1):  # the first pair warms up; then alternating which goes first
            if i % 2:
                loads_us, observer_us = cpu(baseline), cpu(observer)
            else:
                observer_us, loads_us = cpu(observer), cpu(baseline)
            if i:
                ours.append(observer_us)
                theirs.append(loads_us)
    audio = sum(
        1 for f in frames if "session.input_audio.append" in f[:120] or "output_audio.delta" in f[:120]
    )
    return FrameWork(len(frames), audio, statistics.median(ours), statistics.median(theirs))


def main(argv: list[str] | None = None) -> int:
    """The GPT-Live rows alone (`python -m bench.live`): reuses earlier builds of the twin."""
    import argparse

    from bench import artifact
    from bench.procs import OBSERVER_FUNCTION, clean_env, fake_openai, moto_server
    from bench.run import dedupe_config

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--minutes", type=float, default=5.0, help="call-minutes streamed (measure 5)")
    parser.add_argument("--webhooks", type=int, default=60)
    parser.add_argument("--tools", type=int, default=100)
    parser.add_argument(
        "--speed", type=float, default=SPEED, help="session seconds per real second (1: real time)"
    )
    args = parser.parse_args(argv)
    python = artifact.python313()
    optimised, _ = artifact.build_all(python, reuse=True)
    with moto_server() as moto_url, fake_openai([]) as fake:
        launch = {"OBSERVER_LAUNCH": "lambda", "OBSERVER_FUNCTION_NAME": OBSERVER_FUNCTION}
        launch["AWS_ENDPOINT_URL_LAMBDA"] = moto_url
        webhook = webhook_to_accept(fake, moto_url, args.webhooks, dedupe_config(moto_url), launch)
        tools = tool_turnaround(fake, args.tools)
        openai = {"OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": API_KEY}
        env = clean_env(POWERTOOLS_SERVICE_NAME="bench", **openai)
        cost = observer_cost(python, optimised, fake, env, args.minutes, args.speed)
        work = frame_work(fake, kept_frames())
    report = {
        "webhook_to_accept_ms": round(webhook.median_ms, 2),
        "tool_turnaround_ms": round(tools.median_ms, 2),
        "observer_cpu_ms_per_minute": round(cost.cpu_ms_per_minute, 1),
        "observer_read_cpu_ms_per_minute": round(cost.read_cpu_ms_per_minute, 1),
        "baseline_cpu_ms_per_minute": round(cost.baseline_cpu_ms_per_minute, 1),
        "ratio": round(cost.ratio, 2),
        "frame_work_us": [round(work.observer_us, 2), round(work.json_loads_us, 2)],
        "frame_work_ratio": round(work.ratio, 2),
        "audio_frames": cost.audio_frames,
        "audio_parses": cost.audio_parses,
        "peak_rss_mb": round(cost.peak_rss_mb, 1),
    }
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
