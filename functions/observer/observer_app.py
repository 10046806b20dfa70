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

from shared import snapstart, startup


def _import_both_entry_points() -> None:
    # A SnapStart init loads both paths into the snapshot; an on-demand cold start keeps them lazy.
    import observer_http  # noqa: F401
    import observer_worker  # noqa: F401


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if "requestContext" in event:  # an API Gateway HTTP API event
        from observer_http import handler as http_handler

        return http_handler(event, context)
    from observer_worker import run_worker

    return run_worker(event, context)


startup.check_at_start()
snapstart.prepare(prime=_import_both_entry_points)
