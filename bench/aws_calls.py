"""What the AWS calls cost a cold start: this tree against a base commit (boto3 + Powertools parameters).

    python -m bench.aws_calls                        # vs 30657cb (boto3), imports and first calls
    python -m bench.aws_calls --base REF --cold 7    # and cold starts of every handler, side by side

Both trees get an x86_64 twin of the layer (`layer/Makefile`, as `bench/artifact.py` builds it); boto3
stands in for the Lambda runtime's copy after the layer on sys.path. Everything runs on 127.0.0.1 with
moto in its own process. Two measures, each a fresh `python3.13 -I -B` per run, median:

1. Imports and first calls: import shared.launcher/store/secrets, then one GetSecretValue, one DynamoDB
   UpdateItem, one Lambda Event invoke. Reports whether boto3/botocore(.session) got imported, and
   `-X importtime`'s figure for shared.aws. (`botocore` shows in both: with the runtime's copy on
   sys.path, `import aws_lambda_powertools` imports the bare package, ~0.5 ms, for a user-agent hook;
   botocore.session, the costly part, only where boto3 is used.)
2. (--cold N) Cold start of each handler, interleaved base/new, as bench/cold.py measures it, with the
   functions configured as deployed: secrets by ARN, DynamoDB call store, async invoke, all on moto.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench import artifact
from bench.cold import CASES, run_once
from bench.procs import OBSERVER_FUNCTION, clean_env, fake_openai, moto_server
from bench.scenarios import API_KEY, ROOT, SIGNING_SECRET, event_call_ids, signed
from tests.calls_table import create_calls_table, dynamodb_client
from tests.moto_aws import boto3_client
from tests.samples import load_event

WORK = ROOT / "artifacts" / "aws-calls"

CHILD = r"""
import json, os, sys, time
sys.path[:0] = sys.argv[1:]
t0 = time.perf_counter()
import httpx, shared.launcher, shared.store, shared.secrets
t1 = time.perf_counter()
from shared.settings import Settings
from shared.store import DynamoCallStore
from shared.secrets import SecretStore
from shared.launcher import LambdaObserverLauncher, ObserveRequest
settings = Settings()
t2 = time.perf_counter()
key = SecretStore(settings).api_key()
t3 = time.perf_counter()
try:
    from shared import aws
    dynamodb = aws.client("dynamodb")
except ImportError:  # the base tree: boto3
    import boto3
    dynamodb = boto3.client("dynamodb")
