"""The local demo (scripts/demo.py): `make demo` serves the stack wired to the fake OpenAI, `make call`
rings it with a signed SIP webhook and shows the call and its record."""

from __future__ import annotations

import base64
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from local_api.server import LocalServer, create_gateway
from scripts import demo
from shared import deps
from tests.fake_openai import FakeOpenAI

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def stack(env: pytest.MonkeyPatch, fake: FakeOpenAI) -> Iterator[LocalServer]:
    """The local stack on the test fake (env: its signing secret), sidebands held like `make demo`."""
    fake.sideband_hold_seconds = -1  # only the call's end closes the sideband
    deps.reset()
    with LocalServer(create_gateway()) as running:
        yield running


def ports(server: LocalServer, fake: FakeOpenAI) -> list[str]:
    return ["--port", server.url.rsplit(":", 1)[1], "--fake-port", str(fake.port)]


def test_a_call_shows_the_accept_greeting_tool_call_and_record(
    stack: LocalServer, fake: FakeOpenAI, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    tool_args = '{"timezone": "Asia/Tokyo"}'
    argv = ["call", "--to", "+12125550150", "--tool-args", tool_args, "--env-file", str(tmp_path / "none")]
    assert demo.main([*argv, *ports(stack, fake)]) == 0
    out = capsys.readouterr().out
    call_id = re.search(r"call (rtc_\w+)", out)
    assert call_id is not None
    timeline = [line.split("s  ", 1)[1] for line in out.splitlines() if re.match(r"^ +\d+\.\ds  ", line)]
    assert timeline[0] == "stack -> OpenAI  accept (the call is answered)"
    assert 'model            says "Hello! You are talking to the fake OpenAI on this machine."' in timeline
    assert f"model            calls the tool get_current_time({tool_args})" in timeline
    assert any(
        line.startswith('observer         tool output: {"timezone": "Asia/Tokyo"') for line in timeline
    )
    assert "stack -> OpenAI  hangup" in timeline
    assert timeline[-1] == "OpenAI           the sideband closed: the call is over"
    # The record, from GET /calls/{id}, printed by scripts/calls.py: ended by the model's end_call.
    assert "end reason model_ended" in out
    assert "agent      example-support" in out  # +12125550150 routes to the example profile
    assert "caller     What time is it in Paris?" in out
    assert re.search(r"get_current_time\(\{\"timezone\": \"Asia/Tokyo\"\}\) -> \{", out)
    assert "end_call() -> " in out
    # The signature held: the stack accepted the call with its session.
    (accept,) = fake.requests_to(f"/{call_id[1]}/accept")
    assert accept.json is not None
    assert accept.json["type"] == "realtime"


def test_the_fake_refuses_a_bad_pending_call(fake: FakeOpenAI) -> None:
    url = f"{fake.base_url}/_fake/calls"
    assert httpx.post(url, json={"call_id": "not-a-call"}).status_code == 400
    assert httpx.post(url, json={"end_call": "yes"}).status_code == 400
    created = httpx.post(url, json={"tool": ""})
    assert created.status_code == 201
    call_id = created.json()["call_id"]
    assert call_id in fake.known_calls
    tools = [e.get("name") for e in fake.call_scripts[call_id] if isinstance(e, dict) and e.get("name")]
    assert tools == ["end_call"]  # no tool: straight to end_call
    assert httpx.get(f"{url}/rtc_unknown").status_code == 404


def test_the_signing_secret_is_written_once_into_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_SIGNING_SECRET", raising=False)
    env_file = tmp_path / ".env"
    env_file.write_text("OPENAI_API_KEY=sk-mine")  # no final newline: the secret still gets its own line
    assert demo.signing_secret(env_file, create=False) == ""
    secret = demo.signing_secret(env_file, create=True)
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert demo.signing_secret(env_file, create=True) == secret
    assert env_file.read_text() == f"OPENAI_API_KEY=sk-mine\nOPENAI_SIGNING_SECRET={secret}\n"
    assert env_file.stat().st_mode & 0o777 == 0o600
    monkeypatch.setenv("OPENAI_SIGNING_SECRET", "whsec_fromtheenvironment")
    assert demo.signing_secret(env_file, create=True) == "whsec_fromtheenvironment"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--to", ""], "demo: TO must be an E.164 number such as +12125550150, not ''"),
        (["--to", "+12125550150", "--from", "anonymous"], "demo: FROM must be an E.164 number"),
        (["--to", "+12125550150"], "demo: no fake OpenAI at http://127.0.0.1:9: start `make demo`"),
    ],
)
def test_call_errors_are_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_SIGNING_SECRET", "whsec_" + base64.b64encode(b"x" * 32).decode())
    assert demo.main(["call", *argv, "--port", "9", "--fake-port", "9"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(message)
    assert err.count("\n") == 1


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_serve_runs_both_servers_wired_together_and_stops_both(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stack_port, fake_port = free_port(), free_port()
    env_file = tmp_path / ".env"
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "OBSERVER_"))}
    command = ["serve", "--port", str(stack_port), "--fake-port", str(fake_port), "--env-file", str(env_file)]
    server = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "scripts.demo", *command],
        cwd=REPO,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "Ready." not in server.stdout.readline():
            pass
        assert env_file.read_text().startswith("OPENAI_SIGNING_SECRET=whsec_")
        monkeypatch.delenv("OPENAI_SIGNING_SECRET", raising=False)  # `call` reads the one serve wrote
        argv = ["call", "--to", "+12125550150", "--env-file", str(env_file)]
        assert demo.main([*argv, "--port", str(stack_port), "--fake-port", str(fake_port)]) == 0
        assert "end reason model_ended" in capsys.readouterr().out
        assert httpx.get(f"http://127.0.0.1:{stack_port}/favicon.ico").status_code == 200
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=20) == 143
    for port in (stack_port, fake_port):  # both servers are gone
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
