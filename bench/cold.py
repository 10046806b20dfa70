"""Measure 1: cold start, a fresh interpreter per run, as Lambda starts a new execution environment.

Each run starts `python3.13 -I -B` (isolated; -B: nothing can write bytecode, as in the read-only
/var/task and /opt), puts the function's directory, the layer and the runtime's boto3 on sys.path in
Lambda's order, imports the handler, and handles the function's `events/` sample against the fake
OpenAI and moto. The figure is the wall time from spawning the process to the response arriving on a
pipe. The naive build of the same function (no bytecode, every dependency imported up front) runs
interleaved with it, so the ratio holds even when the machine is busy.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.artifact import Build
from bench.procs import FakeProcess
from bench.scenarios import ROOT, signed
from tests.samples import incoming_call_body, load_event

# (label, function dir, module, event, status the response must have)
CASES: tuple[tuple[str, str, str, str, int], ...] = (
    ("/rtc", "rtc", "rtc_app", "rtc", 200),
    ("/token", "token", "token_app", "token", 200),
    ("/sip", "sip", "sip_app", "sip", 200),
    ("/observer (HTTP)", "observer", "observer_app", "observer_http", 202),
    ("observer worker", "observer", "observer_app", "observer_async", 0),
    ("page", "page", "page_app", "page", 200),
)
HTTP_LABELS = {"/rtc", "/token", "/sip", "/observer (HTTP)", "page"}


def _runtime_requirements() -> list[str]:
    """The import names of every runtime dependency (requirements.txt: `pydantic-settings>=2` ->
    `pydantic_settings`)."""
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    names = [re.split(r"[<>=!~\[; ]", line.strip(), maxsplit=1)[0] for line in lines]
    names = [name.lower().replace("-", "_") for name in names if name and not name.startswith("#")]
    return [IMPORT_NAMES.get(name, name) for name in names]


IMPORT_NAMES = {"pyyaml": "yaml"}  # distributions whose import name differs


# What a naive build imports before the handler: every runtime dependency, eagerly, boto3 included
# (the runtime's copy: every function here may call AWS, and a naive module imports it at the top).
EAGER = ",".join([*_runtime_requirements(), "boto3"])

CHILD = r"""
import json, os, sys, time
task, layer, runtime, module, event_path, fd, eager = sys.argv[1:8]
sys.path[:0] = [task, layer, runtime]
for name in filter(None, eager.split(",")):
    __import__(name)
class Context:
    function_name = "bench"; function_version = "$LATEST"; memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    aws_request_id = "bench-request"; log_group_name = "/aws/lambda/bench"; log_stream_name = "bench"
    def get_remaining_time_in_millis(self): return 60_000
handler = __import__(module).handler
with open(event_path) as f:
    event = json.load(f)
result = handler(event, Context())
os.write(int(fd), (json.dumps({"result": result, "boto3": "boto3" in sys.modules,
                                "modules": len(sys.modules)}) + "\n").encode())
