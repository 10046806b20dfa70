"""Browser fixtures: Debian's Chromium (driven by Playwright), `make dev`'s server, a WebRTC fake OpenAI.

Everything runs on 127.0.0.1: the fake's aiortc peer has no ICE servers and offers only loopback
candidates, and Chromium gets `--allow-loopback-in-peer-connection`. A missing Chromium fails the
tests (`make test` installs it: `make browser`); it never skips them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.conftest import API_KEY, SIGNING_SECRET
from tests.fake_openai import FakeOpenAI

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",  # a beeping microphone and a test-pattern camera
    "--use-fake-ui-for-media-stream",  # accept every media prompt (screen capture included)
    "--auto-select-desktop-capture-source=Entire screen",
    "--autoplay-policy=no-user-gesture-required",
    "--allow-loopback-in-peer-connection",
]

# Watches, without changing them, what the page does with media and peer connections.
OBSERVE_MEDIA = """
(() => {
  window.__tracks = [];
  window.__pcs = [];
  window.__csp = [];
  document.addEventListener("securitypolicyviolation", (e) => {
    window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`);
  });
  const md = navigator.mediaDevices;
  for (const name of ["getUserMedia", "getDisplayMedia"]) {
    const original = md && md[name] && md[name].bind(md);
    if (!original) continue;
    md[name] = async (...args) => {
      const stream = await original(...args);
      stream.getTracks().forEach((t) => window.__tracks.push(t));
      return stream;
    };
  }
  const Native = window.RTCPeerConnection;
  window.RTCPeerConnection = function (...args) {
    const pc = new Native(...args);
    window.__pcs.push(pc);
    return pc;
  };
  window.RTCPeerConnection.prototype = Native.prototype;
})();
"""


@pytest.fixture
def fake(webrtc_fake: FakeOpenAI) -> FakeOpenAI:
    """The browser tests' `fake` is the WebRTC one (tests/conftest.py), clean for each test."""
    return webrtc_fake


@pytest.fixture(scope="session")
def dev_server(rtc_fake: FakeOpenAI) -> Iterator[str]:
    """`make dev` (python -m local_api) in a subprocess, pointed at the fake; yields its URL."""
    yield from _serve(rtc_fake)


@pytest.fixture(scope="session")
def untranscribed_dev_server(rtc_fake: FakeOpenAI) -> Iterator[str]:
    """`make dev` with TRANSCRIPTION_MODEL=off: sessions without `audio.input.transcription`."""
    yield from _serve(rtc_fake, TRANSCRIPTION_MODEL="off")


@pytest.fixture(scope="session")
def live_dev_server(rtc_fake: FakeOpenAI) -> Iterator[str]:
    """`make dev` with VOICE_API=live: GPT-Live is the server's default API."""
    yield from _serve(rtc_fake, VOICE_API="live")


# The test environment's own values of these never reach the server: each server states its settings.
ENV_PREFIXES_SET_HERE = ("OPENAI_", "OBSERVER_", "REALTIME_", "AWS_", "TRANSCRIPTION_", "VOICE_API", "LIVE_")


def _serve(fake: FakeOpenAI, **settings: str) -> Iterator[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(
            ("OPENAI_", "OBSERVER_", "REALTIME_", "AWS_", "TRANSCRIPTION_", "VOICE_API", "LIVE_")
        )
    }
    env.update(
        OPENAI_API_KEY=API_KEY,
        OPENAI_SIGNING_SECRET=SIGNING_SECRET,
        OPENAI_BASE_URL=fake.base_url,
        OBSERVER_LAUNCH="local",
        POWERTOOLS_LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
        **settings,
    )
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "local_api", "--port", "0", "--env-file", str(REPO / "tests/e2e/no.env")],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = _wait_for_url(process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_for_url(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    seen: list[str] = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if line.startswith("Serving on "):
            return line.split()[2]
    process.kill()
    raise RuntimeError("make dev's server did not start:\n" + "".join(seen))


# Module scope, not session: while Playwright's sync API is alive it keeps an asyncio loop running
# on this thread, and every other test's asyncio.run() would then fail.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"Chromium not found at {CHROMIUM}: run `make browser` (apt-get install -y chromium)")
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def strict_browser(playwright: Playwright) -> Iterator[Browser]:
    """Chromium without the auto-accepting media UI: a context's permissions decide, else denied."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"Chromium not found at {CHROMIUM}: run `make browser` (apt-get install -y chromium)")
    args = [arg for arg in CHROMIUM_ARGS if arg != "--use-fake-ui-for-media-stream"]
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
    yield browser
    browser.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    context.add_init_script(OBSERVE_MEDIA)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext, dev_server: str, fake: FakeOpenAI) -> Iterator[Page]:
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.goto(dev_server + "/")
    yield page
    # The page's Content-Security-Policy never had to block anything the page did.
    assert page.evaluate("window.__csp") == []
    page.close()
