"""SecretStore on Secrets Manager (a moto server): cached reads, rotation within the cache, env fallback."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from shared import aws
from shared.errors import MissingSecretError, ServiceError
from shared.secrets import SecretStore
from shared.settings import Settings
from tests.conftest import LogCapture
from tests.moto_aws import Wire, aws_environment, boto3_client


@pytest.fixture
def secretsmanager(moto_endpoint: str) -> Any:
    """boto3 on the moto server, to create and rotate secrets (the operator's side)."""
    return boto3_client("secretsmanager", moto_endpoint)


@pytest.fixture
def reader(moto_endpoint: str) -> Any:
    """The client the store under test reads with (its own, so its requests can be counted)."""
    return boto3_client("secretsmanager", moto_endpoint)


def new_secret(secretsmanager: Any, value: str) -> str:
    arn: str = secretsmanager.create_secret(Name=f"secret-{uuid.uuid4().hex[:8]}", SecretString=value)["ARN"]
    return arn


def reads(wire: Wire) -> int:
    assert {(e.service, e.operation) for e in wire.exchanges} <= {("secretsmanager", "GetSecretValue")}
    return len(wire.exchanges)


def test_plain_environment_values_are_used_locally() -> None:
    store = SecretStore(Settings(openai_api_key=" sk-local ", openai_signing_secret="whsec_abc"))
    assert store.api_key() == "sk-local"
    assert store.signing_secret() == "whsec_abc"


def test_missing_values_name_the_variable_not_a_value() -> None:
    store = SecretStore(Settings(openai_api_key="", openai_signing_secret=""))
    with pytest.raises(MissingSecretError) as error:
        store.api_key()
    assert error.value.reason == "Server misconfigured: OPENAI_API_KEY is not set"
    with pytest.raises(MissingSecretError, match="OPENAI_SIGNING_SECRET"):
        store.signing_secret()


def test_secret_arn_wins_and_is_cached_then_rotation_is_seen(secretsmanager: Any, reader: Any) -> None:
    arn = new_secret(secretsmanager, "sk-first")
    wire = Wire(reader)
    settings = Settings(
        openai_api_key="sk-env-ignored", openai_api_key_secret_arn=arn, secrets_cache_seconds=60
    )
    store = SecretStore(settings, secrets_client=reader)

    assert store.api_key() == "sk-first"
    assert store.api_key() == "sk-first"
    assert reads(wire) == 1  # the second read came from the cache

    secretsmanager.put_secret_value(SecretId=arn, SecretString="sk-second")
    assert store.api_key() == "sk-first"  # still within the cache period
    assert store.api_key(refresh=True) == "sk-second"  # what an upstream 401 triggers
    assert reads(wire) == 2
    assert store.api_key() == "sk-second"  # and the refreshed value is the cached one now
    assert reads(wire) == 2


def test_each_secret_is_cached_on_its_own(secretsmanager: Any, reader: Any) -> None:
    key_arn, signing_arn = new_secret(secretsmanager, "sk-key"), new_secret(secretsmanager, "whsec_sig")
    wire = Wire(reader)
    settings = Settings(openai_api_key_secret_arn=key_arn, openai_signing_secret_arn=signing_arn)
    store = SecretStore(settings, reader)
    assert (store.api_key(), store.signing_secret(), store.api_key(), store.signing_secret()) == (
        "sk-key",
        "whsec_sig",
        "sk-key",
        "whsec_sig",
    )
    assert reads(wire) == 2


def test_zero_cache_reads_every_time(secretsmanager: Any, reader: Any) -> None:
    arn = new_secret(secretsmanager, "whsec_one")
    store = SecretStore(Settings(openai_signing_secret_arn=arn, secrets_cache_seconds=0), reader)
    assert store.signing_secret() == "whsec_one"
    secretsmanager.put_secret_value(SecretId=arn, SecretString="whsec_two")
    assert store.signing_secret() == "whsec_two"


def test_empty_secret_names_the_arn_variable(secretsmanager: Any, reader: Any) -> None:
    arn = new_secret(secretsmanager, "   ")
    store = SecretStore(Settings(openai_api_key_secret_arn=arn), reader)
    with pytest.raises(MissingSecretError, match="OPENAI_API_KEY_SECRET_ARN"):
        store.api_key()


def test_the_read_is_one_signed_get_secret_value_over_http(secretsmanager: Any, reader: Any) -> None:
    arn = new_secret(secretsmanager, "sk-wire")
    wire = Wire(reader)
    store = SecretStore(Settings(openai_api_key_secret_arn=arn), reader)
    assert store.api_key() == "sk-wire"
    (sent,) = wire.exchanges
    assert (sent.operation, sent.status) == ("GetSecretValue", 200)
    assert sent.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=testing/")
    assert json.loads(sent.body) == {"SecretId": arn}  # the request names the secret, the answer carries it


def test_clear_cache_makes_the_next_read_ask_again(secretsmanager: Any, reader: Any) -> None:
    arn = new_secret(secretsmanager, "sk-before-restore")
    wire = Wire(reader)
    store = SecretStore(Settings(openai_api_key_secret_arn=arn, secrets_cache_seconds=3600), reader)
    store.clear_cache()  # nothing read yet: nothing to drop, and no client built for it
    assert store.api_key() == "sk-before-restore"
    secretsmanager.put_secret_value(SecretId=arn, SecretString="sk-after-restore")
    assert store.api_key() == "sk-before-restore"
    store.clear_cache()  # what the SnapStart after-restore hook calls
    assert store.api_key() == "sk-after-restore"
    assert reads(wire) == 2


def test_an_unreadable_secret_names_the_variable_not_the_arn(reader: Any, logs: LogCapture) -> None:
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:no-such-secret-AbCdEf"
    store = SecretStore(Settings(openai_signing_secret_arn=arn), reader)
    with pytest.raises(ServiceError) as caught:
        store.signing_secret()
    assert caught.value.reason == (
        "OPENAI_SIGNING_SECRET_ARN: the secret could not be read from Secrets Manager"
    )
    (logged,) = logs.messages("secret read failed")
    assert logged["error"] == "GetParameterError"
    assert "no-such-secret" not in json.dumps(logs.records)


def test_the_client_comes_from_the_environment(
    secretsmanager: Any, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As deployed: credentials, region and AWS_ENDPOINT_URL_SECRETS_MANAGER (botocore's name)."""
    arn = new_secret(secretsmanager, "sk-from-env")
    environment = aws_environment("http://127.0.0.1:9")  # the global endpoint: nothing there
    environment["AWS_ENDPOINT_URL_SECRETS_MANAGER"] = moto_endpoint  # the per-service one wins
    environment["OPENAI_API_KEY_SECRET_ARN"] = arn
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    aws.reset()
    try:
        assert SecretStore(Settings()).api_key() == "sk-from-env"
    finally:
        aws.reset()
