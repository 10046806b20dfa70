"""Fixtures: a real fake OpenAI on 127.0.0.1, a clean environment per test, sample events, signing."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from shared import audit, deps
from shared.launcher import ObserveRequest
from shared.log import logger
from tests.fake_openai import FakeOpenAI

# Re-exported (`name as name`): many tests import the sample helpers from here.
from tests.samples import EVENTS as EVENTS
from tests.samples import SIGNING_SECRET as SIGNING_SECRET
from tests.samples import body_of as body_of
from tests.samples import incoming_call_body as incoming_call_body
from tests.samples import live_incoming_call_body as live_incoming_call_body
from tests.samples import load_event as load_event
from tests.samples import sign as sign
from tests.samples import with_body as with_body

API_KEY = "sk-test-fake-0123456789abcdef"
# The outbound SIP trunk's digest password (planted in the output audit: never in a log or response).
TRUNK_PASSWORD = "trunk-Pa55word-do-not-print-7f3a"
TRUNK = {
    "provider_url": "sips:sip.example.com:5061",
    "username": "hello-trunk",
    "password": TRUNK_PASSWORD,
    "caller_number": "+14155550100",
}
ENV_NAMES = (
    "OPENAI_API_KEY",
    "OPENAI_API_KEY_SECRET_ARN",
    "OPENAI_SIGNING_SECRET",
    "OPENAI_SIGNING_SECRET_ARN",
    "OPENAI_BASE_URL",
    "OBSERVER_LAUNCH",
    "OBSERVER_FUNCTION_NAME",
    "OBSERVER_GREETING_DELAY_MS",
    "OBSERVER_MAX_SECONDS",
    "REALTIME_MODEL",
    "REALTIME_VOICE",
    "REALTIME_INSTRUCTIONS",
    "TRANSCRIPTION_MODEL",
    "UPSTREAM_TIMEOUT_SECONDS",
    # Issue 4: call store, caller policy, call limits.
    "CALL_STORE",
    "CALLS_TABLE_NAME",
    # AWS (botocore reads these): a developer's shell never points a test at a real account.
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ENDPOINT_URL_LAMBDA",
    "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    "AWS_ENDPOINT_URL_SCHEDULER",
    "AWS_PROFILE",
    "OBSERVER_STOP_MARGIN_SECONDS",
    "OBSERVER_HANDOFF_SECONDS",
    "WEBHOOK_LOCK_SECONDS",
    "ACCEPT_MAX_ATTEMPTS",
    "ACCEPT_ATTEMPT_TIMEOUT_SECONDS",
    "ACCEPT_DEADLINE_SECONDS",
    "ACCEPT_BACKOFF_SECONDS",
    "ALLOWED_CALLERS",
    "DENIED_CALLERS",
    "MAX_CONCURRENT_CALLS",
    "MAX_CALL_SECONDS",
    "WRAP_UP_SECONDS",
    "ALLOWED_ORIGINS",
    # Server-side tools.
    "TOOLS",
    "TOOL_TIMEOUT_SECONDS",
    "TOOL_FILLER_SECONDS",
    "END_CALL_MARGIN_SECONDS",
    "SPEECH_WAIT_MAX_SECONDS",
    "END_CALL_QUIET_MS",
    "TRANSFER_TARGET",
    "TRANSFER_CONFIRM_SECONDS",
    "MCP_SERVERS",
    # Agent profiles per dialed number.
    "AGENTS_FILE",
    # Spend limits.
    "MAX_CALL_MINUTES_PER_DAY",
    "MAX_CALLS_PER_CLIENT_PER_HOUR",
    # Call records.
    "RECORDS_TABLE_NAME",
    "RECORD_RETENTION_DAYS",
    "RECORD_FLUSH_SECONDS",
    "TOKEN_PRICES",
    # Outbound calls and recordings.
    "OUTBOUND_TRUNK",
    "OUTBOUND_TRUNK_SECRET_ARN",
    "OUTBOUND_ALLOWED_PREFIXES",
    "RECORDINGS_BUCKET_NAME",
    "AWS_ENDPOINT_URL_S3",
)


class RecordingLauncher:
    """An ObserverLauncher that only records what it was asked to start."""

    def __init__(self) -> None:
        self.requests: list[ObserveRequest] = []
        self.prepared = 0

    def prepare(self) -> None:
        self.prepared += 1

    def launch(self, request: ObserveRequest) -> None:
        self.requests.append(request)


class FakeContext:
    """The Lambda context attributes the handlers and Powertools read."""

    function_name = "test-function"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test-function"

    def __init__(self, remaining_seconds: float = 30.0) -> None:
        self.aws_request_id = uuid.uuid4().hex
        self._deadline = time.monotonic() + remaining_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class LogCapture(logging.Handler):
    """Collects the JSON lines the Powertools logger writes, as CloudWatch gets them. Inside a request
    those are one `request` line whose `events` are the request's own lines (shared/audit.py):
    `records` lists each of them after it, as a line with the request's keys, so a test finds a line
    whether or not it was logged inside a request."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logger.registered_formatter)

    def emit(self, record: logging.LogRecord) -> None:
        if audit.current() is not None and record.levelno < logging.ERROR and not record.exc_info:
            return  # gathered into its request's line, as the real handler does: never written alone
        self.lines.append(self.format(record))

    @property
    def records(self) -> list[dict[str, Any]]:
        records = []
        for line in self.lines:
            record = json.loads(line)
            records.append(record)
            if record["message"] == audit.REQUEST_MESSAGE:
                keys = {k: v for k, v in record.items() if k not in ("message", "level", "events")}
                records.extend({**keys, "level": "INFO", **event} for event in record["events"])
        return records

    def messages(self, message: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["message"] == message]


