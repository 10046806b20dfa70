"""`python -m local_api` (what `make dev` runs): serve every route of template.yaml on 127.0.0.1."""

from __future__ import annotations

import argparse
import errno
import os
import sys
import time
from pathlib import Path

from local_api.routes import REPO_ROOT


def port_number(text: str) -> int:
    if not text.strip().isdigit() or not 0 <= int(text) < 65536:
        raise ValueError(f"PORT={text[:20]!r} is not a port number (1-65535, 0: any free one): set PORT")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the Lambda functions behind a local API Gateway.")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", default=os.environ.get("PORT", "3000"), help="default: PORT, else 3000")
    parser.add_argument("--env-file", type=Path, default=REPO_ROOT / ".env", help="read if present")
    args = parser.parse_args(argv)
    try:
        port = port_number(args.port)
    except ValueError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2

    from dotenv import load_dotenv

    load_dotenv(args.env_file, override=False)  # the environment wins over .env
    from local_api.server import LocalServer, create_gateway
    from shared.settings import ConfigError, get_settings
    from shared.startup import check_configuration

    try:
        for line in check_configuration():
            print(f"warning: {line}", file=sys.stderr)
    except ConfigError as exc:
        print(f"configuration error: {exc.line}", file=sys.stderr)
        return 2
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
    try:
        server = LocalServer(gateway, host=args.host, port=port)
    except OSError as exc:
        gateway.close()
        if exc.errno == errno.EADDRINUSE:
            print(f"port {port} on {args.host} is in use: set PORT (e.g. PORT=3001)", file=sys.stderr)
        else:
            print(f"cannot listen on {args.host}:{port}: {exc.strerror}: set HOST or PORT", file=sys.stderr)
        return 2
    with server:
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
