"""Measure 5: the observer worker's peak memory and CPU while a long call streams through it.

The worker runs from the optimised twin in its own python3.13 process (what a 128 MB Lambda hosts),
while the fake plays `realistic_script()` (10 minutes of a call at ~50 events/s) as fast as the socket
takes it. CPU is the worker process's own CPU time for the invocation (imports excluded: they are
measure 1); peak RSS is the whole process's high-water mark, imports included.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import IO, Any

from bench.artifact import Build
from bench.procs import FakeProcess
from tests.samples import load_event

CHILD = r"""
import json, os, sys, time
task, layer, runtime, fd, call_id, count_audio_parses = sys.argv[1:7]
sys.path[:0] = [task, layer, runtime]
import observer_app, observer_worker  # imports first: their cost is the cold start's
audio_parses = 0
if count_audio_parses == "1":  # GPT-Live: reflected audio must never reach a full JSON parse
    import shared.voice_api.live as live_adapter
    parse = live_adapter.json_event
    def counting_parse(message):
        global audio_parses
        head = message[:120] if isinstance(message, str) else message[:120].decode("utf-8", "replace")
        audio_parses += "session.input_audio.append" in head or "session.output_audio.delta" in head
        return parse(message)
    live_adapter.json_event = counting_parse
# The steady state, as the GPT-Live baseline times its own read loop: the CPU from the first sideband read
# to the end of the last socket's (everything running meanwhile included: greeting, tools, record writes);
# setup, the handshake and the call's final record write fall outside, as the baseline's connect does.
read_window = [None, None]
timed = observer_worker._read
async def timed_read(*args):
    if read_window[0] is None:
        read_window[0] = time.process_time()
    try:
        return await timed(*args)
    finally:
        read_window[1] = time.process_time()
observer_worker._read = timed_read
def hwm_kb():  # VmHWM: this process's peak RSS (ru_maxrss would include the parent's, kept across exec)
    with open("/proc/self/status") as f:
        return int(next(line for line in f if line.startswith("VmHWM:")).split()[1])
class Context:
    function_name = "bench-observer"; function_version = "$LATEST"; memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench-observer"
    aws_request_id = "bench-request"; log_group_name = "/aws/lambda/bench"; log_stream_name = "bench"
    def get_remaining_time_in_millis(self): return 900_000
rss_before = hwm_kb()
cpu, wall = time.process_time(), time.perf_counter()
result = observer_app.handler({"call_id": call_id, "source": "sip", "requested_at": time.time()}, Context())
cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
read_cpu = read_window[1] - read_window[0] if read_window[0] is not None else None
report = {"result": result, "cpu": cpu, "wall": wall, "rss_kb": hwm_kb(), "rss_after_import_kb": rss_before,
          "audio_parses": audio_parses, "read_cpu": read_cpu}
