"""Write openapi.yaml, the HTTP API contract: FastAPI's OpenAPI for the function apps, one document.

Usage: python scripts/make_openapi.py [--out FILE] [--check]

The deployed apps serve no /openapi.json (shared/web.py), so the document is generated here from
their routes, with two adjustments FastAPI cannot know about:

- no 422: shared/web.py answers a failed parameter check with `400 {"error": ...}`, documented per
  route; the `HTTPValidationError` schemas FastAPI adds for the 422 are dropped with it;
- the models of the bodies the routes read raw (the webhook event) are added to the components, where
  the routes' `openapi_extra` refers to them.

`--check` writes nothing and exits 1 if the file differs from what would be written (`make lint`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
OPENAPI_FILE = ROOT / "openapi.yaml"
# In the order the document lists them (each directory holds one function's module).
FUNCTIONS = {
    "page": "page_app",
    "rtc": "rtc_app",
    "token": "token_app",
    "sip": "sip_app",
    "observer": "observer_http",
    "calls": "calls_app",
}

HEADER = """\
# The HTTP API that template.yaml's HttpApi serves, one operation per route (each route is one Lambda
# function: see docs/ARCHITECTURE.md). GENERATED from the FastAPI apps by
# scripts/make_openapi.py: do not edit; change the routes and run `python scripts/make_openapi.py`
# (`make lint` and tests/test_openapi.py fail while it is stale). tests/test_fuzz.py checks that the
# operations here and the routes in template.yaml are the same set, and fuzzes every operation with
# schemathesis through the handlers.
"""

DESCRIPTION = (
    "A voice agent reached from a browser (WebRTC) or a phone (SIP). Every error answers "
    '`{"error": "<one-line reason>"}`. Requests from a browser page whose `Origin` is not in '
    "ALLOWED_ORIGINS get 403 on /rtc and /token before any upstream call. /calls and /calls/{call_id} "
    "(call records) take only IAM-signed (SigV4) requests: API Gateway refuses others with 403."
)
VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def build_document() -> dict[str, Any]:
    from fastapi.openapi.utils import get_openapi
    from fastapi.routing import APIRoute

    for folder in FUNCTIONS:
        sys.path.insert(0, str(ROOT / "functions" / folder))
    sys.path.insert(0, str(ROOT))
    modules = [__import__(module) for module in FUNCTIONS.values()]
    routes = [route for module in modules for route in module.app.routes if isinstance(route, APIRoute)]
    document = get_openapi(
        title="hello-realtime on AWS Lambda", version="1", description=DESCRIPTION, routes=routes
    )
    for operations in document["paths"].values():
        for operation in operations.values():
            operation["responses"].pop("422", None)
    schemas: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    for name in VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    from sip_app import WebhookEvent  # the routes' raw-body models

    schemas["WebhookEvent"] = WebhookEvent.model_json_schema(ref_template="#/components/schemas/{model}")
    document["components"]["schemas"] = dict(sorted(schemas.items()))
    # The call records routes: API Gateway's IAM authorization (SigV4-signed requests), as AWS spells it.
    document["components"]["securitySchemes"] = {
        "sigv4": {
            "type": "apiKey",
            "name": "Authorization",
            "in": "header",
            "x-amazon-apigateway-authtype": "awsSigv4",
        }
    }
    return document


def render(document: dict[str, Any]) -> str:
    return HEADER + yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=OPENAPI_FILE, help="output file (default: openapi.yaml)")
    parser.add_argument("--check", action="store_true", help="only report whether the file is out of date")
    args = parser.parse_args(argv)
    out: Path = args.out
    text = render(build_document())
    if args.check:
        if not out.exists() or out.read_text(encoding="utf-8") != text:
            print(f"{out} is out of date: run python scripts/make_openapi.py", file=sys.stderr)
            return 1
        return 0
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
