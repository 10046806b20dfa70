"""The OpenAI API key and the webhook signing secret.

Locally they come from environment variables. In AWS the functions get Secrets Manager ARNs and read
the values at run time (`GetSecretValue` through `shared.aws`), cached for `SECRETS_CACHE_SECONDS`, so
`aws secretsmanager put-secret-value` takes effect within that time without a redeploy, and no value
sits in the function configuration.

Not Powertools' `SecretsProvider`: importing `aws_lambda_powertools.utilities.parameters` imports boto3
and every provider eagerly (python3.13 -I -B, built layer: ~195 ms alone, ~100 ms more once the rest of
`shared` is loaded), and its first client costs more; the cache it would give is the few lines below.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from shared.errors import MissingSecretError
from shared.settings import Settings

if TYPE_CHECKING:
    from shared.aws import JsonApi


class SecretStore:
    """Reads secrets by ARN (cached) or from the environment; `refresh=True` bypasses the cache."""

    def __init__(self, settings: Settings, secrets_client: JsonApi | None = None) -> None:
        self._settings = settings
        self._client = secrets_client
        self._cache: dict[str, tuple[float, str]] = {}  # ARN -> (monotonic time read, value)

    def clear_cache(self) -> None:
        """Forget every value read (SnapStart hooks): the next read asks Secrets Manager again."""
        self._cache.clear()

    def prepare(self) -> None:
        """Build the Secrets Manager client now if a secret is read by ARN (SnapStart init); reads nothing."""
        if self._settings.openai_api_key_secret_arn or self._settings.openai_signing_secret_arn:
            self._secrets_client()

    def api_key(self, *, refresh: bool = False) -> str:
        return self._read(
            self._settings.openai_api_key_secret_arn, self._settings.openai_api_key, "OPENAI_API_KEY", refresh
        )

    def signing_secret(self, *, refresh: bool = False) -> str:
        return self._read(
            self._settings.openai_signing_secret_arn,
            self._settings.openai_signing_secret,
            "OPENAI_SIGNING_SECRET",
            refresh,
        )

    def _read(self, arn: str, plain: str, variable: str, refresh: bool) -> str:
        value = self._fetch(arn, refresh) if arn else plain
        value = value.strip()
        if not value:
            raise MissingSecretError(f"{variable}_SECRET_ARN" if arn else variable)
        return value

    def _fetch(self, arn: str, refresh: bool) -> str:
        cached = self._cache.get(arn)
        if (
            cached is not None
            and not refresh
            and time.monotonic() - cached[0] < self._settings.secrets_cache_seconds
        ):
            return cached[1]
        answer = self._secrets_client().call("GetSecretValue", {"SecretId": arn})
        value = answer.get("SecretString")
        value = value if isinstance(value, str) else ""  # a SecretBinary secret is no usable key
        self._cache[arn] = (time.monotonic(), value)
        return value

    def _secrets_client(self) -> JsonApi:
        # Imported here: only functions that really read Secrets Manager load the AWS client.
        if self._client is None:
            from shared import aws

            self._client = aws.client("secretsmanager", self._settings)
        return self._client
