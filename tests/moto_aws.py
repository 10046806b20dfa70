"""boto3 clients on a moto server on 127.0.0.1 (`tests.calls_table.SerialMotoServer`), and what tests need
around them: IAM users with given grants, a Lambda function to invoke, a record of what went out.

Clients are built with `shared.aws.client_config()`, the configuration the functions use.
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

from shared import aws

REGION = "us-east-1"
ACCESS_KEY_ID = "testing"
SECRET_ACCESS_KEY = "testing"  # moto's dummy credentials (moto checks no signature unless told to)


@dataclass(frozen=True)
class Credentials:
    access_key_id: str = ACCESS_KEY_ID
    secret_access_key: str = SECRET_ACCESS_KEY


def boto3_client(
    service: str, endpoint: str, credentials: Credentials | None = None, *, max_attempts: int | None = None
) -> Any:
    """A boto3 client for `service` on the moto server at `endpoint` (its own session: thread-safe)."""
    from boto3.session import Session
    from botocore.config import Config

    config = aws.client_config()
    if service == "s3":  # as shared.aws builds it: presigned URLs signed with SigV4
        config = config.merge(Config(signature_version="s3v4"))
    if max_attempts is not None:
        config = config.merge(Config(retries={"mode": "standard", "total_max_attempts": max_attempts}))
    credentials = credentials or Credentials()
    factory: Any = Session().client  # any service by name (the stubs want a literal)
    return factory(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=credentials.access_key_id,
        aws_secret_access_key=credentials.secret_access_key,
        config=config,
    )


def aws_environment(endpoint: str) -> dict[str, str]:
    """The variables that point `shared.aws`'s clients at the moto server (as Lambda's would at AWS)."""
    return {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint,
    }


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


def iam_user(endpoint: str, actions: list[str]) -> Credentials:
    """An IAM user in moto allowed `actions` (on any resource: moto checks actions, not resources).
    Checked only under moto's `enable_iam_authentication()`; moto names Lambda's Invoke action
    `lambda:Invoke` (IAM: InvokeFunction)."""
    iam = boto3_client("iam", endpoint)
    name = f"fn-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}
    iam.put_user_policy(UserName=name, PolicyName="grants", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return Credentials(key["AccessKeyId"], key["SecretAccessKey"])


@dataclass(frozen=True)
class Exchange:
    service: str  # the signing name, which is the IAM prefix: dynamodb, secretsmanager, lambda, scheduler
    operation: str  # the API operation: UpdateItem, GetSecretValue, Invoke, CreateSchedule
    status: int
    headers: dict[str, str]
    body: bytes


class Wire:
    """Every request a boto3 client sent (signed, as it left) and the status that came back.

    botocore's own event hooks: `before-send` sees each attempt's request, `after-call` the answer.
    """

    def __init__(self, *clients: Any) -> None:
        self._lock = threading.Lock()
        self._sent: dict[int, Any] = {}
        self.exchanges: list[Exchange] = []
        for client in clients:
            self.watch(client)

    def watch(self, client: Any) -> Any:
        client.meta.events.register("before-send", self._before_send)
        client.meta.events.register("after-call", self._after_call)
        return client

    def _before_send(self, request: Any, **_: Any) -> None:
        with self._lock:
            self._sent[threading.get_ident()] = request

    def _after_call(self, http_response: Any, model: Any, **_: Any) -> None:
        with self._lock:
            request = self._sent.pop(threading.get_ident())
            raw = request.body
            # A streamed body (an S3 upload's file chunk) is not kept: only its request is.
            body = raw if isinstance(raw, bytes) else raw.encode() if isinstance(raw, str) else b""
            self.exchanges.append(
                Exchange(
                    service=model.service_model.signing_name,
                    operation=model.name,
                    status=http_response.status_code,
                    headers={
                        k.lower(): v.decode() if isinstance(v, bytes) else v
                        for k, v in request.headers.items()
                    },
                    body=body,
                )
            )