os.write(int(fd), (json.dumps(report) + "\n").encode())
"""


@dataclass
class ObserverResult:
    events: int
    peak_rss_mb: float
    rss_after_import_mb: float
    cpu_ms: float
    cpu_ms_per_1000: float
    wall_s: float
    log_bytes: int
    log_lines: int


def _count(stream: IO[bytes], logged: list[int]) -> None:
    for line in stream:
        logged[0] += len(line)
        logged[1] += 1


def measure(python: str, build: Build, fake: FakeProcess, env: dict[str, str], count: int) -> ObserverResult:
    call_id = load_event("observer_async")["call_id"]
    fake.command(f"script {count} 0 0")
    try:
        report = run_worker(python, build, env, call_id)
    finally:
        fake.command("script 0 0 0")
    events = int(report["result"].get("events", 0))
    if report["result"].get("outcome") != "closed" or events < count:
        raise RuntimeError(f"observer did not see the whole call: {report['result']}")
    cpu_ms = report["cpu"] * 1000
    return ObserverResult(
        events=events,
        peak_rss_mb=report["rss_kb"] / 1024,
        rss_after_import_mb=report["rss_after_import_kb"] / 1024,
        cpu_ms=cpu_ms,
        cpu_ms_per_1000=cpu_ms / events * 1000,
        wall_s=report["wall"],
        log_bytes=report["log_bytes"],
        log_lines=report["log_lines"],
    )


def run_worker(
    python: str, build: Build, env: dict[str, str], call_id: str, *, count_audio_parses: bool = False
) -> dict[str, Any]:
    """Observe `call_id` with the twin's worker in its own process: its report (result, cpu, wall,
    rss_kb, rss_after_import_kb, audio_parses, read_cpu: the CPU from the first sideband read to the
    end of the last) and the log volume it wrote (log_bytes, log_lines)."""
    read, write = os.pipe()
    args = [python, "-I", "-B", "-c", CHILD, str(build.functions / "observer"), str(build.layer)]
    args += [str(build.runtime), str(write), call_id, "1" if count_audio_parses else "0"]
    # Log lines go to a pipe we drain and count (as Lambda's runtime reads stdout into CloudWatch).
    proc = subprocess.Popen(args, env=env, pass_fds=(write,), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.close(write)
    logged = [0, 0]  # bytes, lines
    assert proc.stdout is not None
    drain = threading.Thread(target=_count, args=(proc.stdout, logged), daemon=True)
    drain.start()
    with os.fdopen(read, "rb") as pipe:
        line = pipe.readline()
    drain.join(timeout=300)
    stderr = proc.stderr.read() if proc.stderr else b""
    proc.wait(timeout=60)
    if not line:
        raise RuntimeError(f"observer: no result\n{stderr.decode()[-2000:]}")
    report: dict[str, Any] = json.loads(line)
    report.update(log_bytes=logged[0], log_lines=logged[1])
    return report


@dataclass
class FlushCost:
    flushes: int
    cpu_ms_per_flush: float
    ms_per_1000_events: float  # amortised over a call at EVENTS_PER_SECOND, one flush per flush_seconds


def record_flush_cost(moto_url: str, flushes: int, flush_seconds: float | None = None) -> FlushCost:
    """The observer's periodic record write with the DynamoDB store (moto in its own process): this
    process's CPU per `DynamoRecordStore.write` of a typical batch (two turns, a response's usage).

    Measure 5 streams a call compressed in time, so its periodic flushes hardly ever fall due; this is
    what they add to a real call's CPU per 1,000 events at one flush each `flush_seconds`."""
    from bench.scenarios import EVENTS_PER_SECOND
    from shared.settings import Settings

    if flush_seconds is None:  # the default RECORD_FLUSH_SECONDS
        flush_seconds = float(Settings.model_fields["record_flush_seconds"].default)
    from shared.records import CallMeta, DynamoRecordStore, RecordBatch, turn, usage_of
    from tests.calls_table import create_records_table
    from tests.moto_aws import boto3_client

    client = boto3_client("dynamodb", moto_url)
    table = f"bench-records-{time.time_ns()}"
    create_records_table(client, table)
    store = DynamoRecordStore(table, client)
    meta = CallMeta("rtc_benchrecords", "sip", "+1555***0123", "", "default", "gpt-realtime", time.time())
    usage = {"input_token_details": {"text_tokens": 900, "audio_tokens": 300}, "output_token_details": {}}

    def batch() -> RecordBatch:
        text = "thanks for trying the new realtime api, it is now generally available " * 2
        turns = [turn("assistant", text, 30), turn("caller", "what is new", 30)]
        return RecordBatch(turns=turns, usage=usage_of({"usage": usage}))

    store.write(meta, batch())  # the client's first request (connection, credentials) is not a flush's
    cpu = time.process_time()
    for _ in range(flushes):
        store.write(meta, batch(), first=False)  # as the recorder does once the record exists
    per_flush = (time.process_time() - cpu) * 1000 / flushes
    return FlushCost(flushes, per_flush, per_flush / (flush_seconds * EVENTS_PER_SECOND) * 1000)


def main(argv: list[str] | None = None) -> int:
    """Measure 5 alone (`python -m bench.observer`): reuses earlier builds, as `make bench --quick` does."""
    import argparse

    from bench import artifact
    from bench.procs import clean_env, fake_openai
    from bench.scenarios import API_KEY, CALL_SECONDS, EVENTS_PER_SECOND, event_call_ids

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--events", type=int, default=CALL_SECONDS * EVENTS_PER_SECOND)
    parser.add_argument("--runs", type=int, default=1, help="repeat and report each run")
    parser.add_argument("--fresh", action="store_true", help="rebuild the twin instead of reusing it")
    parser.add_argument("--flushes", type=int, default=200, help="DynamoDB record writes to time (0: none)")
    args = parser.parse_args(argv)
    python = artifact.python313()
    optimised, _ = artifact.build_all(python, reuse=not args.fresh)
    with fake_openai(event_call_ids()) as fake:
        env = clean_env(
            OPENAI_BASE_URL=fake.base_url, OPENAI_API_KEY=API_KEY, POWERTOOLS_SERVICE_NAME="bench"
        )
        for _ in range(args.runs):
            o = measure(python, optimised, fake, env, args.events)
            print(
                json.dumps(
                    {
                        "events": o.events,
                        "cpu_ms_per_1000": round(o.cpu_ms_per_1000, 2),
                        "peak_rss_mb": round(o.peak_rss_mb, 1),
                        "wall_s": round(o.wall_s, 2),
                    }
                ),
                flush=True,
            )
    if args.flushes:
        from bench.procs import moto_server

        with moto_server() as moto_url:
            cost = record_flush_cost(moto_url, args.flushes)
        print(json.dumps({"record_flush": cost.__dict__}), flush=True)
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
