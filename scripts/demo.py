"""A first call in minutes, with no AWS account and no OpenAI key: everything stays on 127.0.0.1.

    python -m scripts.demo serve     (`make demo`) the fake OpenAI (tests/fake_openai.py, a real WebRTC
                                     peer) and the local stack (local_api) wired to it; Ctrl-C stops both
    python -m scripts.demo call --to +12125550150 [--from +12125550123]     (`make call TO=...`)
                                     a SIP call into them: registers a pending call in the fake, sends the
                                     signed `realtime.call.incoming` webhook to the stack's /sip, shows
                                     the call as it goes (accept, greeting, tool call, hang-up), then its
                                     record from the stack's GET /calls/{call_id}

Ports: PORT (the stack, default 3000) and FAKE_PORT (the fake, default 9100). The webhook signing
secret is OPENAI_SIGNING_SECRET from the environment, else from .env; `serve` writes a fresh one into
.env when there is none, and `call` signs with the same one.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from dotenv import dotenv_values
from standardwebhooks import Webhook

REPO = Path(__file__).resolve().parent.parent
SECRET_VARIABLE = "OPENAI_SIGNING_SECRET"  # noqa: S105 - a variable's name
DEFAULT_FROM = "+12125550123"  # +1 NXX 555-0100..0199: numbers reserved for fiction
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
START_SECONDS = 30  # for each server to answer
CALL_SECONDS = 60  # for the call to end


class DemoError(Exception):
    """Printed as one line; exit code 1."""


class Terminated(Exception):
    """SIGTERM: unlike Ctrl-C, it reached this process only, so the servers are stopped from here."""


def _terminated(signum: int, frame: object) -> None:
    raise Terminated


# ---- the signing secret ----------------------------------------------------------------------------------


def signing_secret(env_file: Path, *, create: bool) -> str:
    """OPENAI_SIGNING_SECRET from the environment, else from `env_file`; with `create`, a new one
    (`whsec_` + base64 of 32 random bytes) appended to `env_file` when neither has one."""
    value = os.environ.get(SECRET_VARIABLE) or (dotenv_values(env_file).get(SECRET_VARIABLE) or "")
    if value or not create:
        return value
    value = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    existing = env_file.read_text(encoding="utf-8") if env_file.exists() else ""
    separator = "" if not existing or existing.endswith("\n") else "\n"
    with env_file.open("a", encoding="utf-8") as file:
        file.write(f"{separator}{SECRET_VARIABLE}={value}\n")
    env_file.chmod(0o600)
    print(f"wrote a new local {SECRET_VARIABLE} into {env_file}", flush=True)
    return value


# ---- serve ----------------------------------------------------------------------------------------------


def wait_until_up(url: str, process: subprocess.Popen[bytes], name: str) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DemoError(f"{name} stopped at start (exit code {process.returncode}); see its output above")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise DemoError(f"{name} did not answer at {url} within {START_SECONDS} s")


def stack_environment(secret: str, fake_port: int) -> dict[str, str]:
    """The local stack's environment: OpenAI is the fake, secrets are plain values, state in memory."""
    from tests.fake_openai import DEFAULT_API_KEY as FAKE_API_KEY

    return os.environ | {
        "OPENAI_BASE_URL": f"http://127.0.0.1:{fake_port}/v1",
        "OPENAI_API_KEY": FAKE_API_KEY,
        SECRET_VARIABLE: secret,
        # A deployed stack's settings in the shell or .env must not send the demo to AWS.
        "OPENAI_API_KEY_SECRET_ARN": "",
        "OPENAI_SIGNING_SECRET_ARN": "",
        "CALL_STORE": "memory",
        "HANGUP_FUNCTION_ARN": "",
    }


def serve(port: int, fake_port: int, env_file: Path) -> None:
    secret = signing_secret(env_file, create=True)
    python = sys.executable
    fake_command = [python, "-m", "tests.fake_openai", "--port", str(fake_port), "--webrtc"]
    processes: list[subprocess.Popen[bytes]] = []
    graceful = True  # Ctrl-C reached the servers too (same process group): let them stop on their own
    signal.signal(signal.SIGTERM, _terminated)
    try:
        fake = subprocess.Popen([*fake_command, "--log-level", "warning"], cwd=REPO)  # noqa: S603
        processes.append(fake)
        wait_until_up(f"http://127.0.0.1:{fake_port}/v1/_health", fake, "the fake OpenAI")
        stack = subprocess.Popen(  # noqa: S603
            [python, "-m", "local_api", "--port", str(port)],
            cwd=REPO,
            env=stack_environment(secret, fake_port),
        )
        processes.append(stack)
        wait_until_up(f"http://127.0.0.1:{port}/favicon.ico", stack, "the local stack")
        print(
            f"\nReady. A browser call: open http://127.0.0.1:{port}/ and press Start.\n"
            "A SIP call with a tool call, in another terminal: make call TO=+12125550150\n"
            "Ctrl-C stops both servers.\n",
            flush=True,
        )
        while all(process.poll() is None for process in processes):
            time.sleep(0.2)
        stopped = next(process for process in processes if process.poll() is not None)
        raise DemoError(f"{'the fake OpenAI' if stopped is fake else 'the local stack'} stopped")
    except KeyboardInterrupt:
        print("\nstopping the local stack and the fake OpenAI", flush=True)
    except (Terminated, DemoError):
        graceful = False
        raise
    finally:
        stop(processes, graceful=graceful)


