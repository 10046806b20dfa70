"""SnapStart: the template wires it through the `live` alias, init warms, and a restore starts clean.

The restore tests model SnapStart as bench/restore.py does: one process runs the init and the
before-snapshot hooks, then `os.fork()`s; each child runs the after-restore hooks and handles a request.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest

from bench import restore
from bench.procs import ConnectionCounter
from bench.scenarios import signed
from local_api.routes import load_template
from tests.fake_openai import FakeOpenAI
from tests.moto_aws import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, boto3_client
from tests.samples import SIGNING_SECRET, load_event

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = load_template()
OLD_KEY, NEW_KEY = "sk-before-snapshot-0001", "sk-rotated-after-0002"


def test_every_function_is_published_behind_the_live_alias_with_snapstart_a_parameter() -> None:
    function_globals = TEMPLATE["Globals"]["Function"]
    assert function_globals["AutoPublishAlias"] == "live"
    assert function_globals["SnapStart"] == {"ApplyOn": "SnapStart"}  # !Ref SnapStart
    parameter = TEMPLATE["Parameters"]["SnapStart"]
    assert set(parameter["AllowedValues"]) == {"None", "PublishedVersions"}
    assert parameter["Default"] == "None"
    for name, resource in TEMPLATE["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            assert "AutoPublishAlias" not in (resource.get("Properties") or {}), name  # one place: Globals


def test_the_observer_is_invoked_and_granted_only_through_its_alias() -> None:
    seen = 0
    for name, resource in TEMPLATE["Resources"].items():
        props = resource.get("Properties") or {}
        variables = (props.get("Environment") or {}).get("Variables") or {}
        if "OBSERVER_FUNCTION_NAME" in variables:
            seen += 1
            assert variables["OBSERVER_FUNCTION_NAME"] == "${AWS::StackName}-observer:live", name
            invokes = [
                statement["Resource"]
                for policy in props.get("Policies") or []
                if isinstance(policy, dict)
                for statement in policy.get("Statement") or []
                if statement.get("Action") == "lambda:InvokeFunction"
            ]
            assert invokes
            assert all(r.endswith(":function:${AWS::StackName}-observer:live") for r in invokes)
    assert seen == 4  # rtc, sip, calls (outbound) and the observer itself


def _in_fresh_process(code: str, env: dict[str, str], folder: str) -> Any:
    out = subprocess.run(  # noqa: S603 - our own interpreter and fixed code
        [sys.executable, "-I", "-c", code],
        cwd=ROOT / "functions" / folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


WARM_PROBE = """
import json, sys
sys.path[:0] = ["{root}", "."]
import {module}
import snapshot_restore_py as hooks
from shared import deps
print(json.dumps({{
    "before": len(hooks.get_before_snapshot()), "after": len(hooks.get_after_restore()),
    "client": deps.openai_client.peek() is not None, "session": deps.agent_sessions.peek() is not None,
    "stack_built": getattr(getattr({module}, "app", None), "middleware_stack", None) is not None,
    "cold_start_left": __import__("aws_lambda_powertools.logging.logger").logging.logger.is_cold_start,
}}))
"""


@pytest.mark.parametrize("init_type", ["snap-start", "on-demand"])
def test_a_snapstart_init_warms_and_primes_an_on_demand_init_stays_lazy(init_type: str) -> None:
    env = {"PATH": "/usr/bin:/bin", "OPENAI_API_KEY": "sk-test", "AWS_LAMBDA_INITIALIZATION_TYPE": init_type}
    found = _in_fresh_process(WARM_PROBE.format(root=ROOT, module="token_app"), env, "token")
    assert (found["before"], found["after"]) == (1, 1)  # registered once, whatever imports it
    warmed = init_type == "snap-start"
    assert found["client"] is warmed
    assert found["session"] is warmed
    assert found["stack_built"] is warmed  # the priming request went through the app
    assert found["cold_start_left"] is True  # ... without spending the first request's cold_start log key


@pytest.fixture
def rotating_secret(moto_endpoint: str) -> tuple[str, Any]:
    secrets = boto3_client("secretsmanager", moto_endpoint)
    arn = secrets.create_secret(Name=f"key-{uuid.uuid4().hex[:8]}", SecretString=OLD_KEY)["ARN"]
    return arn, secrets


def _restore_token(
    moto_endpoint: str, arn: str, secrets: Any, *, children: int, after_hooks: bool
) -> tuple[list[restore.RestoreRun], list[str], int]:
    """init, a request *after* the before-snapshot hooks (so an old key and a pooled connection really
    are in the "snapshot"), rotate the key (OpenAI then accepts only the new one), then restore
    `children` times. Answers the runs, the Authorization of every request OpenAI saw, and how many
    connections reached it."""
    with FakeOpenAI(api_key=OLD_KEY).start() as fake:
        relay = ConnectionCounter(fake.port)
        env = {
            "PATH": "/usr/bin:/bin",
            "OPENAI_BASE_URL": f"http://127.0.0.1:{relay.port}/v1",
            "OPENAI_API_KEY_SECRET_ARN": arn,
            "SECRETS_CACHE_SECONDS": "3600",  # without the hooks the old value would be served for an hour
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": moto_endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "PYDANTIC_DISABLE_PLUGINS": "__all__",
        }
        events = [load_event("token")] * (children + 1)  # the first one runs before the "snapshot"
        with tempfile.TemporaryDirectory() as tmp:
            subject = restore.Subject(sys.executable, ROOT / "functions" / "token", ROOT, ROOT, "token_app")
            proc, report = restore.start(
                subject,
                events,
                env,
                leak="after-hooks",
                pause=True,
                after_hooks=after_hooks,
                workdir=Path(tmp),
            )
            assert json.loads(report.readline())["leaked"]["statusCode"] == 200
            assert json.loads(report.readline()) == {"snapshot": True}
            secrets.put_secret_value(SecretId=arn, SecretString=NEW_KEY)
            fake.api_key = NEW_KEY
            assert proc.stdin is not None
            proc.stdin.write(b"restore\n")
            proc.stdin.flush()
            runs = restore.finish(proc, report)
        relay.close()
        keys = [r.headers["authorization"] for r in fake.requests_to("/realtime/client_secrets")]
    return runs, keys, relay.connections


def test_a_restored_child_reads_the_rotated_secret_and_opens_its_own_connection(
    moto_endpoint: str, rotating_secret: tuple[str, Any]
) -> None:
    runs, keys, connections = _restore_token(moto_endpoint, *rotating_secret, children=2, after_hooks=True)
    assert [run.result["statusCode"] for run in runs] == [200, 200]
    # One request each, each child's first try with the new key: no 401 and no retry behind it.
    assert keys == [f"Bearer {OLD_KEY}", f"Bearer {NEW_KEY}", f"Bearer {NEW_KEY}"]
    assert connections == 3  # the snapshot's pooled connection was never reused
    assert runs[0].random != runs[1].random  # each restore reseeded its PRNG


def test_without_the_after_restore_hooks_the_child_reuses_the_snapshot_state(
    moto_endpoint: str, rotating_secret: tuple[str, Any]
) -> None:
    """The test above has teeth: the same sequence without the hooks sends the snapshot's old key first
    (saved only by the 401 refresh) over the snapshot's own connection."""
    runs, keys, connections = _restore_token(moto_endpoint, *rotating_secret, children=1, after_hooks=False)
    assert [run.result["statusCode"] for run in runs] == [200]
    assert keys == [f"Bearer {OLD_KEY}", f"Bearer {OLD_KEY}", f"Bearer {NEW_KEY}"]
    assert connections == 1


