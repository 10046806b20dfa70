"""One process of the spend-limit storm test: fires `attempts` requests at the real /rtc or /token
handler from parallel threads, once the test says "go" on stdin (like tests/storm_worker.py).

Usage: python -m tests.limit_storm_worker '<json>' with {"route": "rtc" | "token", "attempts",
"source_ip"}; the environment points it at the fake OpenAI and at the moto server (CALL_STORE=dynamodb).
Prints one JSON line: {"statuses": [...], "retry_after": [...], "grants": [...]} where grants are the
`max_seconds` of the observers /rtc asked for (recorded, not run).
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any


def main(argv: list[str]) -> int:
    spec: dict[str, Any] = json.loads(argv[0])
    import rtc_app
    import token_app
    from shared import deps
    from tests.conftest import FakeContext, RecordingLauncher, load_event

    launcher = RecordingLauncher()
    deps.install_local_launcher(launcher)
    handler = rtc_app.handler if spec["route"] == "rtc" else token_app.handler
    event = load_event(spec["route"])
    event["requestContext"]["http"]["sourceIp"] = spec["source_ip"]
    deps.call_store()  # the boto3 client is built before the storm, not by its first requests

    def attempt(_: int) -> dict[str, Any]:
        result: dict[str, Any] = handler(json.loads(json.dumps(event)), FakeContext())
        return result

    print("ready", flush=True)
    sys.stdin.readline()
    with ThreadPoolExecutor(max_workers=spec["attempts"]) as pool:
        results = list(pool.map(attempt, range(spec["attempts"])))
    output = {
        "statuses": [r["statusCode"] for r in results],
        "retry_after": [
            int(r["headers"]["retry-after"]) for r in results if "retry-after" in (r.get("headers") or {})
        ],
        "grants": [r.max_seconds for r in launcher.requests],
    }
    print(json.dumps(output), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