state = DynamoCallStore(os.environ["CALLS_TABLE_NAME"], dynamodb).begin_delivery(f"wh_{time.time_ns()}")
t4 = time.perf_counter()
launcher = LambdaObserverLauncher(os.environ["OBSERVER_FUNCTION_NAME"])
launcher.launch(ObserveRequest(call_id="rtc_m", source="api"))
t5 = time.perf_counter()
ms = lambda a, b: round((b - a) * 1000, 1)
print(json.dumps({
    "imports_ms": ms(t0, t1), "get_secret_value_ms": ms(t2, t3), "dynamodb_ms": ms(t3, t4),
    "lambda_invoke_ms": ms(t4, t5), "three_first_calls_ms": ms(t2, t5), "ok": key == os.environ["EXPECT_KEY"],
    "boto3": "boto3" in sys.modules, "botocore": "botocore" in sys.modules,
    "botocore.session": "botocore.session" in sys.modules, "shared.aws": "shared.aws" in sys.modules,
}))
"""


def build_layer(python: str, source: Path, target: Path) -> Path:
    make = ["make", "--no-print-directory", "-s", "-C", str(source / "layer"), "build-SharedLayer"]
    make += [f"ARTIFACTS_DIR={target}", f"PLATFORMS={artifact.X86}", f"PYTHON={python}"]
    subprocess.run(make, check=True, stderr=subprocess.DEVNULL)
    return target / "python"


def checkout(ref: str, target: Path) -> Path:
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def first_calls(python: str, paths: list[Path], env: dict[str, str], runs: int) -> dict[str, Any]:
    command = [python, "-I", "-B", "-c", CHILD, *map(str, paths)]
    results = [
        # The last line: the functions' own log lines go to stdout first.
        json.loads(
            subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout.splitlines()[
                -1
            ]
        )
        for _ in range(runs)
    ]
    summary: dict[str, Any] = {
        k: statistics.median(r[k] for r in results) for k in results[0] if k.endswith("_ms")
    }
    summary.update({k: v for k, v in results[0].items() if not k.endswith("_ms")})
    timed = subprocess.run(
        [*command[:3], "-X", "importtime", *command[3:]], env=env, check=True, capture_output=True, text=True
    )
    for line in timed.stderr.splitlines():
        if summary["shared.aws"] and line.rstrip().endswith("| shared.aws"):
            summary["import_shared_aws_ms"] = int(line.split("|")[1]) / 1000
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="30657cb", help="the tree to compare with (a git ref)")
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--cold", type=int, default=0, help="also cold-start each handler, N runs each")
    args = parser.parse_args()
    python = artifact.python313()
    runtime = artifact.WORK / "runtime"
    if not (runtime / "boto3").is_dir():
        artifact._pip_target(python, runtime, "boto3", compile_=True)
    base_src = checkout(args.base, WORK / "base-src")
    layers = {
        "base": build_layer(python, base_src, WORK / "base"),
        "new": build_layer(python, ROOT, WORK / "new"),
    }
    new_functions = WORK / "new-functions"  # without the __pycache__ the tests leave in the tree
    shutil.rmtree(new_functions, ignore_errors=True)
    shutil.copytree(ROOT / "functions", new_functions, ignore=shutil.ignore_patterns("__pycache__"))
    functions = {"base": base_src / "functions", "new": new_functions}
    with moto_server() as url, fake_openai(event_call_ids()) as fake, tempfile.TemporaryDirectory() as tmp:
        fake.command("script 0 0 0")  # the cold worker: open, session.created, closed
        secrets = boto3_client("secretsmanager", url)
        table = f"calls-{uuid.uuid4().hex[:8]}"
        create_calls_table(dynamodb_client(url), table)
        env = clean_env(
            OPENAI_BASE_URL=fake.base_url,
            OPENAI_API_KEY_SECRET_ARN=secrets.create_secret(Name=f"k-{table}", SecretString=API_KEY)["ARN"],
            OPENAI_SIGNING_SECRET_ARN=secrets.create_secret(Name=f"s-{table}", SecretString=SIGNING_SECRET)[
                "ARN"
            ],
            EXPECT_KEY=API_KEY,
            CALL_STORE="dynamodb",
            CALLS_TABLE_NAME=table,
            AWS_ENDPOINT_URL=url,
            OBSERVER_LAUNCH="lambda",
            OBSERVER_FUNCTION_NAME=OBSERVER_FUNCTION,
            AWS_LAMBDA_FUNCTION_NAME="bench",
            POWERTOOLS_SERVICE_NAME="bench",
        )
        for name in ("base", "new"):
            print(name, json.dumps(first_calls(python, [layers[name], runtime], env, args.runs)), flush=True)
        for case in CASES if args.cold else ():
            runs: dict[str, list[float]] = {"base": [], "new": []}
            boto3: dict[str, bool] = {}
            for i in range(args.cold):
                for name in ("base", "new") if i % 2 == 0 else ("new", "base"):
                    event = load_event(case[3])
                    run_env = env
                    if case[3] == "sip":
                        event = signed(event)
                    if case[3] == "observer_async":  # a call starting now, on a fresh lease
                        event.update(requested_at=time.time(), call_started_at=time.time())
                        fresh = f"calls-{uuid.uuid4().hex[:8]}"
                        create_calls_table(dynamodb_client(url), fresh)
                        run_env = {**env, "CALLS_TABLE_NAME": fresh}
                    path = Path(tmp) / f"{case[3]}.json"
                    path.write_text(json.dumps(event))
                    build = artifact.Build(functions[name], layers[name], runtime)
                    elapsed, report = run_once(python, build, case, run_env, "", path)
                    runs[name].append(elapsed)
                    boto3[name] = bool(report.get("boto3"))
            base, new = statistics.median(runs["base"]), statistics.median(runs["new"])
            print(
                f"cold {case[0]:17} base {base:4.0f} ms (boto3 {boto3['base']!s:5}) "
                f"new {new:4.0f} ms (boto3 {boto3['new']!s:5}) {new - base:+5.0f} ms",
                flush=True,
            )


if __name__ == "__main__":
    main()
