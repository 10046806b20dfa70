"""A pytest plugin (`-p tests.output_audit`): no secret in any log line or response, across the whole run.

It records every log record (Powertools JSON lines exactly as CloudWatch would get them, and every
other logger) and every response of every function handler (so also every answer of the local
server, which calls the same handlers). After each test it scans what that test produced for the
planted secrets: the OpenAI API key, the webhook signing secret (whole, base64 part and decoded
bytes), the outbound trunk's password, every ephemeral key the fake minted, any value a test plants
(e.g. a rotated key), and any `Bearer <token>` text, and any whole E.164 phone number in a log line
(callers' and dialed numbers are logged masked). A find fails the test in teardown; the run ends
with a one-line tally.

Ephemeral keys are the one allowed exception: /token exists to hand one to the browser, so they may
appear in TokenFunction responses (never in logs).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import importlib
import logging
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from shared.log import logger

# Function modules whose `handler` (or worker entry) answers for a Lambda function.
HANDLERS = {
    "rtc_app": ("handler", "RtcFunction"),
    "token_app": ("handler", "TokenFunction"),
    "sip_app": ("handler", "SipFunction"),
    "page_app": ("handler", "PageFunction"),
    "observer_app": ("handler", "ObserverFunction"),
    "observer_http": ("handler", "ObserverFunction"),
    "observer_worker": ("run_worker", "ObserverFunction"),
    "calls_app": ("handler", "CallsFunction"),
    "hangup_app": ("handler", "HangupFunction"),
}
BEARER = re.compile(r"Bearer\s+[A-Za-z0-9_\-.]{6,}")
# A whole E.164 number (a caller's or the dialed one): logs keep them masked (`+1555***0123`).
PHONE_NUMBER = re.compile(r"(?<![\w*+])\+[1-9]\d{9,14}(?!\d)")


@dataclass
class Sink:
    lines: list[str] = field(default_factory=list)
    responses: list[tuple[str, str]] = field(default_factory=list)  # (function, text)


@dataclass
class Finding:
    where: str
    label: str
    excerpt: str

    def __str__(self) -> str:
        return f"{self.label} found in {self.where}: {self.excerpt[:160]!r}"


class OutputAudit:
    """Collects output and finds planted secrets in it."""

    def __init__(self) -> None:
        self.sink = Sink()
        self.secrets: dict[str, str] = {}  # value -> label
        self.ephemeral: set[str] = set()
        self.scanned_lines = 0
        self.scanned_responses = 0
        self._lock = threading.Lock()
        self._diverted: Sink | None = None

    # ------------------------------------------------------------ planting
    def plant(self, value: str, label: str) -> None:
        if len(value) >= 8:
            self.secrets[value] = label

    def plant_signing_secret(self, secret: str, label: str = "signing secret") -> None:
        self.plant(secret, label)
        raw = secret.removeprefix("whsec_")
        self.plant(raw, label + " (base64)")
        with contextlib.suppress(ValueError):
            decoded = base64.b64decode(raw, validate=True)
            with contextlib.suppress(UnicodeDecodeError):
                self.plant(decoded.decode(), label + " (decoded)")

    def plant_ephemeral(self, value: str) -> None:
        with self._lock:
            self.ephemeral.add(value)

    # ------------------------------------------------------------ recording
    def _target(self) -> Sink:
        return self._diverted or self.sink

    def record_line(self, line: str) -> None:
        with self._lock:
            self._target().lines.append(line)

    def record_response(self, function: str, result: Any) -> None:
        with self._lock:
            self._target().responses.append((function, repr(result)))

    @contextlib.contextmanager
    def diverted(self) -> Iterator[Sink]:
        """Route output to a private sink (for the test that leaks on purpose)."""
        private = Sink()
        with self._lock:
            self._diverted = private
        try:
            yield private
        finally:
            with self._lock:
                self._diverted = None

    # ------------------------------------------------------------ scanning
    def scan_new(self) -> list[Finding]:
        """Scan what the session sink got since the last scan."""
        with self._lock:
            lines_from, responses_from = self.scanned_lines, self.scanned_responses
            self.scanned_lines, self.scanned_responses = len(self.sink.lines), len(self.sink.responses)
        return self.scan(self.sink, lines_from, responses_from)

    def scan(self, sink: Sink, lines_from: int = 0, responses_from: int = 0) -> list[Finding]:
        with self._lock:
            lines = sink.lines[lines_from:]
            responses = sink.responses[responses_from:]
            ephemeral = set(self.ephemeral)
        findings = [
            Finding("a log line", label, line)
            for line in lines
            for label in self._labels(line, ephemeral_allowed=False, ephemeral=ephemeral)
        ]
        findings += [
            Finding("a log line", "full phone number", line) for line in lines if PHONE_NUMBER.search(line)
        ]
        findings += [
            Finding(f"a {function} response", label, text)
            for function, text in responses
            for label in self._labels(
                text, ephemeral_allowed=function == "TokenFunction", ephemeral=ephemeral
            )
        ]
        return findings

    def _labels(self, text: str, *, ephemeral_allowed: bool, ephemeral: set[str]) -> list[str]:
        labels = [label for value, label in self.secrets.items() if value in text]
        if not ephemeral_allowed:
            labels += ["ephemeral key" for value in ephemeral if value in text]
        if BEARER.search(text):
            labels.append("Authorization header value")
        return labels


AUDIT = OutputAudit()


class _AuditHandler(logging.Handler):
    """On the root logger: Powertools records formatted as the JSON line it writes, others as text."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self._plain = logging.Formatter("%(name)s %(levelname)s %(message)s")

    def emit(self, record: logging.LogRecord) -> None:
        try:
            formatter = logger.registered_formatter if record.name == logger.name else self._plain
            AUDIT.record_line(formatter.format(record))
        except Exception:  # a formatting problem must not break the code under test
            self.handleError(record)


