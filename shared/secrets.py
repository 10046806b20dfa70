"""The OpenAI API key, the webhook signing secret and the outbound SIP trunk (JSON, shared/outbound.py).

Locally they come from environment variables. In AWS the functions get Secrets Manager ARNs and read
the values at run time through Powertools' `SecretsProvider` (boto3 `GetSecretValue`), cached for
`SECRETS_CACHE_SECONDS`, so `aws secretsmanager put-secret-value` takes effect within that time without
a redeploy, and no value sits in the function configuration. Powertools (and with it boto3) is
imported only when a secret is read by ARN: a plain environment key never loads it.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from shared.errors import MissingSecretError, ServiceError
from shared.log import logger
from shared.settings import Settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider
    from mypy_boto3_secretsmanager import SecretsManagerClient


class SecretStore:
    """Reads secrets by ARN (cached) or from the environment; `refresh=True` bypasses the cache."""

    def __init__(self, settings: Settings, secrets_client: SecretsManagerClient | None = None) -> None:
        self._settings = settings
        self._client = secrets_client
        self._provider: SecretsProvider | None = None
        self._lock = threading.Lock()

    def prepare(self) -> None:
        """Build the provider and its client if a secret is read by ARN (SnapStart init); reads nothing."""
        settings = self._settings
        if (
            settings.openai_api_key_secret_arn
            or settings.openai_signing_secret_arn
            or settings.outbound_trunk_secret_arn
        ):
            self._secrets()

    def api_key(self, *, refresh: bool = False) -> str:
        settings = self._settings
        return self._read(
            settings.openai_api_key_secret_arn, settings.openai_api_key, "OPENAI_API_KEY", refresh
        )

    def signing_secret(self, *, refresh: bool = False) -> str:
        return self._read(
            self._settings.openai_signing_secret_arn,
            self._settings.openai_signing_secret,
            "OPENAI_SIGNING_SECRET",
            refresh,
        )

    def outbound_trunk(self, *, refresh: bool = False) -> str:
        """The outbound trunk's JSON (OUTBOUND_TRUNK_SECRET_ARN, else OUTBOUND_TRUNK), unparsed."""
        return self._read(
            self._settings.outbound_trunk_secret_arn,
            self._settings.outbound_trunk,
            "OUTBOUND_TRUNK",
            refresh,
        )

    def clear_cache(self) -> None:
        """Drop every cached value: the next read asks Secrets Manager (e.g. after a SnapStart restore)."""
        if self._provider is not None:
            self._provider.clear_cache()  # type: ignore[no-untyped-call]  # Powertools leaves it untyped

    def _read(self, arn: str, plain: str, variable: str, refresh: bool) -> str:
        # The variable that configured the value: OPENAI_API_KEY_SECRET_ARN, OPENAI_SIGNING_SECRET_ARN,
        # OUTBOUND_TRUNK_SECRET_ARN.
        source = variable.removesuffix("_SECRET") + "_SECRET_ARN" if arn else variable
        value = (self._fetch(arn, source, refresh) if arn else plain).strip()
        if not value:
            raise MissingSecretError(source)
        return value

    def _fetch(self, arn: str, variable: str, refresh: bool) -> str:
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

        try:
            value = self._secrets().get(
                arn, max_age=self._settings.secrets_cache_seconds, force_fetch=refresh
            )
        except GetParameterError as exc:
            # The type only: the message quotes the ARN and AWS's answer.
            logger.error("secret read failed", extra={"variable": variable, "error": type(exc).__name__})
            raise ServiceError(f"{variable}: the secret could not be read from Secrets Manager") from None
        return value if isinstance(value, str) else ""  # a SecretBinary secret is no usable key

    def _secrets(self) -> SecretsProvider:
        if self._provider is None:
            with self._lock:
                if self._provider is None:
                    # Imported here: only functions that really read Secrets Manager load it (and boto3).
                    from aws_lambda_powertools.utilities.parameters import SecretsProvider

                    if self._client is None:
                        from shared import aws

                        self._client = aws.client("secretsmanager")
                    self._provider = SecretsProvider(boto3_client=self._client)
        return self._provider
