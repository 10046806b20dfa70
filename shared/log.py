"""One structured JSON logger (Powertools) for every function; `call_id` is appended per call."""

from __future__ import annotations

from aws_lambda_powertools import Logger

logger = Logger(service="hello-realtime")  # POWERTOOLS_SERVICE_NAME overrides the service name