def stop(processes: list[subprocess.Popen[bytes]], *, graceful: bool) -> None:
    """Wait for the servers to stop (after Ctrl-C), else terminate them; kill what still runs."""
    for process in reversed(processes):
        if not graceful:
            process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()


# ---- call -----------------------------------------------------------------------------------------------


def incoming_call(call_id: str, caller: str, dialed: str) -> bytes:
    """The `realtime.call.incoming` webhook OpenAI sends when a SIP trunk rings the project."""
    event = {
        "object": "event",
        "id": f"evt_{uuid.uuid4().hex}",
        "type": "realtime.call.incoming",
        "created_at": int(time.time()),
        "data": {
            "call_id": call_id,
            "sip_headers": [
                {"name": "From", "value": f"sip:{caller}@127.0.0.1"},
                {"name": "To", "value": f"sip:{dialed}@127.0.0.1"},
                {"name": "Call-ID", "value": f"{uuid.uuid4().hex}@127.0.0.1"},
            ],
        },
    }
    return json.dumps(event).encode()


def signed_headers(body: bytes, secret: str) -> dict[str, str]:
    """Standard Webhooks headers, as OpenAI signs its webhooks."""
    message_id, now = f"msg_{uuid.uuid4().hex}", datetime.now(tz=UTC)
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, now, body.decode()),
    }


def register_pending_call(http: httpx.Client, fake: str, plan: dict[str, Any]) -> dict[str, Any]:
    try:
        response = http.post(f"{fake}/v1/_fake/calls", json=plan)
    except httpx.HTTPError:
        raise DemoError(f"no fake OpenAI at {fake}: start `make demo` in another terminal first") from None
    if response.status_code != 201:
        raise DemoError(f"{fake} is not the demo's fake OpenAI ({response.status_code} from /v1/_fake/calls)")
    answer: dict[str, Any] = response.json()
    return answer


def ring(http: httpx.Client, stack: str, body: bytes, secret: str) -> None:
    try:
        response = http.post(f"{stack}/sip", content=body, headers=signed_headers(body, secret))
    except httpx.HTTPError:
        raise DemoError(f"no local stack at {stack}: start `make demo` in another terminal first") from None
    if response.status_code == 401:
        raise DemoError(
            f"{stack}/sip refused the signature: the stack runs with another {SECRET_VARIABLE} "
            "(restart `make demo` after changing .env)"
        )
    if response.status_code != 200:
        raise DemoError(f"{stack}/sip answered {response.status_code}: {response.text[:200]}")


def story(status: dict[str, Any], seen: dict[str, int]) -> list[tuple[float, str]]:
    """What happened since the last look, as (time, line) in time order: the fake's view of the call
    (what the stack asked of OpenAI, what the observer sent, what was said)."""
    lines: list[tuple[float, str]] = []
    actions: list[dict[str, Any]] = status["actions"]
    for action in actions[seen.get("actions", 0) :]:
        answered = " (the call is answered)" if action["action"] == "accept" else ""
        lines.append((action["at"], f"stack -> OpenAI  {action['action']}{answered}"))
    seen["actions"] = len(actions)
    for number, sideband in enumerate(status["sidebands"]):
        if not seen.get(f"open{number}"):
            seen[f"open{number}"] = 1
            lines.append((sideband["opened_at"], "observer         connected to the call's sideband"))
        for side, describe in (("client", _client_line), ("server", _server_line)):
            events = sideband[f"{side}_events"]
            for entry in events[seen.get(f"{side}{number}", 0) :]:
                line = describe(entry["event"])
                if line:
                    lines.append((entry["at"], line))
            seen[f"{side}{number}"] = len(events)
        if sideband["closed_at"] is not None and not seen.get(f"closed{number}"):
            seen[f"closed{number}"] = 1
            lines.append((sideband["closed_at"], "OpenAI           the sideband closed: the call is over"))
    return sorted(lines, key=lambda line: line[0])


