"""SecretStore on Secrets Manager (a moto server): cached reads, rotation within the cache, env fallback."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import pytest

from shared.aws import AwsClient
from shared.errors import MissingSecretError
from shared.secrets import SecretStore
from shared.settings import Settings
from tests.moto_aws import Recording, aws_client, boto3_client


@pytest.fixture
def secretsmanager(moto_endpoint: str) -> Any:
    """boto3 on the moto server, to create and rotate secrets (the store under test reads them over httpx)."""
    return boto3_client("secretsmanager", moto_endpoint)


@pytest.fixture
def reader(moto_endpoint: str) -> AwsClient:
    return aws_client("secretsmanager", moto_endpoint)


def new_secret(secretsmanager: Any, value: str) -> str:
    arn: str = secretsmanager.create_secret(Name=f"secret-{uuid.uuid4().hex[:8]}", SecretString=value)["ARN"]
    return arn


class CountingClient:
    """Wraps the AWS client and counts GetSecretValue calls (to prove the cache works)."""

    def __init__(self, client: AwsClient) -> None:
        self._client = client
        self.reads = 0

    def call(self, operation: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        assert operation == "GetSecretValue"
        self.reads += 1
        return self._client.call(operation, payload)


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


def test_secret_arn_wins_and_is_cached_then_rotation_is_seen(secretsmanager: Any, reader: AwsClient) -> None:
    arn = new_secret(secretsmanager, "sk-first")
    client = CountingClient(reader)
    settings = Settings(
        openai_api_key="sk-env-ignored", openai_api_key_secret_arn=arn, secrets_cache_seconds=60
    )
    store = SecretStore(settings, secrets_client=client)

    assert store.api_key() == "sk-first"
    assert store.api_key() == "sk-first"
    assert client.reads == 1  # the second read came from the cache

    secretsmanager.put_secret_value(SecretId=arn, SecretString="sk-second")
    assert store.api_key() == "sk-first"  # still within the cache period
    assert store.api_key(refresh=True) == "sk-second"  # what an upstream 401 triggers
    assert client.reads == 2
    assert store.api_key() == "sk-second"  # and the refreshed value is the cached one now
    assert client.reads == 2


def test_each_secret_is_cached_on_its_own(secretsmanager: Any, reader: AwsClient) -> None:
    key_arn, signing_arn = new_secret(secretsmanager, "sk-key"), new_secret(secretsmanager, "whsec_sig")
    client = CountingClient(reader)
    settings = Settings(openai_api_key_secret_arn=key_arn, openai_signing_secret_arn=signing_arn)
    store = SecretStore(settings, client)
    assert (store.api_key(), store.signing_secret(), store.api_key(), store.signing_secret()) == (
        "sk-key",
        "whsec_sig",
        "sk-key",
        "whsec_sig",
    )
    assert client.reads == 2


def test_zero_cache_reads_every_time(secretsmanager: Any, reader: AwsClient) -> None:
    arn = new_secret(secretsmanager, "whsec_one")
    store = SecretStore(Settings(openai_signing_secret_arn=arn, secrets_cache_seconds=0), reader)
    assert store.signing_secret() == "whsec_one"
    secretsmanager.put_secret_value(SecretId=arn, SecretString="whsec_two")
    assert store.signing_secret() == "whsec_two"


def test_empty_secret_names_the_arn_variable(secretsmanager: Any, reader: AwsClient) -> None:
    arn = new_secret(secretsmanager, "   ")
    store = SecretStore(Settings(openai_api_key_secret_arn=arn), reader)
    with pytest.raises(MissingSecretError, match="OPENAI_API_KEY_SECRET_ARN"):
        store.api_key()


def test_the_read_is_one_signed_get_secret_value_over_http(secretsmanager: Any, moto_endpoint: str) -> None:
    arn = new_secret(secretsmanager, "sk-wire")
    wire = Recording()
    store = SecretStore(
        Settings(openai_api_key_secret_arn=arn), aws_client("secretsmanager", moto_endpoint, transport=wire)
    )
    assert store.api_key() == "sk-wire"
    (sent,) = wire.exchanges
    assert sent.status == 200
    assert sent.request.headers["x-amz-target"] == "secretsmanager.GetSecretValue"
    assert sent.request.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=testing/")
    assert b"sk-wire" not in sent.body  # the request names the secret, the answer carries it


def test_the_client_comes_from_the_environment(
    secretsmanager: Any, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As deployed: credentials, region and AWS_ENDPOINT_URL_SECRETS_MANAGER (botocore's name)."""
    arn = new_secret(secretsmanager, "sk-from-env")
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": moto_endpoint,
        "OPENAI_API_KEY_SECRET_ARN": arn,
    }.items():
        monkeypatch.setenv(name, value)
    assert SecretStore(Settings()).api_key() == "sk-from-env"
