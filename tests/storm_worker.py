"""One process of the duplicate-storm test: fires copies of one webhook (and observer events) at
the real handlers from parallel threads, once the test says "go" on stdin.

Usage: python -m tests.storm_worker '<json>' with {"event", "observer_event", "threads",
"observer_events"}; the environment points it at the fake OpenAI and at moto_server.
Prints one JSON line: {"statuses": [...], "observer_outcomes": [...]}.
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any


def main(argv: list[str]) -> int:
    spec: dict[str, Any] = json.loads(argv[0])
    import observer_app
    import sip_app
    from shared import deps
    from shared.launcher import LocalObserverLauncher
    from tests.conftest import FakeContext

    outcomes: list[str] = []

    def observe(event: dict[str, Any]) -> None:
        outcomes.append(str(observer_app.handler(event, FakeContext(remaining_seconds=60))["outcome"]))

    launcher = LocalObserverLauncher(observe)
    deps.install_local_launcher(launcher)

    def deliver(_: int) -> int:
        return int(sip_app.handler(dict(spec["event"]), FakeContext())["statusCode"])

    def observer_event(_: int) -> None:
        observe(dict(spec["observer_event"]))

    # Everything is imported and warm: tell the test, then fire when it says so (all processes at once).
    print("ready", flush=True)
    sys.stdin.readline()
    with ThreadPoolExecutor(max_workers=spec["threads"] + spec["observer_events"]) as pool:
        statuses = pool.map(deliver, range(spec["threads"]))
        observers = pool.map(observer_event, range(spec["observer_events"]))
        statuses_list, _ = list(statuses), list(observers)
    for thread in launcher.threads:
        thread.join(timeout=20)
    print(json.dumps({"statuses": statuses_list, "observer_outcomes": outcomes}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