def _client_line(event: dict[str, Any]) -> str:
    kind = event.get("type")
    if kind == "response.create":
        return "observer         asks the model to speak"
    item = event.get("item") or {}
    if kind == "conversation.item.create" and item.get("type") == "function_call_output":
        return f"observer         tool output: {str(item.get('output'))[:160]}"
    return ""


def _server_line(event: dict[str, Any]) -> str:
    kind = event.get("type")
    if kind == "response.output_audio_transcript.done":
        return f'model            says "{event.get("transcript", "")}"'
    if kind == "conversation.item.input_audio_transcription.completed":
        return f'caller           says "{event.get("transcript", "")}"'
    if kind == "response.function_call_arguments.done":
        return f"model            calls the tool {event.get('name')}({event.get('arguments')})"
    return ""


def follow(http: httpx.Client, fake: str, call_id: str) -> None:
    """Print the call as it goes, until its sideband closes."""
    deadline, seen = time.monotonic() + CALL_SECONDS, dict[str, int]()
    first: float | None = None  # the fake's clock when the call was answered
    while time.monotonic() < deadline:
        status = http.get(f"{fake}/v1/_fake/calls/{call_id}").json()
        for at, line in story(status, seen):
            first = at if first is None else first
            print(f"  {at - first:5.1f}s  {line}", flush=True)
        if "reject" in [action["action"] for action in status["actions"]]:
            raise DemoError("the stack rejected the call (caller policy?): see the stack's log")
        sidebands = status["sidebands"]
        if sidebands and all(sideband["closed_at"] is not None for sideband in sidebands):
            return
        time.sleep(0.1)
    raise DemoError(f"the call did not end within {CALL_SECONDS} s")


def call_record(http: httpx.Client, stack: str, call_id: str) -> dict[str, Any]:
    """GET /calls/{call_id} (loopback: no signature) once the record has its end."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        response = http.get(f"{stack}/calls/{call_id}")
        if response.status_code == 200 and response.json().get("end_reason"):
            record: dict[str, Any] = response.json()
            return record
        time.sleep(0.2)
    raise DemoError(f"no finished record for {call_id} at {stack}/calls/{call_id}")


def call(args: argparse.Namespace) -> None:
    for label, number in (("TO", args.to), ("FROM", args.caller)):
        if not E164.match(number):
            raise DemoError(f"{label} must be an E.164 number such as +12125550150, not {number!r}")
    secret = signing_secret(args.env_file, create=False)
    if not secret:
        raise DemoError(f"no {SECRET_VARIABLE} (environment or .env): start `make demo` first, it writes one")
    stack, fake = f"http://127.0.0.1:{args.port}", f"http://127.0.0.1:{args.fake_port}"
    plan: dict[str, Any] = {}
    if args.tool is not None:
        plan["tool"] = args.tool
    if args.tool_args is not None:
        plan["tool_arguments"] = args.tool_args
    with httpx.Client(timeout=10) as http:
        pending = register_pending_call(http, fake, plan)
        call_id = pending["call_id"]
        tool = f"{pending['tool']}({pending['tool_arguments']})" if pending["tool"] else "no tool"
        print(f"Calling {args.to} from {args.caller}: call {call_id}", flush=True)
        print(f"  (the fake OpenAI plays the model: it will call {tool}, then end_call)", flush=True)
        ring(http, stack, incoming_call(call_id, args.caller, args.to), secret)
        print(f"  webhook -> {stack}/sip: 200 (a signed realtime.call.incoming)", flush=True)
        follow(http, fake, call_id)
        record = call_record(http, stack, call_id)
    from scripts.calls import print_call

    print(f"\nThe call's record (GET {stack}/calls/{call_id}):\n", flush=True)
    print_call(record, sys.stdout)


# ---- command line ---------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 3000), help="the stack's")
    common.add_argument(
        "--fake-port", type=int, default=int(os.environ.get("FAKE_PORT") or 9100), help="the fake's"
    )
    common.add_argument("--env-file", type=Path, default=REPO / ".env", help="where the signing secret lives")
    parser = argparse.ArgumentParser(prog="python -m scripts.demo", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", parents=[common], help="the fake OpenAI and the local stack (make demo)")
    calling = commands.add_parser("call", parents=[common], help="a SIP call into them (make call TO=...)")
    calling.add_argument("--to", required=True, help="the dialed number, E.164 (routes to an agent profile)")
    calling.add_argument(
        "--from", dest="caller", default=DEFAULT_FROM, help="the caller (default %(default)s)"
    )
    calling.add_argument("--tool", help="the tool the model calls (default: the fake's --tool); '' for none")
    calling.add_argument("--tool-args", help="its arguments, a JSON object (default: the fake's --tool-args)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.command == "serve":
            serve(args.port, args.fake_port, args.env_file)
        else:
            call(args)
    except DemoError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Terminated:
        return 143
    return 0


if __name__ == "__main__":
    sys.exit(main())