"""


@dataclass
class ColdResult:
    label: str
    optimised_ms: float
    naive_ms: float
    ratio: float
    boto3_loaded: bool
    modules: int


def run_once(
    python: str,
    build: Build,
    case: tuple[str, str, str, str, int],
    env: dict[str, str],
    eager: str,
    event_file: Path,
) -> tuple[float, dict[str, Any]]:
    _, folder, module, _, status = case
    read, write = os.pipe()
    args = [
        python,
        "-I",
        "-B",
        "-c",
        CHILD,
        str(build.functions / folder),
        str(build.layer),
        str(build.runtime),
    ]
    args += [module, str(event_file), str(write), eager]
    started = time.perf_counter()
    proc = subprocess.Popen(
        args, env=env, pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        line = pipe.readline()
    elapsed = (time.perf_counter() - started) * 1000
    _, stderr = proc.communicate(timeout=60)
    if not line:
        raise RuntimeError(f"{case[0]}: no response\n{stderr.decode()[-2000:]}")
    report: dict[str, Any] = json.loads(line)
    got = report["result"].get("statusCode", 0) if "statusCode" in report["result"] else 0
    if got != status:
        raise RuntimeError(f"{case[0]}: status {got}, expected {status}: {str(report['result'])[:300]}")
    if case[3] == "observer_async" and report["result"].get("outcome") != "closed":
        raise RuntimeError(f"observer worker ended with {report['result']}")
    return elapsed, report


def measure(
    python: str, optimised: Build, naive: Build, env: dict[str, str], repeats: int
) -> list[ColdResult]:
    results = []
    os.sync()  # the builds just written: their writeback must not run during the first case's runs
    with tempfile.TemporaryDirectory() as tmp:
        for case in CASES:
            opt: list[float] = []
            nai: list[float] = []
            report: dict[str, Any] = {}
            for i in range(-1, repeats):  # a first pair, not counted: its one-off costs are neither build's
                # Alternate which goes first, so drift in machine load hits both alike.
                order = ((optimised, "", opt), (naive, EAGER, nai))
                for build, eager, sink in order if i % 2 == 0 else order[::-1]:
                    event = load_event(case[3])
                    if case[3] == "sip":
                        event = signed(event)  # fresh signature (5-minute tolerance)
                    if case[3] == "observer_async":  # a call starting now, not one past the call limit
                        event.update(requested_at=time.time(), call_started_at=time.time())
                    event_file = Path(tmp) / f"{case[3]}.json"
                    event_file.write_text(json.dumps(event))
                    elapsed, rep = run_once(python, build, case, env, eager, event_file)
                    if i < 0:
                        continue
                    sink.append(elapsed)
                    if build is optimised:
                        report = rep
            o, n = statistics.median(opt), statistics.median(nai)
            results.append(
                ColdResult(case[0], o, n, o / n, bool(report.get("boto3")), int(report.get("modules", 0)))
            )
    return results


def measure_with_latency(
    python: str, optimised: Build, env: dict[str, str], fake: FakeProcess, latency: float, repeats: int
) -> list[tuple[str, float]]:
    """Cold /rtc and /sip when OpenAI takes `latency` seconds to answer, as it does in production.

    Report-only: what a caller waits for on a cold container when the upstream is not instant (the
    figure minus `latency` is our own cold cost), which a zero-latency fake cannot show.
    """
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for case, path in ((CASES[0], "/realtime/calls"), (CASES[2], "/accept")):
            runs = []
            for _ in range(repeats):
                event = signed(load_event(case[3])) if case[3] == "sip" else load_event(case[3])
                event_file = Path(tmp) / f"{case[3]}.json"
                event_file.write_text(json.dumps(event))
                fake.command(f"delay {path} {latency} 1")
                runs.append(run_once(python, optimised, case, env, "", event_file)[0])
            results.append((case[0], statistics.median(runs)))
    return results


DEPLOYED_IDS = [f"rtc_benchdeployed{i:04d}" for i in range(200)]


def measure_deployed(
    python: str, optimised: Build, env: dict[str, str], repeats: int
) -> list[tuple[str, float, int]]:
    """Cold starts with the settings a deployed stack gives the functions: both secrets read by ARN
    from Secrets Manager and the call store in DynamoDB (both on the moto server), as in AWS.

    Each run is a new delivery and a new call, so every run takes the whole path (a webhook the store
    has seen would be answered as a duplicate). Returns (label, median ms, modules imported).
    """
    ids = iter(DEPLOYED_IDS)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in CASES:
            runs: list[float] = []
            modules = 0
            for _ in range(repeats):
                event = load_event(case[3])
                call_id = next(ids)
                if case[3] == "sip":
                    event = signed(event, body=incoming_call_body(call_id))
                    event["headers"]["webhook-id"] = f"msg_{call_id}"
                    event = signed(event)
                if case[3] == "observer_async":
                    event.update(call_id=call_id, requested_at=time.time(), call_started_at=time.time())
                event_file = Path(tmp) / f"{case[3]}.json"
                event_file.write_text(json.dumps(event))
                elapsed, report = run_once(python, optimised, case, env, "", event_file)
                runs.append(elapsed)
                modules = int(report.get("modules", 0))
            results.append((case[0], statistics.median(runs), modules))
    return results