@pytest.fixture
def logs() -> Iterator[LogCapture]:
    capture = LogCapture()
    target = logging.getLogger(logger.name)
    target.addHandler(capture)
    try:
        yield capture
    finally:
        target.removeHandler(capture)


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=API_KEY).start() as fake:
        yield fake


def _fresh(server: FakeOpenAI) -> Iterator[FakeOpenAI]:
    """A long-lived fake with clean recordings (and fault settings) for one test."""
    server.reset()
    yield server
    server.reset()


@pytest.fixture
def fake(fake_server: FakeOpenAI) -> Iterator[FakeOpenAI]:
    yield from _fresh(fake_server)


@pytest.fixture(scope="session")
def rtc_fake() -> Iterator[FakeOpenAI]:
    """The fake with its aiortc WebRTC peer (tests/fake_webrtc.py), started once."""
    with FakeOpenAI(api_key=API_KEY, webrtc=True).start() as fake:
        yield fake


@pytest.fixture
def webrtc_fake(rtc_fake: FakeOpenAI) -> Iterator[FakeOpenAI]:
    yield from _fresh(rtc_fake)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, fake: FakeOpenAI) -> Iterator[pytest.MonkeyPatch]:
    """A clean environment pointing at the fake, with plain-env secrets; singletons rebuilt."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv("OPENAI_SIGNING_SECRET", SIGNING_SECRET)
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
    monkeypatch.setenv("OBSERVER_LAUNCH", "local")
    deps.reset()
    yield monkeypatch
    deps.reset()
    deps.install_local_launcher(None)


@pytest.fixture
def launcher(env: pytest.MonkeyPatch) -> RecordingLauncher:
    recording = RecordingLauncher()
    deps.install_local_launcher(recording)
    return recording


def response_json(result: dict[str, Any]) -> Any:
    return json.loads(body_of(result))


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """One moto server (DynamoDB, Secrets Manager, Lambda, IAM) on 127.0.0.1 for the session; tests create
    their own uniquely named tables, secrets and functions. boto3 speaks real HTTP to it."""
    from tests.calls_table import SerialMotoServer

    with SerialMotoServer() as server:
        yield server.endpoint
