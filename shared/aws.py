"""The process's boto3 clients: one per AWS service, created once per container, thread-safe.

Everything else (credentials, including the container-credentials provider SnapStart-restored
environments use; region; endpoints, FIPS and dual-stack; signing; retries) is botocore's own,
configured by the environment Lambda sets: AWS_DEFAULT_REGION (Lambda sets it beside AWS_REGION),
AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE> (tests point them at moto), the credential variables.

boto3 and botocore are imported inside the functions: a module that never calls AWS (the page, /token
with a plain key, `make dev` on the in-memory store) never imports them (~125 ms, + ~60 ms a client).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Literal, overload

from shared.errors import ServiceError
from shared.log import logger

if TYPE_CHECKING:
    from boto3.session import Session
    from botocore.config import Config
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_scheduler import EventBridgeSchedulerClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

Service = Literal["dynamodb", "secretsmanager", "lambda", "scheduler", "s3"]

# Bounded, because every caller waits inside a request or a webhook answer budget: three attempts in
# all (botocore's standard mode: throttling, 5xx and connection errors retried with jittered backoff),
# each connecting within 2 s and answered within 3 s. The calls are single small items, answered in ms.
# `total_max_attempts`, not `max_attempts`: in a client Config botocore reads `max_attempts` as the
# number of *retries* (3 would mean 4 attempts, botocore/args.py `_compute_retry_max_attempts`).
MAX_ATTEMPTS = 3
CONNECT_TIMEOUT_SECONDS = 2.0
READ_TIMEOUT_SECONDS = 3.0

_clients: dict[str, Any] = {}
_session: list[Session] = []  # one boto3 session per process (reset() drops it)
# One lock for every client: creating clients of one session from several threads at once is not safe.
_lock = threading.Lock()


def client_config() -> Config:
    from botocore.config import Config

    return Config(
        retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
    )


@overload
def client(service_name: Literal["dynamodb"]) -> DynamoDBClient: ...
@overload
def client(service_name: Literal["secretsmanager"]) -> SecretsManagerClient: ...
@overload
def client(service_name: Literal["lambda"]) -> LambdaClient: ...
@overload
def client(service_name: Literal["scheduler"]) -> EventBridgeSchedulerClient: ...
@overload
def client(service_name: Literal["s3"]) -> S3Client: ...
def client(service_name: Service) -> Any:
    """The process's one client for `service_name` (built at the first call, then shared)."""
    found = _clients.get(service_name)
    if found is not None:
        return found
    with _lock:
        found = _clients.get(service_name)
        if found is None:
            from botocore.exceptions import NoRegionError

            try:
                config = client_config()
                if service_name == "s3":  # presigned URLs signed with SigV4 (botocore's default is older)
                    from botocore.config import Config

                    config = config.merge(Config(signature_version="s3v4"))
                found = _boto3_session().client(service_name, config=config)
            except NoRegionError:
                raise ServiceError("Server misconfigured: AWS_DEFAULT_REGION is not set") from None
            _clients[service_name] = found
        return found


def prepare(service_name: Service) -> None:
    """Start building `service_name`'s client in a background thread, so that the boto3 import and the
    client's creation overlap a wait the caller has anyway (an OpenAI call); `client()` then finds it
    built, or waits for it on the lock."""
    if service_name in _clients:
        return
    threading.Thread(
        target=_build_quietly, args=(service_name,), name=f"aws-{service_name}", daemon=True
    ).start()


def error_code(exc: BaseException) -> str:
    """AWS's error code of a botocore ClientError (`ConditionalCheckFailedException`, ...); "" for
    anything else (no answer: unreachable, timed out, no credentials; or not an AWS error at all)."""
    response = getattr(exc, "response", None)
    error = response.get("Error") if isinstance(response, dict) else None
    return str(error.get("Code", "")) if isinstance(error, dict) else ""


def close_connections() -> None:
    """Close every client's pooled connections (SnapStart hooks): the clients stay usable and open new
    connections on their next call, so nothing is rebuilt (a client costs ~60 ms to create)."""
    for found in list(_clients.values()):
        found.close()


def reset() -> None:
    """Forget every client and the session (tests change the environment; SnapStart restores)."""
    with _lock:
        _clients.clear()
        _session.clear()


def _boto3_session() -> Session:
    if not _session:
        from boto3.session import Session

        _session.append(Session())
    return _session[0]


def _build_quietly(service_name: Service) -> None:
    try:
        client(service_name)
    except Exception as exc:  # the caller's own client() raises it again, where it can be answered
        logger.warning(
            "aws client not prepared", extra={"service": service_name, "error": type(exc).__name__}
        )
