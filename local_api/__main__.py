"""`python -m local_api` (what `make dev` runs): serve every route of template.yaml on 127.0.0.1."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from local_api.routes import REPO_ROOT


def main() -> int:
    parser = argparse.ArgumentParser(description="Serve the Lambda functions behind a local API Gateway.")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")))
    parser.add_argument("--env-file", type=Path, default=REPO_ROOT / ".env", help="read if present")
    args = parser.parse_args()

    from dotenv import load_dotenv

    load_dotenv(args.env_file, override=False)  # the environment wins over .env
    from local_api.server import LocalServer, create_gateway
    from shared.settings import get_settings

    settings = get_settings()
    missing = [
        name
        for name, value in (
            ("OPENAI_API_KEY", settings.openai_api_key),
            ("OPENAI_SIGNING_SECRET", settings.openai_signing_secret),
        )
        if not value
    ]
    for name in missing:
        print(
            f"warning: {name} is not set (environment or .env): routes that need it answer 500",
            file=sys.stderr,
        )
    gateway = create_gateway()
    with LocalServer(gateway, host=args.host, port=args.port) as server:
        print(f"Serving on {server.url}  (upstream: {settings.api_base})", flush=True)
        for route in gateway.routes:
            print(f"  {route.method:6} {route.path:24} -> {route.function.logical_id}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("stopping", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
