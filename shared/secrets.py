"""The OpenAI API key and the webhook signing secret.

Locally they come from environment variables. In AWS the functions get Secrets Manager ARNs and read
the values at run time through Powertools' cached provider, so `aws secretsmanager put-secret-value`
takes effect within `SECRETS_CACHE_SECONDS` without a redeploy, and no value sits in the function
configuration.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.errors import MissingSecretError
from shared.settings import Settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider


class SecretStore:
    """Reads secrets by ARN (cached) or from the environment; `refresh=True` bypasses the cache."""

    def __init__(self, settings: Settings, secrets_client: Any | None = None) -> None:
        self._settings = settings
        self._client = secrets_client
        self._provider: SecretsProvider | None = None

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
        value = self._secrets_provider().get(
            arn, max_age=self._settings.secrets_cache_seconds, force_fetch=refresh
        )
        return value if isinstance(value, str) else ""

    def _secrets_provider(self) -> SecretsProvider:
        # Imported here: boto3 is only paid for by functions that really read Secrets Manager.
        if self._provider is None:
            from aws_lambda_powertools.utilities.parameters import SecretsProvider

            self._provider = SecretsProvider(boto3_client=self._client)
        return self._provider
