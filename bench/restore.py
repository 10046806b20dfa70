"""The SnapStart restore path, modelled on one machine: init once, snapshot = fork, restore = the child.

A fresh `python3.13 -I -B` runs a function's init as a SnapStart init does
(`AWS_LAMBDA_INITIALIZATION_TYPE=snap-start`: imports, the app, every client this function's settings
call for, one priming request), then the before-snapshot hooks that `snapshot_restore_py` holds, in
the runtime's order (reverse of registration). Each "restore" is an `os.fork()` of that process: the
child runs the after-restore hooks (in registration order), handles one event against the fake OpenAI
(and moto, as deployed), writes the response to a pipe and exits. The figure is the time from the
fork to the response, per child.

What this cannot model: the time Lambda itself takes to restore a microVM (copying the snapshot back
into memory), which only AWS can measure, and the runtime's own steps around the hooks.

`leak` makes the test stronger than the platform: "after-hooks" handles one request after the
before-snapshot hooks ran, so a read secret and a pooled connection really are in the "snapshot",
and only the after-restore hooks stand between them and the restored child. `pause` stops after the
"snapshot" until a line arrives on stdin, so a test can rotate a secret between snapshot and restore;
`after_hooks=False` skips the after-restore hooks (the test that shows they matter).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

CHILD = r"""
import json, os, sys, time
task, layer, runtime, module, events_path, fd, leak, pause, after_hooks = sys.argv[1:10]
sys.path[:0] = [task, layer, runtime]
class Context:
    function_name = "bench"; function_version = "1"; memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench:live"
    aws_request_id = "bench-request"; log_group_name = "/aws/lambda/bench"; log_stream_name = "bench"
    def get_remaining_time_in_millis(self): return 60_000
out = os.fdopen(int(fd), "w", buffering=1)
handler = __import__(module).handler  # the init
import random, snapshot_restore_py as hooks
with open(events_path) as f:
    events = json.load(f)
for func, args, kwargs in reversed(hooks.get_before_snapshot()):
    func(*args, **kwargs)
if leak == "after-hooks":
    out.write(json.dumps({"leaked": handler(events.pop(0), Context())}) + "\n")
if pause == "1":
    out.write(json.dumps({"snapshot": True}) + "\n")
    sys.stdin.readline()
runs = []
for event in events:
    read, write = os.pipe()
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # the restored environment
        os.close(read)
        for func, args, kwargs in hooks.get_after_restore() if after_hooks == "1" else ():
            func(*args, **kwargs)
        result = handler(event, Context())
        os.write(write, (json.dumps({"result": result, "random": random.random()}) + "\n").encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        line = pipe.readline()
    elapsed = (time.perf_counter() - started) * 1000
    os.waitpid(pid, 0)
    runs.append({"ms": elapsed, **json.loads(line)})
out.write(json.dumps({"runs": runs}) + "\n")
"""

Leak = Literal["none", "after-hooks"]


@dataclass
class RestoreRun:
    ms: float
    result: dict[str, Any]
    random: float


@dataclass(frozen=True)
class Subject:
    """What to restore: the interpreter, the function's dir, the layer and the runtime's packages (in
    Lambda's sys.path order), and the handler module."""

    python: str
    task: Path
    layer: Path
    runtime: Path
    module: str


def start(
    subject: Subject,
    events: list[dict[str, Any]],
    env: dict[str, str],
    *,
    leak: Leak = "none",
    pause: bool = False,
    after_hooks: bool = True,
    workdir: Path,
) -> tuple[subprocess.Popen[bytes], Any]:
    """Start the "init" process; answers it and the readable end of its report pipe (one JSON per line)."""
    events_file = workdir / f"{subject.module}-events.json"
    events_file.write_text(json.dumps(events))
    read, write = os.pipe()
    args = [subject.python, "-I", "-B", "-c", CHILD, str(subject.task), str(subject.layer)]
    args += [str(subject.runtime), subject.module]
    args += [str(events_file), str(write), leak, "1" if pause else "0", "1" if after_hooks else "0"]
    proc = subprocess.Popen(
        args,
        env={**env, "AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start"},
        pass_fds=(write,),
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    os.close(write)
    return proc, os.fdopen(read)


def finish(proc: subprocess.Popen[bytes], report: Any) -> list[RestoreRun]:
    """Read the runs' report and reap the process; a missing report raises with its stderr."""
    line = report.readline()
    report.close()
    _, stderr = proc.communicate(timeout=120)
    if not line:
        raise RuntimeError(f"restore run failed:\n{stderr.decode()[-3000:]}")
    return [RestoreRun(r["ms"], r["result"], r["random"]) for r in json.loads(line)["runs"]]


def measure(
    subject: Subject, events: list[dict[str, Any]], env: dict[str, str], *, status: int
) -> tuple[float, list[RestoreRun]]:
    """Median ms from fork to response over `events` (one restored child each); checks every status."""
    with tempfile.TemporaryDirectory() as tmp:
        proc, report = start(subject, events, env, workdir=Path(tmp))
        runs = finish(proc, report)
    for run in runs:
        got = run.result.get("statusCode")
        if got != status:
            raise RuntimeError(
                f"{subject.module}: restored child answered {got}, expected {status}: {run.result}"
            )
    return statistics.median(run.ms for run in runs), runs


def main() -> None:  # a quick look from the repo: python -m bench.restore
    import sys

    from bench.scenarios import ROOT
    from tests.samples import load_event

    env = {**os.environ, "OPENAI_API_KEY": "sk-test", "OBSERVER_LAUNCH": "off"}
    root = ROOT
    with tempfile.TemporaryDirectory():
        subject = Subject(sys.executable, root / "functions" / "page", root, root, "page_app")
        median, runs = measure(subject, [load_event("page")] * 5, env, status=200)
    print(f"page: {median:.1f} ms over {len(runs)} restores")


if __name__ == "__main__":
    main()
