"""shared.aws, the boto3 client factory: one client per service per process, bounded standard retries,
region and endpoint from the environment (botocore's own resolution), and no boto3 where no AWS is used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared import aws
from shared.errors import ServiceError
from tests.conftest import LogCapture
from tests.moto_aws import aws_environment, boto3_client

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def moto_env(monkeypatch: pytest.MonkeyPatch, moto_endpoint: str) -> Iterator[str]:
    """The environment pointing every client at the moto server; clients forgotten before and after."""
    for name, value in aws_environment(moto_endpoint).items():
        monkeypatch.setenv(name, value)
    aws.reset()
    yield moto_endpoint
    aws.reset()


def test_one_client_per_service_per_process(moto_env: str) -> None:
    seen: list[Any] = []

    def build() -> None:
        seen.append(aws.client("dynamodb"))

    threads = [threading.Thread(target=build) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 8
    assert all(found is seen[0] for found in seen)  # eight threads at once, one client
    assert aws.client("dynamodb") is seen[0]
    assert aws.client("lambda") is not seen[0]  # type: ignore[comparison-overlap]  # checked at run time
    assert aws.client("lambda").meta.service_model.service_name == "lambda"
    aws.reset()
    assert aws.client("dynamodb") is not seen[0]  # reset() forgets them


def test_the_config_retries_in_standard_mode_with_bounded_attempts_and_timeouts(moto_env: str) -> None:
    config: Any = aws.client("secretsmanager").meta.config  # the stubs omit Config's attributes
    # botocore normalises the count to total attempts (the first one included).
    assert config.retries == {"mode": "standard", "total_max_attempts": 3}
    assert config.connect_timeout == aws.CONNECT_TIMEOUT_SECONDS == 2.0
    assert config.read_timeout == aws.READ_TIMEOUT_SECONDS == 3.0


def test_the_endpoint_comes_from_the_environment(moto_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert aws.client("dynamodb").meta.endpoint_url == moto_env  # AWS_ENDPOINT_URL
    monkeypatch.setenv("AWS_ENDPOINT_URL_SCHEDULER", "http://127.0.0.1:9")  # the per-service one wins
    assert aws.client("scheduler").meta.endpoint_url == "http://127.0.0.1:9"
    assert aws.client("dynamodb").meta.region_name == "us-east-1"
    # And the client works there: a real call over HTTP to the moto server.
    name = f"t-{uuid.uuid4().hex[:8]}"
    boto3_client("secretsmanager", moto_env).create_secret(Name=name, SecretString="v")
    assert aws.client("secretsmanager").describe_secret(SecretId=name)["Name"] == name


def test_without_a_region_the_error_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)  # no profile region either
    aws.reset()
    try:
        with pytest.raises(ServiceError, match="AWS_DEFAULT_REGION is not set"):
            aws.client("lambda")
    finally:
        aws.reset()


def test_prepare_builds_the_client_in_the_background(moto_env: str) -> None:
    aws.prepare("lambda")
    for builder in [t for t in threading.enumerate() if t.name == "aws-lambda"]:  # none if done already
        builder.join(timeout=30)
    assert "lambda" in aws._clients  # built by the thread, before anyone asked for it
    built = aws._clients["lambda"]
    aws.prepare("lambda")  # already built: nothing more to start
    assert not any(t.name == "aws-lambda" for t in threading.enumerate())
    assert aws.client("lambda") is built


def test_a_failed_prepare_is_logged_and_raised_again_by_the_caller(
    monkeypatch: pytest.MonkeyPatch, logs: LogCapture
) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    aws.reset()
    aws.prepare("scheduler")
    for builder in [t for t in threading.enumerate() if t.name == "aws-scheduler"]:
        builder.join(timeout=30)
    (logged,) = logs.messages("aws client not prepared")
    assert (logged["service"], logged["error"]) == ("scheduler", "ServiceError")
    with pytest.raises(ServiceError, match="AWS_DEFAULT_REGION"):
        aws.client("scheduler")


NO_AWS_CHILD = r"""
import json, sys
sys.path[:0] = sys.argv[1:]
import page_app, token_app
from shared import deps
store = deps.call_store()
key = deps.secret_store().api_key()
launcher = deps.observer_launcher()
deps.prepare_call_start()
deps.hard_stop().schedule("rtc_local")
print(json.dumps({
    "store": type(store).__name__, "key": key == "sk-local-0123456789", "launcher": type(launcher).__name__,
    "boto3": "boto3" in sys.modules, "botocore.session": "botocore.session" in sys.modules,
    "powertools parameters": "aws_lambda_powertools.utilities.parameters" in sys.modules,
}))
"""


def test_a_process_without_aws_never_imports_boto3() -> None:
    """The page, /token with a plain key, the memory store: boto3 (and botocore's session) stay out."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "OPENAI_API_KEY": "sk-local-0123456789",
        "CALL_STORE": "memory",
        "OBSERVER_LAUNCH": "off",
        "POWERTOOLS_METRICS_NAMESPACE": "test",
    }
    paths = [str(ROOT), *(str(ROOT / "functions" / name) for name in ("page", "token"))]
    done = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", NO_AWS_CHILD, *paths], env=env, capture_output=True, text=True, check=True
    )
    report = json.loads(done.stdout.splitlines()[-1])
    assert report == {
        "store": "MemoryCallStore",
        "key": True,
        "launcher": "DisabledObserverLauncher",
        "boto3": False,
        "botocore.session": False,
        "powertools parameters": False,
    }
