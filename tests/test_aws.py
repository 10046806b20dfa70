"""shared.aws: SigV4 checked by botocore and by moto, configuration and endpoints, errors and retries."""

from __future__ import annotations

import calendar
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from moto.core.authorization import enable_iam_authentication

from shared import aws
from shared.aws import AwsClient, AwsConfig, AwsError, Service, default_endpoint
from shared.errors import ServiceError
from shared.settings import Settings
from tests.conftest import LogCapture
from tests.moto_aws import boto3_client, config, iam_user, register_function
from tests.output_audit import AUDIT

ACCESS_KEY = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"  # AWS's documentation example key
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLE/session+token=="
REGION = "eu-west-1"
AUDIT.plant(SECRET, "AWS secret access key (test)")  # so every log line of the run is checked for them
AUDIT.plant(TOKEN, "AWS session token (test)")


# ----------------------------------------------------------------- signatures, checked by botocore


def signed_request(
    service: Service, send: Callable[[AwsClient], object], *, token: str = "", secret: str = SECRET
) -> httpx.Request:
    """The request our client puts on the wire (signed), captured by a mock transport."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        return httpx.Response(202 if service == "lambda" else 200, json={})

    cfg = AwsConfig(REGION, default_endpoint(service, REGION), ACCESS_KEY, secret, token)
    send(AwsClient(service, cfg, transport=httpx.MockTransport(handler)))
    (request,) = seen
    return request


def botocore_accepts(request: httpx.Request, *, secret: str = SECRET) -> bool:
    """Verify as AWS does, with botocore's SigV4 code: from the wire request, the signed headers it names,
    and the timestamp it carries, recompute the signature and compare; the payload hash must be the body's."""
    algorithm, _, fields = request.headers["authorization"].partition(" ")
    parts = dict(field.strip().split("=", 1) for field in fields.split(","))
    access_key, day, region, service, terminator = parts["Credential"].split("/")
    signed = parts["SignedHeaders"].split(";")
    if hashlib.sha256(request.content).hexdigest() != request.headers["x-amz-content-sha256"]:
        return False
    wire = AWSRequest(
        method=request.method,
        url=str(request.url),
        data=request.content,
        headers={name: request.headers[name] for name in signed},
    )
    wire.context["timestamp"] = request.headers["x-amz-date"]
    auth = SigV4Auth(Credentials(access_key, secret), service, region)
    expected = auth.signature(auth.string_to_sign(wire, auth.canonical_request(wire)), wire)
    return (
        algorithm == "AWS4-HMAC-SHA256"
        and terminator == "aws4_request"
        and day == request.headers["x-amz-date"][:8]
        and hmac.compare_digest(expected, parts["Signature"])
    )


def tampered(request: httpx.Request, *, body: bytes | None = None, **headers: str) -> httpx.Request:
    new_headers = httpx.Headers(request.headers)
    for name, value in headers.items():
        new_headers[name.replace("_", "-")] = value
    content = request.content if body is None else body
    if body is not None:
        new_headers["content-length"] = str(len(body))
    return httpx.Request(request.method, request.url, headers=new_headers, content=content)


