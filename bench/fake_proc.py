"""The fake OpenAI in its own process, so its CPU never shares a GIL with the code being measured.

Started by the benchmark as `python -m bench.fake_proc [--calls ID ...]`; prints `PORT <n>` once
serving, then answers one command per stdin line with one JSON line on stdout:

- `stats`: `{"requests": [[method, path, received_at], ...], "sidebands": n}` (monotonic clock,
  which on Linux is shared by every process, so the benchmark can compare it with its own);
- `reset`: clear the recordings (calls stay known);
- `delay <path suffix> <seconds> <times>`: the next matching requests answer late;
- `script <n> <interval> <hold>`: the sideband plays `realistic_script(n)` (or nothing for n=0);
- `tools <n> <name>`: the sideband plays `n` calls of the function tool `name`, 20 ms apart;
- `tool_times`: `[[tool call id, arguments.done sent at, function_call_output received at], ...]`.
"""

from __future__ import annotations

import argparse
import json
import sys

from bench.scenarios import realistic_script
from tests.fake_openai import TRANSCRIBING_SESSION, FakeOpenAI, function_call_events


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", nargs="*", default=[], help="call ids the fake knows (accept -> 200)")
    args = parser.parse_args(argv)
    fake = FakeOpenAI().start()
    for call_id in args.calls:  # transcribed, as the project's sessions are by default (accept replaces it)
        fake.register_call(call_id, TRANSCRIBING_SESSION)
    print(f"PORT {fake.port}", flush=True)
    for line in sys.stdin:
        command, *rest = line.split()
        if command == "stats":
            with fake._lock:  # the fake's own lock: its server thread appends concurrently
                requests = [[r.method, r.path, r.received_at] for r in fake.requests]
                sidebands = len(fake.sidebands)
            print(json.dumps({"requests": requests, "sidebands": sidebands}), flush=True)
        elif command == "reset":
            with fake._lock:
                fake.requests.clear()
                fake.sidebands.clear()
            print("{}", flush=True)
        elif command == "delay":  # the next <times> requests to <path suffix> wait <seconds>
            fake.delay_next(rest[0], float(rest[1]), times=int(rest[2]))
            print("{}", flush=True)
        elif command == "script":
            count, interval, hold = int(rest[0]), float(rest[1]), float(rest[2])
            fake.sideband_script = list(realistic_script(count)) if count else []
            fake.sideband_event_interval = interval
            fake.sideband_hold_seconds = hold
            print("{}", flush=True)
        elif command == "tools":
            count, name = int(rest[0]), rest[1]
            fake.sideband_script = []
            for i in range(count):
                fake.sideband_script += [0.02, *function_call_events(f"call_bench{i:05d}", name)]
            fake.sideband_event_interval = 0.0
            fake.sideband_hold_seconds = 0.2
            print("{}", flush=True)
        elif command == "tool_times":
            print(json.dumps(tool_times(fake)), flush=True)
    fake.stop()


def tool_times(fake: FakeOpenAI) -> list[list[object]]:
    with fake._lock:
        sidebands = list(fake.sidebands)
    times: list[list[object]] = []
    for sideband in sidebands:
        sent = {
            e["call_id"]: at
            for e, at in zip(sideband.server_events, sideband.server_event_times, strict=False)
            if e["type"] == "response.function_call_arguments.done"
        }
        for at, e in sideband.client_events:
            item = e.get("item") if e.get("type") == "conversation.item.create" else None
            if isinstance(item, dict) and item.get("call_id") in sent:
                times.append([item["call_id"], sent[item["call_id"]], at])
    return times


if __name__ == "__main__":
    main()
