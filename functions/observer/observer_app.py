"""The observer function: two entry points in one Lambda function.

- `POST /observer/{call_id}` (API Gateway, `observer_http`) answers 202 at once and starts the worker
  by an async invoke of this same function: long work never runs inside an HTTP request (cut at 30 s).
- The async event `{"call_id", "source", "requested_at"}` runs the worker (`observer_worker`): the
  sideband WebSocket for the call's whole length.

Each path imports only its own module, so the worker never pays for the web stack and the HTTP entry never
pays for websockets.
"""

from __future__ import annotations

from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if "requestContext" in event:  # an API Gateway HTTP API event
        from observer_http import handler as http_handler

        return http_handler(event, context)
    from observer_worker import run_worker

    return run_worker(event, context)