def _wrap(function: str, handler: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(handler)
    def recording(*args: Any, **kwargs: Any) -> Any:
        result = handler(*args, **kwargs)
        AUDIT.record_response(function, result)
        return result

    recording.__wrapped_by_audit__ = True  # type: ignore[attr-defined]
    return recording


def install() -> None:
    """Wrap every handler and the fake's key minting; attach the log handler (idempotent)."""
    for module_name, (attribute, function) in HANDLERS.items():
        module = importlib.import_module(module_name)
        current = getattr(module, attribute)
        if not getattr(current, "__wrapped_by_audit__", False):
            setattr(module, attribute, _wrap(function, current))
    from tests.fake_openai import FakeOpenAI

    mint = FakeOpenAI.mint_ephemeral_key
    if not getattr(mint, "__wrapped_by_audit__", False):

        def minting(self: FakeOpenAI, ttl_seconds: float = 600, session: dict[str, Any] | None = None) -> str:
            value = mint(self, ttl_seconds, session)
            AUDIT.plant_ephemeral(value)
            return value

        minting.__wrapped_by_audit__ = True  # type: ignore[attr-defined]
        FakeOpenAI.mint_ephemeral_key = minting  # type: ignore[method-assign]
    root = logging.getLogger()
    if not any(isinstance(h, _AuditHandler) for h in root.handlers):
        root.addHandler(_AuditHandler())


def pytest_configure(config: pytest.Config) -> None:
    from tests.conftest import API_KEY, SIGNING_SECRET, TRUNK_PASSWORD

    install()
    AUDIT.plant(API_KEY, "OpenAI API key")
    AUDIT.plant(TRUNK_PASSWORD, "outbound trunk password")
    AUDIT.plant_signing_secret(SIGNING_SECRET)


@pytest.fixture(autouse=True)
def _audit_outputs() -> Iterator[None]:
    yield
    findings = AUDIT.scan_new()
    if findings:
        pytest.fail("secret in output:\n" + "\n".join(str(f) for f in findings[:10]), pytrace=False)


_late: list[Finding] = []


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Output after the last test's teardown (observer threads may still log): scan it too.
    _late.extend(AUDIT.scan_new())
    if _late:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    terminalreporter.write_line(
        f"output audit: {AUDIT.scanned_lines} log lines and {AUDIT.scanned_responses} handler responses "
        f"scanned for {len(AUDIT.secrets)} planted secrets and {len(AUDIT.ephemeral)} ephemeral keys; "
        f"{len(_late)} leaks after the last test"
    )
    for finding in _late[:10]:
        terminalreporter.write_line(f"  LEAK: {finding}")
