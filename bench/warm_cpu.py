"""Warm requests' own CPU (measure 2's companion): thread CPU time per handler call of /rtc, /token and
/sip against the fake in its own process, and optionally a cProfile of them.

Thread CPU time counts only this process's work on the request (not the fake's, not the wait on the
socket), so it compares code before and after a change even on a loaded machine:
`python -m bench.warm_cpu [--calls 1000] [--profile rtc|token|sip]`.
"""

from __future__ import annotations

import argparse
import cProfile
import itertools
import json
import pstats
import statistics
import time

from bench.procs import fake_openai
from bench.scenarios import event_call_ids
from bench.warm import Context, bench_env, cases, environment, handler_for


def cpu_per_call(calls: int, profile: str | None = None) -> dict[str, float]:
    """label -> median thread CPU (ms) of one warm handler call, after 20 warm-ups."""
    medians: dict[str, float] = {}
    with fake_openai(event_call_ids()) as fake, environment(bench_env(fake.base_url, OBSERVER_LAUNCH="off")):
        sip_ids = itertools.cycle(event_call_ids()[1:2])
        for label, (make_event, _) in cases(sip_ids).items():
            handler = handler_for(label)
            events = [make_event() for _ in range(calls + 20)]
            for event in events[:20]:
                handler(event, Context())
            profiler = cProfile.Profile() if profile and label == f"/{profile}" else None
            times = []
            for event in events[20:]:
                if profiler:
                    profiler.enable()
                started = time.thread_time()
                handler(event, Context())
                times.append(time.thread_time() - started)
                if profiler:
                    profiler.disable()
            medians[label] = statistics.median(times) * 1000
            if profiler:
                pstats.Stats(profiler).sort_stats("cumtime").print_stats(70)
    return medians


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--profile", choices=("rtc", "token", "sip"))
    args = parser.parse_args(argv)
    medians = cpu_per_call(args.calls, args.profile)
    print(json.dumps({label: round(ms, 3) for label, ms in medians.items()}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
