"""SecretStore against moto's Secrets Manager: cached reads, rotation within the cache, env fallback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from shared.errors import MissingSecretError
from shared.secrets import SecretStore
from shared.settings import Settings


@pytest.fixture
def secretsmanager(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.client("secretsmanager", region_name="us-east-1")


class CountingClient:
    """Wraps a boto3 client and counts GetSecretValue calls (to prove the cache works)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.reads = 0

    def get_secret_value(self, **kwargs: Any) -> Any:
        self.reads += 1
        return self._client.get_secret_value(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


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


def test_secret_arn_wins_and_is_cached_then_rotation_is_seen(secretsmanager: Any) -> None:
    arn = secretsmanager.create_secret(Name="openai-key", SecretString="sk-first")["ARN"]
    client = CountingClient(secretsmanager)
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


def test_zero_cache_reads_every_time(secretsmanager: Any) -> None:
    arn = secretsmanager.create_secret(Name="signing", SecretString="whsec_one")["ARN"]
    store = SecretStore(Settings(openai_signing_secret_arn=arn, secrets_cache_seconds=0), secretsmanager)
    assert store.signing_secret() == "whsec_one"
    secretsmanager.put_secret_value(SecretId=arn, SecretString="whsec_two")
    assert store.signing_secret() == "whsec_two"


def test_empty_secret_names_the_arn_variable(secretsmanager: Any) -> None:
    arn = secretsmanager.create_secret(Name="empty", SecretString="   ")["ARN"]
    store = SecretStore(Settings(openai_api_key_secret_arn=arn), secretsmanager)
    with pytest.raises(MissingSecretError, match="OPENAI_API_KEY_SECRET_ARN"):
        store.api_key()
