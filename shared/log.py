"""One structured JSON logger (Powertools) for every function.

Keys a request adds (`call_id`, ...) are its own: `append_keys` keeps them in the request's context
(contextvars), never on the process-wide logger, so concurrent requests in one process (`make dev`,
local_api) never log each other's keys. shared/web.py gives each invocation a fresh context.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

logger = Logger(service="hello-realtime")  # POWERTOOLS_SERVICE_NAME overrides the service name


def append_keys(**keys: object) -> None:
    """Put `keys` on every later line of this request (and of the threads it starts with its context)."""
    logger.thread_safe_append_keys(**keys)
