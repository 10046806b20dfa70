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

GPT-Live (tests/fake_live.py):

- `live_pending <seconds> <id> ...`: incoming SIP calls only GPT-Live knows (`/sip` accepts them); each
  session closes `seconds` after its accept (so a run of deliveries leaves no timelines running);
- `live_tools <speed> <n> <name> <id>`: session `id` is accepted now and plays `n` calls of the function
  tool `name` (20 ms apart, session time) once the observer attaches, then closes;
- `live_talk <speed> <minutes> <id> ...`: each session is accepted now and, once attached, the model
  talks for `minutes` (reflected audio both ways all along), then the session closes;
- `live_tool_times <id>`: `[[call id, inner response.output_item.done sent at, response.item.create
  received at], ...]`;
- `live_audio <id>`: the reflected audio frames the session's sidebands were sent.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import httpx

from bench.scenarios import API_KEY, realistic_script
from tests.fake_live import WORD_MS, live_assistant_speech, live_session_closed, live_tool_call_events
from tests.fake_openai import TRANSCRIBING_SESSION, FakeOpenAI, function_call_events

# A minimal strict Live accept body (the fake checks it against the SDK).
LIVE_ACCEPT = {"session": {"type": "live", "model": "gpt-live-1.1"}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", nargs="*", default=[], help="call ids the fake knows (accept -> 200)")
    args = parser.parse_args(argv)
    fake = FakeOpenAI().start()
    for call_id in args.calls:  # transcribed, as the project's sessions are by default (accept replaces it)
        fake.register_call(call_id, TRANSCRIBING_SESSION)
    print(f"PORT {fake.port}", flush=True)
    sent_at = _record_live_emits(fake)
    for line in sys.stdin:
        command, *rest = line.split()
        if command.startswith("live_"):
            print(json.dumps(live_command(fake, sent_at, command, rest)), flush=True)
        elif command == "stats":
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


def _record_live_emits(fake: FakeOpenAI) -> dict[str, float]:
    """event_id -> when the fake put it on the sideband queues (the inner tool-call event's send time)."""
    sent_at: dict[str, float] = {}
    emit = fake.live._emit

    def recording_emit(session: Any, event: dict[str, Any], **kwargs: Any) -> None:
        emit(session, event, **kwargs)
        if event.get("type") == "response.event" and session.timeline:
            sent_at[session.timeline[-1]["event_id"]] = time.monotonic()

    fake.live._emit = recording_emit  # type: ignore[method-assign]
    return sent_at


def live_command(fake: FakeOpenAI, sent_at: dict[str, float], command: str, args: list[str]) -> Any:
    live = fake.live
    if command == "live_pending":
        live.max_session_seconds = float(args[0])
        for session_id in args[1:]:
            live.register_pending_sip_call(call_id="", session_id=session_id)
        return {}
    if command == "live_tools":
        count, name, session_id = int(args[1]), args[2], args[3]
        script: list[dict[str, Any] | float] = []
        for i in range(count):
            script += [0.02, *live_tool_call_events(f"call_live{i:05d}", name)]
        _accept(fake, float(args[0]), [session_id], [*script, 1.0, live_session_closed()])
        return {}
    if command == "live_talk":
        minutes, session_ids = float(args[1]), args[2:]
        words = " ".join(["hello"] * int(minutes * 60_000 / WORD_MS))
        _accept(fake, float(args[0]), session_ids, [*live_assistant_speech(words), live_session_closed()])
        return {}
    if command == "live_tool_times":
        return live_tool_times(fake, sent_at, args[0])
    if command == "live_audio":
        return sum(sideband.audio_frames for sideband in live.sidebands_of(args[0]))
    raise ValueError(command)


def _accept(fake: FakeOpenAI, speed: float, session_ids: list[str], script: list[Any]) -> None:
    live = fake.live
    live.speed, live.max_session_seconds = speed, None
    for session_id in session_ids:
        live.register_pending_sip_call(call_id="", session_id=session_id)
        live.scripts.append(script)
        url = f"http://127.0.0.1:{fake.port}/v1/live/sessions/{session_id}/accept"
        httpx.post(url, json=LIVE_ACCEPT, headers={"Authorization": f"Bearer {API_KEY}"}).raise_for_status()


def live_tool_times(fake: FakeOpenAI, sent_at: dict[str, float], session_id: str) -> list[list[object]]:
    times: list[list[object]] = []
    for sideband in fake.live.sidebands_of(session_id):
        done = {}
        for event in list(sideband.server_events):
            inner = event.get("event") if event.get("type") == "response.event" else None
            if isinstance(inner, dict) and inner.get("type") == "response.output_item.done":
                done[inner["item"]["call_id"]] = sent_at[event["event_id"]]
        for at, event in list(sideband.client_events):
            item = event.get("item") if event.get("type") == "response.item.create" else None
            if isinstance(item, dict) and item.get("call_id") in done:
                times.append([item["call_id"], done[item["call_id"]], at])
    return times


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
