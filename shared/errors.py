"""Errors that map to one HTTP status and a one-line reason safe to show a client."""

from __future__ import annotations

import re

# Anything shaped like an OpenAI key (standard, project, ephemeral) or a webhook secret.
_SECRET_PATTERN = re.compile(r"\b(?:sk|ek|rk)[-_][A-Za-z0-9_\-*.]{6,}|\bwhsec_[A-Za-z0-9+/=]{6,}")


def redact(text: str) -> str:
    """Mask key-shaped tokens and fold the text to one short line, for logs and client messages."""
    one_line = " ".join(_SECRET_PATTERN.sub("[redacted]", text).split())
    return one_line[:300]


class ServiceError(Exception):
    """An error with a status code and a one-line reason that may be shown to the client."""

    status_code = 500

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = redact(reason)


class MissingSecretError(ServiceError):
    """A required secret is not configured; the reason names the variable, never a value."""

    status_code = 500

    def __init__(self, variable: str) -> None:
        super().__init__(f"Server misconfigured: {variable} is not set")
        self.variable = variable


class UpstreamError(ServiceError):
    """OpenAI answered with an error, an unusable answer, or could not be reached."""

    status_code = 502

    def __init__(
        self,
        reason: str,
        *,
        upstream_status: int | None = None,
        upstream_code: str | None = None,
        upstream_message: str = "",
    ) -> None:
        super().__init__(reason)
        self.upstream_status = upstream_status
        self.upstream_code = upstream_code  # OpenAI's error.code, e.g. "invalid_offer"
        self.upstream_message = redact(upstream_message)


class UpstreamTimeout(UpstreamError):
    status_code = 504


class ClientError(ServiceError):
    """The request was unusable: the status says how (400, 413, 415, 422, ...)."""

    def __init__(self, status_code: int, reason: str) -> None:
        super().__init__(reason)
        self.status_code = status_code


class TooManyRequests(ClientError):
    """A spend limit (shared/limits.py) is reached: 429 with `Retry-After` (whole seconds)."""

    def __init__(self, reason: str, retry_after: int) -> None:
        super().__init__(429, reason)
        self.retry_after = max(1, retry_after)

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}
