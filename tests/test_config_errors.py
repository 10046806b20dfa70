"""Every invalid setting stops a start with one line: the variable, its template parameter, the allowed
values. Locally (`python -m local_api`, what `make dev` runs) and at Lambda init (importing a function
module), in a fresh interpreter each, as a user would meet it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FUNCTION_PATHS = [str(REPO), *(str(p) for p in sorted((REPO / "functions").iterdir()) if p.is_dir())]

# (variable, value, what the one line must say besides the variable)
BAD_SETTINGS = [
    ("REALTIME_VOICE", "robot", ["template parameter Voice", "alloy, ash, ballad", "marin, cedar"]),
    (
        "MAX_CALL_SECONDS",
        "abc",
        ["template parameter MaxCallSeconds", "a whole number, from 0, at most 7200"],
    ),
    ("MCP_SERVERS", "notjson", ["template parameter McpServers", "must be a JSON list"]),
    ("TRANSCRIPTION_MODEL", "two words", ["template parameter TranscriptionModel", "or off"]),
    ("VOICE_API", "sip", ["template parameter VoiceApi", "allowed values: realtime, live"]),
    ("OBSERVER_LAUNCH", "cloud", ["no template parameter", "allowed values: lambda, local, off"]),
    ("UPSTREAM_TIMEOUT_SECONDS", "0", ["a number, above 0, at most 60"]),
    ("REALTIME_INSTRUCTIONS", "Be brief.", ["no longer read", "shared/agents.yaml"]),
]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "REALTIME_", "AWS_"))}
    env.update(OPENAI_API_KEY="sk-test-config", PYTHONPATH=os.pathsep.join(FUNCTION_PATHS), **extra)
    return env


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python ARGS` from the repository, in a clean environment plus `env`."""
    return subprocess.run(  # noqa: S603
        [sys.executable, *args], cwd=REPO, env=clean_env(**env), capture_output=True, text=True, timeout=60
    )


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got: {stderr!r}"
    assert "Traceback" not in stderr
    return lines[0]


@pytest.fixture
def empty_env_file(tmp_path: Path) -> Path:
    return tmp_path / "absent.env"


@pytest.mark.parametrize(("variable", "value", "says"), BAD_SETTINGS)
def test_make_dev_refuses_a_bad_setting_in_one_line(
    variable: str, value: str, says: list[str], empty_env_file: Path
) -> None:
    result = run("-m", "local_api", "--port", "0", "--env-file", str(empty_env_file), **{variable: value})
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert line.startswith(f"configuration error: {variable}")
    for text in says:
        assert text in line
    if variable == "MCP_SERVERS":
        assert value not in line  # a variable that may hold credentials is named, never echoed


@pytest.mark.parametrize(
    "module", ["rtc_app", "sip_app", "token_app", "page_app", "calls_app", "observer_app", "hangup_app"]
)
@pytest.mark.parametrize(("variable", "value"), [("REALTIME_VOICE", "robot"), ("MAX_CALL_SECONDS", "abc")])
def test_lambda_init_stops_with_one_line(module: str, variable: str, value: str) -> None:
    # Lambda's init imports the handler's module: that is where the check runs.
    result = run("-c", f"import {module}", **{variable: value})
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert line.startswith(f"configuration error: {variable}=")
    assert "template parameter" in line


def test_lambda_init_with_good_settings_starts_quietly() -> None:
    result = run("-c", "import rtc_app, observer_app, hangup_app")
    assert result.returncode == 0, result.stderr
    assert "configuration" not in result.stderr


def test_a_port_that_is_not_a_number_says_set_port(empty_env_file: Path) -> None:
    result = run("-m", "local_api", "--env-file", str(empty_env_file), PORT="abc")
    assert result.returncode == 2
    assert one_line(result.stderr) == (
        "configuration error: PORT='abc' is not a port number (1-65535, 0: any free one): set PORT"
    )


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        yield taken.getsockname()[1]


def test_a_busy_port_says_set_port(busy_port: int, empty_env_file: Path) -> None:
    result = run(
        "-m",
        "local_api",
        "--env-file",
        str(empty_env_file),
        PORT=str(busy_port),
        OPENAI_SIGNING_SECRET="whsec_dGVzdA==",
    )
    assert result.returncode == 2
    assert one_line(result.stderr) == f"port {busy_port} on 127.0.0.1 is in use: set PORT (e.g. PORT=3001)"