PUT_ITEM = {"TableName": "calls", "Item": {"pk": {"S": "webhook#wh_1"}, "status": {"S": "in_progress"}}}
CASES: dict[str, tuple[Service, Callable[[AwsClient], object], str]] = {
    "dynamodb PutItem": ("dynamodb", lambda c: c.call("PutItem", PUT_ITEM), ""),
    "dynamodb with a session token": ("dynamodb", lambda c: c.call("GetItem", {"TableName": "t"}), TOKEN),
    "secretsmanager GetSecretValue": (
        "secretsmanager",
        lambda c: c.call(
            "GetSecretValue", {"SecretId": "arn:aws:secretsmanager:eu-west-1:1:secret:k-AbCdEf"}
        ),
        TOKEN,
    ),
    "lambda Event invoke": ("lambda", lambda c: c.invoke_async("stack-observer", b'{"call_id":"rtc_1"}'), ""),
    "lambda invoke by ARN and version": (
        "lambda",
        lambda c: c.invoke_async("arn:aws:lambda:eu-west-1:123456789012:function:obs:$LATEST", b"{}"),
        TOKEN,
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_signatures_verify_with_botocore(case: str) -> None:
    service, send, token = CASES[case]
    request = signed_request(service, send, token=token)
    assert botocore_accepts(request)
    signed = set(request.headers["authorization"].split("SignedHeaders=")[1].split(",")[0].split(";"))
    assert {"host", "x-amz-date", "x-amz-content-sha256"} <= signed
    assert request.url.host == f"{service}.{REGION}.amazonaws.com"
    signed_at = calendar.timegm(time.strptime(request.headers["x-amz-date"], "%Y%m%dT%H%M%SZ"))
    assert abs(signed_at - time.time()) < 60  # AWS refuses signatures more than 5 minutes off
    if token:
        assert request.headers["x-amz-security-token"] == token
        assert "x-amz-security-token" in signed
    if service == "lambda":
        assert request.method == "POST"
        assert request.url.path.startswith("/2015-03-31/functions/")
        assert request.url.path.endswith("/invocations")
        assert request.headers["x-amz-invocation-type"] == "Event"
        assert "x-amz-invocation-type" in signed
    else:
        assert {"content-type", "x-amz-target"} <= signed


def test_json_protocol_headers_and_body() -> None:
    dynamo = signed_request("dynamodb", lambda c: c.call("PutItem", PUT_ITEM))
    assert dynamo.headers["x-amz-target"] == "DynamoDB_20120810.PutItem"
    assert dynamo.headers["content-type"] == "application/x-amz-json-1.0"
    assert json.loads(dynamo.content) == PUT_ITEM
    secrets = signed_request("secretsmanager", lambda c: c.call("GetSecretValue", {"SecretId": "x"}))
    assert secrets.headers["x-amz-target"] == "secretsmanager.GetSecretValue"
    assert secrets.headers["content-type"] == "application/x-amz-json-1.1"


@pytest.mark.parametrize(
    "change",
    ["body", "target", "date", "wrong secret", "invocation type"],
)
def test_a_wrong_signature_is_caught(change: str) -> None:
    """The negative cases: the verifier above does reject what AWS would reject."""
    if change == "invocation type":
        request = signed_request("lambda", CASES["lambda Event invoke"][1])
        assert botocore_accepts(request)
        assert not botocore_accepts(tampered(request, x_amz_invocation_type="RequestResponse"))
        return
    request = signed_request("dynamodb", CASES["dynamodb PutItem"][1])
    assert botocore_accepts(request)
    if change == "body":
        forged = json.dumps({**PUT_ITEM, "TableName": "other"}).encode()
        assert not botocore_accepts(tampered(request, body=forged))
        # ...even with the payload hash header rewritten to match the forged body.
        again = tampered(request, body=forged, x_amz_content_sha256=hashlib.sha256(forged).hexdigest())
        assert not botocore_accepts(again)
    elif change == "target":
        assert not botocore_accepts(tampered(request, x_amz_target="DynamoDB_20120810.DeleteItem"))
    elif change == "date":
        assert not botocore_accepts(tampered(request, x_amz_date="20200101T000000Z"))
    else:
        assert not botocore_accepts(request, secret=SECRET + "x")
        assert not botocore_accepts(signed_request("dynamodb", CASES["dynamodb PutItem"][1], secret="other"))


# ----------------------------------------------------------------- signatures, checked by moto


def test_moto_verifies_our_signatures_and_rejects_a_wrong_one(moto_endpoint: str) -> None:
    arn = boto3_client("secretsmanager", moto_endpoint).create_secret(
        Name=f"sig-{time.time_ns()}", SecretString="sk-signed"
    )["ARN"]
    function = register_function(moto_endpoint)
    good = iam_user(moto_endpoint, ["dynamodb:GetItem", "secretsmanager:GetSecretValue", "lambda:Invoke"])
    bad = config(
        moto_endpoint, access_key_id=good.access_key_id, secret_access_key=good.secret_access_key + "x"
    )
    with enable_iam_authentication():
        secret = AwsClient("secretsmanager", good).call("GetSecretValue", {"SecretId": arn})
        assert secret["SecretString"] == "sk-signed"
        assert AwsClient("lambda", good).invoke_async(function, b"{}") == 202
        with pytest.raises(AwsError) as missing:  # signed right, but no such table: past the signature check
            AwsClient("dynamodb", good).call("GetItem", {"TableName": "nope", "Key": {"pk": {"S": "a"}}})
        assert missing.value.code == "ResourceNotFoundException"
        calls: list[tuple[Service, Callable[[AwsClient], object]]] = [
            ("secretsmanager", lambda c: c.call("GetSecretValue", {"SecretId": arn})),
            ("lambda", lambda c: c.invoke_async(function, b"{}")),
            ("dynamodb", lambda c: c.call("GetItem", {"TableName": "nope", "Key": {"pk": {"S": "a"}}})),
        ]
        for service, send in calls:
            with pytest.raises(AwsError) as refused:
                send(AwsClient(service, bad, max_attempts=1))
            assert (refused.value.code, refused.value.status) == ("SignatureDoesNotMatch", 403)


# ----------------------------------------------------------------- configuration


def aws_settings(**values: str) -> Settings:
    base = {"aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": SECRET, "aws_region": REGION}
    base.update(values)
    return Settings.model_validate(base)


def test_endpoints_per_service_then_global_then_public() -> None:
    assert (
        AwsConfig.from_settings("dynamodb", aws_settings()).endpoint
        == "https://dynamodb.eu-west-1.amazonaws.com"
    )
    cn = aws_settings(aws_region="cn-north-1")
    assert AwsConfig.from_settings("lambda", cn).endpoint == "https://lambda.cn-north-1.amazonaws.com.cn"
    both = aws_settings(
        aws_endpoint_url="http://127.0.0.1:1/", aws_endpoint_url_dynamodb="http://127.0.0.1:2"
    )
    assert AwsConfig.from_settings("dynamodb", both).endpoint == "http://127.0.0.1:2"
    assert AwsConfig.from_settings("secretsmanager", both).endpoint == "http://127.0.0.1:1"
    assert AwsConfig.from_settings("lambda", both).endpoint == "http://127.0.0.1:1"


def test_botocore_environment_names_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_SESSION_TOKEN": TOKEN,
        "AWS_DEFAULT_REGION": "us-west-2",
        "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:8000",
        "AWS_ENDPOINT_URL_LAMBDA": "http://127.0.0.1:8001",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://127.0.0.1:8002",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    settings = Settings()
    found = {s: AwsConfig.from_settings(s, settings) for s in ("dynamodb", "lambda", "secretsmanager")}
    assert [c.endpoint[-4:] for c in found.values()] == ["8000", "8001", "8002"]
    assert {(c.region, c.access_key_id, c.secret_access_key, c.session_token) for c in found.values()} == {
        ("us-west-2", ACCESS_KEY, SECRET, TOKEN)
    }
    monkeypatch.setenv("AWS_REGION", "eu-central-1")  # Lambda sets AWS_REGION: it wins
    assert AwsConfig.from_settings("lambda", Settings()).region == "eu-central-1"
    assert SECRET not in repr(settings) + repr(found)
    assert TOKEN not in repr(settings) + repr(found)


@pytest.mark.parametrize(
    ("missing", "named"),
    [
        ("aws_region", "AWS_REGION"),
        ("aws_access_key_id", "AWS_ACCESS_KEY_ID"),
        ("aws_secret_access_key", "AWS_SECRET_ACCESS_KEY"),
    ],
)
def test_missing_configuration_names_the_variable_never_a_value(missing: str, named: str) -> None:
    with pytest.raises(ServiceError) as error:
        aws.client("dynamodb", aws_settings(**{missing: ""}, aws_session_token=TOKEN))
    assert named in error.value.reason
    assert error.value.reason.startswith("Server misconfigured:")
    assert SECRET not in str(error.value)
    assert TOKEN not in str(error.value)
    assert ACCESS_KEY not in str(error.value)


def test_one_client_per_service_per_process_opened_at_first_use() -> None:
    settings = aws_settings(aws_endpoint_url="http://127.0.0.1:9")
    dynamo = aws.client("dynamodb", settings)
    assert aws.client("dynamodb", aws_settings(aws_endpoint_url="http://127.0.0.1:9")) is dynamo
    assert aws.client("lambda", settings) is not dynamo
    assert aws.client("dynamodb", aws_settings(aws_endpoint_url="http://127.0.0.1:10")) is not dynamo
    assert dynamo._http is None  # nothing opened (no TLS context, no pool) until a call


# ----------------------------------------------------------------- errors and retries


class Script:
    """A mock AWS answering from a list; counts attempts, records sleeps."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.attempts = 0
        self.sleeps: list[float] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.attempts += 1
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def client(self, service: Service = "dynamodb", **kwargs: Any) -> AwsClient:
        cfg = AwsConfig(REGION, "https://aws.test", ACCESS_KEY, SECRET, TOKEN)
        return AwsClient(
            service, cfg, transport=httpx.MockTransport(self.handler), sleep=self.sleeps.append, **kwargs
        )


def error(status: int, code: str, message: str = "", *, header: bool = False) -> httpx.Response:
    if header:
        return httpx.Response(
            status, headers={"x-amzn-ErrorType": f"{code}:http://internal.amazon.com/"}, json={}
        )
    return httpx.Response(
        status, json={"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message}
    )


def test_throttling_is_retried_with_jittered_backoff_then_succeeds(logs: LogCapture) -> None:
    script = Script(
        error(400, "ProvisionedThroughputExceededException", "slow down"),
        error(400, "ThrottlingException"),
        httpx.Response(200, json={"Item": {"pk": {"S": "a"}}}),
    )
    assert script.client().call("GetItem", {"TableName": "t"}) == {"Item": {"pk": {"S": "a"}}}
    assert script.attempts == 3
    assert len(script.sleeps) == 2
    assert 0 <= script.sleeps[0] <= aws.BACKOFF_BASE_SECONDS
    assert 0 <= script.sleeps[1] <= 2 * aws.BACKOFF_BASE_SECONDS
    retried = logs.messages("aws call retried")
    assert [(r["code"], r["attempt"]) for r in retried] == [
        ("ProvisionedThroughputExceededException", 1),
        ("ThrottlingException", 2),
    ]


def test_a_failed_condition_is_never_retried() -> None:
    script = Script(error(400, "ConditionalCheckFailedException", "The conditional request failed"))
    with pytest.raises(AwsError) as failed:
        script.client().call("PutItem", PUT_ITEM)
    assert (failed.value.code, failed.value.status) == ("ConditionalCheckFailedException", 400)
    assert failed.value.message == "The conditional request failed"
    assert script.attempts == 1
    assert script.sleeps == []


@pytest.mark.parametrize(
    ("answer", "code", "message"),
    [
        (
            error(400, "ValidationException", "One or more parameter values were invalid"),
            "ValidationException",
            "One or more parameter values were invalid",
        ),
        (error(404, "ResourceNotFoundException", header=True), "ResourceNotFoundException", ""),
        (
            httpx.Response(400, json={"code": "AccessDeniedException", "Message": "not allowed"}),
            "AccessDeniedException",
            "not allowed",
        ),
        (
            httpx.Response(
                403, text="<Error><Code>SignatureDoesNotMatch</Code><Message>bad sig</Message></Error>"
            ),
            "SignatureDoesNotMatch",
            "bad sig",
        ),
        (httpx.Response(403, text="Forbidden"), "HTTP403", ""),
    ],
)
def test_a_client_error_surfaces_its_code_and_message_at_once(
    answer: httpx.Response, code: str, message: str
) -> None:
    script = Script(answer)
    with pytest.raises(AwsError) as failed:
        script.client().call("GetItem", {"TableName": "t"})
    assert (failed.value.code, failed.value.message, failed.value.status) == (
        code,
        message,
        answer.status_code,
    )
    assert script.attempts == 1


def test_server_errors_are_retried_a_bounded_number_of_times() -> None:
    script = Script(error(500, "InternalServerError", "oops"))
    with pytest.raises(AwsError) as failed:
        script.client().call("GetItem", {"TableName": "t"})
    assert failed.value.code == "InternalServerError"
    assert script.attempts == aws.MAX_ATTEMPTS
    assert len(script.sleeps) == aws.MAX_ATTEMPTS - 1


def test_connection_errors_are_retried_then_surface_as_status_0() -> None:
    script = Script(httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.Response(200, json={}))
    assert script.client().call("GetItem", {"TableName": "t"}) == {}
    assert script.attempts == 3
    down = Script(httpx.ConnectError("refused"))
    with pytest.raises(AwsError) as failed:
        down.client().call("GetItem", {"TableName": "t"})
    assert (failed.value.code, failed.value.status) == ("ConnectError", 0)
    assert isinstance(failed.value.__cause__, httpx.ConnectError)


def test_retries_stop_at_the_time_budget() -> None:
    script = Script(error(503, "ServiceUnavailable"))
    started = time.monotonic()
    with pytest.raises(AwsError):
        script.client(max_attempts=100, budget_seconds=0.0).call("GetItem", {"TableName": "t"})
    assert script.attempts == 1
    assert time.monotonic() - started < 1


def test_a_real_unreachable_endpoint_fails_within_the_budget() -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = AwsClient("dynamodb", config(f"http://127.0.0.1:{port}"), budget_seconds=2.0)
    started = time.monotonic()
    with pytest.raises(AwsError) as failed:
        client.call("GetItem", {"TableName": "t"})
    assert failed.value.status == 0
    assert time.monotonic() - started < 3


def test_lambda_invoke_answers_the_status_and_maps_errors() -> None:
    assert Script(httpx.Response(202)).client("lambda").invoke_async("fn", b"{}") == 202
    script = Script(error(429, "TooManyRequestsException", header=True), httpx.Response(202))
    assert script.client("lambda").invoke_async("fn", b"{}") == 202
    assert script.attempts == 2
    with pytest.raises(ValueError, match="not a Lambda function name"):
        Script(httpx.Response(202)).client("lambda").invoke_async("fn/../other", b"{}")


def test_no_secret_in_any_error_or_log_line(logs: LogCapture) -> None:
    script = Script(
        httpx.ConnectError("refused"),
        error(500, "InternalServerError", "oops"),
        error(400, "ValidationException", "bad"),
    )
    with pytest.raises(AwsError) as failed:
        script.client().call("PutItem", {"TableName": "t", "Item": {"secret": {"S": SECRET}}})
    text = "\n".join([str(failed.value), repr(failed.value), failed.value.message, *logs.lines])
    assert logs.lines  # the retries were logged...
    for value in (SECRET, TOKEN, "Authorization", "Signature="):
        assert value not in text  # ...without any credential, signature or request data
    assert repr(script.client().config).count(SECRET) == 0