FIRST_REQUEST_PROBE = """
import json, sys
sys.path[:0] = ["{root}", "."]
import {module}
class Context:  # only what the handlers read: importing test helpers would pre-load modules
    function_name = "probe"; memory_limit_in_mb = 512; aws_request_id = "probe"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:probe"
with open("{event_path}") as f:
    event = json.load(f)
before = set(sys.modules)
result = {module}.handler(event, Context())
print(json.dumps({{"status": result["statusCode"], "new": sorted(set(sys.modules) - before)}}))
"""


@pytest.mark.parametrize(
    ("folder", "module", "event", "status"),
    [
        ("token", "token_app", "token", 200),
        ("rtc", "rtc_app", "rtc", 200),
        ("sip", "sip_app", "sip", 200),
        ("observer", "observer_app", "observer_http", 202),
        ("page", "page_app", "page", 200),
    ],
)
def test_after_a_snapstart_init_the_first_request_imports_nothing(
    fake: FakeOpenAI, tmp_path: Path, folder: str, module: str, event: str, status: int
) -> None:
    """Whatever the first request would import lazily is in the snapshot (shared/snapstart.py's list)."""
    env = {
        "PATH": "/usr/bin:/bin",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start",
        "OPENAI_API_KEY": fake.api_key,
        "OPENAI_SIGNING_SECRET": SIGNING_SECRET,
        "OPENAI_BASE_URL": fake.base_url,
        "OBSERVER_LAUNCH": "off",
    }
    sample = load_event(event)
    event_path = tmp_path / "event.json"
    event_path.write_text(
        json.dumps(signed(sample, SIGNING_SECRET) if event == "sip" else sample)
    )  # signed just now
    code = FIRST_REQUEST_PROBE.format(root=ROOT, module=module, event_path=event_path)
    found = _in_fresh_process(code, env, folder)
    assert found["status"] == status
    assert found["new"] == []


def test_the_hard_stop_schedules_target_the_hangup_alias() -> None:
    targets = {
        name: ((resource.get("Properties") or {}).get("Environment") or {})
        .get("Variables", {})
        .get("HANGUP_FUNCTION_ARN")
        for name, resource in TEMPLATE["Resources"].items()
    }
    assert {name: t for name, t in targets.items() if t} == dict.fromkeys(
        ("RtcFunction", "SipFunction", "CallsFunction", "ObserverFunction"), "${HangupFunction.Arn}:live"
    )


def test_after_a_snapstart_init_a_first_observer_launch_imports_nothing(
    fake: FakeOpenAI, moto_endpoint: str, tmp_path: Path
) -> None:
    """The same with boto3 on the path: /rtc launching the observer through Lambda (moto)."""
    from tests.moto_aws import register_function

    env = {
        "PATH": "/usr/bin:/bin",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start",
        "OPENAI_API_KEY": fake.api_key,
        "OPENAI_BASE_URL": fake.base_url,
        "OBSERVER_LAUNCH": "lambda",
        "OBSERVER_FUNCTION_NAME": register_function(moto_endpoint),
        "AWS_ENDPOINT_URL_LAMBDA": moto_endpoint,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        "AWS_DEFAULT_REGION": REGION,
    }
    event_path = tmp_path / "event.json"
    event_path.write_text(json.dumps(load_event("rtc")))
    code = FIRST_REQUEST_PROBE.format(root=ROOT, module="rtc_app", event_path=event_path)
    found = _in_fresh_process(code, env, "rtc")
    assert found["status"] == 200
    assert found["new"] == []
