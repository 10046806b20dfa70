"""A small AWS client on httpx: SigV4 (httpx-auth's `AWS4Auth`), retries, and the calls this project makes.

- DynamoDB and Secrets Manager speak the JSON protocol: `POST /` with `X-Amz-Target: <prefix>.<Operation>`,
  a JSON object each way (`AwsClient.call`).
- Lambda's asynchronous invoke: `POST /2015-03-31/functions/<name>/invocations` with
  `X-Amz-Invocation-Type: Event`, answered 202 (`AwsClient.invoke_async`).

Why not boto3 (measured with python3.13 -I -B on the built layer): `import botocore.session` costs ~157 ms,
`import boto3` ~173 ms, a first client ~65 ms more, on the cold start of every function that touches AWS.
httpx is imported by every function already; httpx-auth adds ~13 ms.

Configuration is what Lambda provides, under botocore's names (fields of `shared.settings.Settings`):
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN; AWS_REGION, else AWS_DEFAULT_REGION; the endpoint
from AWS_ENDPOINT_URL_<SERVICE>, then AWS_ENDPOINT_URL, else the public regional one. Not supported (nothing
here needs them): profiles and credential files, container/instance credentials, FIPS or dual-stack endpoints.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import httpx
from httpx_auth import AWS4Auth

from shared import tls
from shared.errors import ServiceError, redact
from shared.log import logger
from shared.settings import Settings

Service = Literal["dynamodb", "secretsmanager", "lambda"]


@dataclass(frozen=True)
class _Api:
    endpoint_setting: str  # the Settings field of AWS_ENDPOINT_URL_<SERVICE>
    target_prefix: str  # JSON protocol: X-Amz-Target = "<prefix>.<Operation>"
    content_type: str


_APIS: dict[Service, _Api] = {
    "dynamodb": _Api("aws_endpoint_url_dynamodb", "DynamoDB_20120810", "application/x-amz-json-1.0"),
    "secretsmanager": _Api(
        "aws_endpoint_url_secrets_manager", "secretsmanager", "application/x-amz-json-1.1"
    ),
    "lambda": _Api("aws_endpoint_url_lambda", "", ""),
}

# Retried, as botocore's "standard" retry mode does: these codes, HTTP 429/5xx, and connection errors.
# Anything else (ConditionalCheckFailedException above all: someone else's write won) is final.
RETRYABLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
MAX_ATTEMPTS = 3
BUDGET_SECONDS = 6.0  # no attempt starts, and none runs, past this much time after the first began
ATTEMPT_TIMEOUT = httpx.Timeout(3.0, connect=2.0)
BACKOFF_BASE_SECONDS = 0.1  # full jitter: sleep uniform(0, min(cap, base * 2**retry))
BACKOFF_CAP_SECONDS = 1.0
# Lambda function names, partial and full ARNs (with a version or alias): characters that travel unescaped
# in a URL path, so the path signed is the path sent.
FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_.:$-]{1,170}$")


class AwsError(Exception):
    """AWS refused a call, or could not be reached (`status` 0). Carries no request data, so no secret."""

    def __init__(self, code: str, message: str, status: int) -> None:
        self.code = code
        self.message = redact(message)
        self.status = status
        super().__init__(f"{code} ({status}): {self.message}" if self.message else f"{code} ({status})")

    @property
    def retryable(self) -> bool:
        if self.code == "ConditionalCheckFailedException":
            return False
        return self.status == 0 or self.status == 429 or self.status >= 500 or self.code in RETRYABLE_CODES


class JsonApi(Protocol):
    """What the call store and the secret store need: one JSON-protocol operation."""

    def call(self, operation: str, payload: Mapping[str, Any]) -> dict[str, Any]: ...


class AsyncInvoker(Protocol):
    """What the observer launcher needs: an asynchronous Lambda invoke, answering the HTTP status."""

    def invoke_async(self, function_name: str, payload: bytes) -> int: ...


@dataclass(frozen=True)
class AwsConfig:
    region: str
    endpoint: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(default="", repr=False)

    @classmethod
    def from_settings(cls, service: Service, settings: Settings) -> AwsConfig:
        """The environment Lambda provides; a missing variable is named (never a value) in a ServiceError."""
        region = settings.aws_region or settings.aws_default_region
        if not region:
            raise ServiceError("Server misconfigured: AWS_REGION (or AWS_DEFAULT_REGION) is not set")
        if not settings.aws_access_key_id:
            raise ServiceError("Server misconfigured: AWS_ACCESS_KEY_ID is not set")
        secret = settings.aws_secret_access_key.get_secret_value()
        if not secret:
            raise ServiceError("Server misconfigured: AWS_SECRET_ACCESS_KEY is not set")
        override: str = getattr(settings, _APIS[service].endpoint_setting) or settings.aws_endpoint_url
        return cls(
            region=region,
            endpoint=(override or default_endpoint(service, region)).rstrip("/"),
            access_key_id=settings.aws_access_key_id,
            secret_access_key=secret,
            session_token=settings.aws_session_token.get_secret_value(),
        )


def default_endpoint(service: Service, region: str) -> str:
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://{service}.{region}.{suffix}"


class AwsClient:
    """One service's client: a pooled sync httpx.Client (opened at first use), SigV4-signed, with retries.

    Sync, because its callers are: the call store runs in async routes and in threads alike. Thread-safe.
    Pass `transport` (e.g. `httpx.MockTransport`) to test without a network.
    """

    def __init__(
        self,
        service: Service,
        config: AwsConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        max_attempts: int = MAX_ATTEMPTS,
        budget_seconds: float = BUDGET_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.service: Service = service
        self.config = config
        self._transport = transport
        self._max_attempts = max_attempts
        self._budget = budget_seconds
        self._sleep = sleep
        self._http: httpx.Client | None = None
        self._lock = threading.Lock()

    def call(self, operation: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """A JSON-protocol operation (`GetItem`, `GetSecretValue`, ...): the answer's JSON object."""
        api = _APIS[self.service]
        if not api.target_prefix:
            raise ValueError(f"{self.service} does not speak the JSON protocol")
        headers = {"Content-Type": api.content_type, "X-Amz-Target": f"{api.target_prefix}.{operation}"}
        body = json.dumps(payload, separators=(",", ":")).encode()
        response = self._send(operation, "/", body, headers)
        if not response.content:
            return {}
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise AwsError(
                "InvalidResponse", f"{operation} answer is not a JSON object", response.status_code
            )
        return answer

    def invoke_async(self, function_name: str, payload: bytes) -> int:
        """Lambda `Invoke` with `InvocationType=Event`: queued, not run yet. Answers the status (202)."""
        if not FUNCTION_NAME.match(function_name):
            raise ValueError(f"not a Lambda function name: {function_name[:40]!r}")
        path = f"/2015-03-31/functions/{function_name}/invocations"
        response = self._send("Invoke", path, payload, {"X-Amz-Invocation-Type": "Event"})
        return response.status_code

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    def _client(self) -> httpx.Client:
        if self._http is None:
            with self._lock:
                if self._http is None:
                    config = self.config
                    auth = AWS4Auth(
                        access_id=config.access_key_id,
                        secret_key=config.secret_access_key,
                        region=config.region,
                        service=self.service,
                        security_token=config.session_token or None,
                    )
                    self._http = httpx.Client(
                        base_url=config.endpoint,
                        auth=auth,
                        timeout=ATTEMPT_TIMEOUT,
                        transport=self._transport,
                        verify=tls.client_context() if self._transport is None else True,
                    )
        return self._http

    def _send(self, operation: str, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            remaining = max(self._budget - (time.monotonic() - started), 0.05)
            timeout = httpx.Timeout(
                min(ATTEMPT_TIMEOUT.read or remaining, remaining),
                connect=min(ATTEMPT_TIMEOUT.connect or remaining, remaining),
            )
            cause: Exception | None = None
            try:
                response = self._client().post(path, content=body, headers=headers, timeout=timeout)
            except httpx.TransportError as exc:  # no answer: refused, reset, timed out
                error = AwsError(type(exc).__name__, f"{self.service} could not be reached", 0)
                cause = exc
            else:
                if response.is_success:
                    return response
                error = _error_from(response)
            delay = random.uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1)))  # noqa: S311
            if (
                not error.retryable
                or attempt >= self._max_attempts
                or time.monotonic() - started + delay >= self._budget
            ):
                raise error from cause
            logger.warning(
                "aws call retried",
                extra={
                    "service": self.service,
                    "operation": operation,
                    "code": error.code,
                    "status": error.status,
                    "attempt": attempt,
                },
            )
            self._sleep(delay)


