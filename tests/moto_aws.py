"""Our AWS client (`shared.aws`) pointed at a moto server on 127.0.0.1, and what tests need around it.

moto's in-process mode (`mock_aws`) patches botocore only, so it never sees httpx traffic: every test
of `shared.aws` and its users talks real HTTP to a moto server (`tests.calls_table.SerialMotoServer`).
"""

from __future__ import annotations

import io
import json
import threading
import urllib.request
import uuid
import zipfile
from dataclasses import dataclass
from typing import Any

import httpx

from shared.aws import AwsClient, AwsConfig, Service

REGION = "us-east-1"
ACCESS_KEY_ID = "testing"
SECRET_ACCESS_KEY = "testing"  # moto's dummy credentials (moto checks no signature unless told to)


def config(endpoint: str, **overrides: str) -> AwsConfig:
    values = {
        "region": REGION,
        "endpoint": endpoint,
        "access_key_id": ACCESS_KEY_ID,
        "secret_access_key": SECRET_ACCESS_KEY,
    }
    values.update(overrides)
    return AwsConfig(**values)


def aws_client(service: Service, endpoint: str, **kwargs: Any) -> AwsClient:
    """`shared.aws`'s client for `service` on the moto server at `endpoint`."""
    return AwsClient(service, config(endpoint), **kwargs)


def boto3_client(service: str, endpoint: str) -> Any:
    """A boto3 client on the same server, for setting things up (creating secrets, functions, tables)."""
    import boto3

    factory: Any = boto3.client  # any service by name (the stubs want a literal)
    return factory(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
    )


def register_function(endpoint: str, name: str | None = None) -> str:
    """A Lambda function in moto, with Docker off (Event invokes are queued, never run); returns its name.

    With Docker off moto answers 202 to an Event invoke of any name: tests assert the name they sent.
    """
    name = name or f"observer-{uuid.uuid4().hex[:8]}"
    request = urllib.request.Request(  # noqa: S310 - our moto server on 127.0.0.1
        f"{endpoint}/moto-api/config",
        data=json.dumps({"lambda": {"use_docker": False}}).encode(),
        method="POST",
    )
    urllib.request.urlopen(request, timeout=5).close()  # noqa: S310 - our moto server on 127.0.0.1
    role = boto3_client("iam", endpoint).create_role(
        RoleName=f"role-{uuid.uuid4().hex[:8]}", AssumeRolePolicyDocument="{}"
    )
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("observer_app.py", "def handler(event, context):\n    return {}\n")
    boto3_client("lambda", endpoint).create_function(
        FunctionName=name,
        Runtime="python3.13",
        Role=role["Role"]["Arn"],
        Handler="observer_app.handler",
        Code={"ZipFile": code.getvalue()},
    )
    return name


def iam_user(endpoint: str, actions: list[str]) -> AwsConfig:
    """An IAM user in moto allowed `actions` (on any resource: moto checks actions, not resources), as the
    configuration of a client signing with its access key. Checked only under moto's
    `enable_iam_authentication()`; moto names Lambda's Invoke action `lambda:Invoke` (IAM: InvokeFunction)."""
    iam = boto3_client("iam", endpoint)
    name = f"fn-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}
    iam.put_user_policy(UserName=name, PolicyName="grants", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return config(endpoint, access_key_id=key["AccessKeyId"], secret_access_key=key["SecretAccessKey"])


@dataclass
class Exchange:
    request: httpx.Request
    body: bytes
    status: int


class Recording(httpx.BaseTransport):
    """A real HTTP transport that also keeps every request sent (signed) and the status that came back."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self._lock = threading.Lock()
        self.exchanges: list[Exchange] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        response = self._inner.handle_request(request)
        with self._lock:
            self.exchanges.append(Exchange(request, body, response.status_code))
        return response

    def close(self) -> None:
        self._inner.close()