def _error_from(response: httpx.Response) -> AwsError:
    """The code and message of an error answer: JSON (`__type`, `code`; `namespace#Code` -> `Code`), the
    `x-amzn-ErrorType` header (`Code:http://...`), or XML `<Code>` (as moto answers auth errors)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {
            tag: found.group(1) for tag, pattern in _XML.items() if (found := pattern.search(response.text))
        }
    code = str(body.get("__type") or body.get("code") or body.get("Code") or "")
    code = code or response.headers.get("x-amzn-errortype", "").split(":", 1)[0]
    code = code.rsplit("#", 1)[-1] or f"HTTP{response.status_code}"
    message = str(body.get("message") or body.get("Message") or body.get("errorMessage") or "")
    return AwsError(code, message, response.status_code)


_XML = {tag: re.compile(f"<{tag}>([^<]{{0,500}})</{tag}>") for tag in ("Code", "Message")}


_clients: dict[tuple[Service, AwsConfig], AwsClient] = {}
_clients_lock = threading.Lock()


def client(service: Service, settings: Settings) -> AwsClient:
    """The process's one client (one connection pool) for `service` under the configuration in `settings`."""
    config = AwsConfig.from_settings(service, settings)
    with _clients_lock:
        found = _clients.get((service, config))
        if found is None:
            found = _clients[(service, config)] = AwsClient(service, config)
        return found
