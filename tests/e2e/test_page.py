"""The page, end to end: real Chromium, `make dev`'s server, a fake OpenAI with a real aiortc peer.

Each test clicks through the page as a person would and checks both sides: what the page shows
and what the fake's WebRTC peer actually received (microphone audio, video, data-channel events),
plus the sideband the observer opened.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Request, expect

from tests.e2e.conftest import ARTIFACTS
from tests.fake_openai import FakeOpenAI, function_call_events, mcp_call_events
from tests.fake_webrtc import WebRTCCall

ASSISTANT_TEXT = "Hello! Thanks for trying the Realtime API."
CALLER_TEXT = "What's new?"
CONNECT_TIMEOUT_MS = 10_000

INBOUND_AUDIO = """async () => {
  const pc = window.__pcs[window.__pcs.length - 1];
  const found = [];
  (await pc.getStats()).forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "audio")
      found.push({ energy: s.totalAudioEnergy || 0, level: s.audioLevel || 0, packets: s.packetsReceived });
  });
  return found[0] || null;
}"""
TRACK_STATES = "() => window.__tracks.map((t) => [t.kind, t.readyState])"
PC_STATES = "() => window.__pcs.map((pc) => pc.connectionState)"


def screenshot(page: Page, name: str) -> None:
    """Saved as a test artifact (artifacts/ is gitignored) for a person to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def start_call(page: Page, timings: dict[str, float] | None = None) -> float:
    """Click Start and wait for Connected; returns click -> connected seconds."""
    started = time.monotonic()
    page.click("#start")
    expect(page.locator("#status")).to_have_text("Connected", timeout=CONNECT_TIMEOUT_MS)
    elapsed = time.monotonic() - started
    print(f"click -> connected: {elapsed * 1000:.0f} ms")
    return elapsed


def only_call(fake: FakeOpenAI) -> WebRTCCall:
    assert fake.wait_for(lambda: len(fake.webrtc_calls) == 1), fake.webrtc_calls
    return next(iter(fake.webrtc_calls.values()))


def check_media_and_conversation(page: Page, fake: FakeOpenAI) -> WebRTCCall:
    """The checks every successful call must pass, whichever way it was connected."""
    call = only_call(fake)
    assert fake.wait_for(lambda: call.connected), call.states
    assert fake.wait_for(lambda: call.data_channel is not None)  # SCTP opens just after DTLS
    assert call.data_channel == "oai-events"
    # The fake received the (beeping) fake microphone: decoded frames, and not silence.
    assert fake.wait_for(lambda: call.audio_frames >= 50 and call.audio_peak > 1000, timeout=5), (
        call.audio_frames,
        call.audio_peak,
    )
    # The page receives the fake's tone: RTP stats say audible, and the page's meter moves.
    page.wait_for_function(
        """async () => {
          const pc = window.__pcs[window.__pcs.length - 1];
          let ok = false;
          (await pc.getStats()).forEach((s) => {
            const audio = s.type === "inbound-rtp" && s.kind === "audio";
            if (audio && s.totalAudioEnergy > 0.001 && s.audioLevel > 0.05) ok = true;
          });
          return ok;
        }""",
        timeout=5_000,
    )
    page.wait_for_function(
        "() => Number(document.querySelector('#remote-level').getAttribute('aria-valuenow')) > 40",
        timeout=5_000,
    )
    page.wait_for_function(
        "() => Number(document.querySelector('#mic-level').getAttribute('aria-valuenow')) > 20", timeout=5_000
    )
    stats: dict[str, Any] = page.evaluate(INBOUND_AUDIO)
    assert stats["packets"] > 10
    # The transcripts the fake sent on the data channel appear as conversation turns.
    expect(page.locator("#transcript .turn.assistant .text")).to_have_text(ASSISTANT_TEXT)
    expect(page.locator("#transcript .turn.you .text")).to_have_text(CALLER_TEXT)
    expect(page.locator("#transcript .turn.pending")).to_have_count(0)
    sent = [e["type"] for e in call.server_events]
    assert sent[0] == "session.created"
    expect(page.locator("#event-count")).to_have_text(str(len(call.server_events)))
    expect(page.locator("#log")).to_contain_text("session.created")
    # The raw event log is collapsed until asked for, then shows each event's JSON.
    expect(page.locator("#events")).to_be_hidden()
    page.click("#events-panel summary")
    expect(page.locator("#events")).to_contain_text('"type":"session.created"')
    expect(page.locator("#events")).to_contain_text(call.server_events[-1]["event_id"])
    # Call id and a running timer.
    expect(page.locator("#call-id")).to_have_text(call.call_id)
    expect(page.locator("#timer")).not_to_have_text("00:00", timeout=3_000)
    return call


def check_observer(fake: FakeOpenAI, call_id: str) -> None:
    """The observer opened the sideband of this very call and asked the model to speak first."""
    assert fake.wait_for(
        lambda: any(
            s.call_id == call_id and "response.create" in s.client_event_types() for s in fake.sidebands
        ),
        timeout=5,
    ), [(s.call_id, s.client_event_types()) for s in fake.sidebands]
    sideband = next(s for s in fake.sidebands if s.call_id == call_id)
    assert sideband.headers["authorization"] == f"Bearer {fake.api_key}"  # the standard key, not the ek_


def stop_call(page: Page, fake: FakeOpenAI, call: WebRTCCall) -> None:
    page.click("#start")
    expect(page.locator("#status")).to_have_text("Disconnected")
    expect(page.locator("#start")).to_have_text("Start")
    expect(page.locator("#led")).to_have_class("led")
    tracks = page.evaluate(TRACK_STATES)
    assert tracks, "the page captured no media"
    assert all(state == "ended" for _, state in tracks), tracks
    assert page.evaluate(PC_STATES)[-1] == "closed"
    expect(page.locator("#remote-level")).to_have_attribute("aria-valuenow", "0")
    expect(page.locator("#mode")).to_be_enabled()
    expect(page.locator("#via")).to_be_enabled()
    # The fake's peer sees the browser leave (DTLS close), so the call really ended on both sides.
    assert fake.wait_for(lambda: call.closed, timeout=10), call.states


def test_call_through_the_server(page: Page, fake: FakeOpenAI) -> None:
    start_call(page)
    call = check_media_and_conversation(page, fake)
    # The server form: the offer went to OpenAI as multipart with the session, under the standard key.
    [create] = fake.requests_to("/realtime/calls")
    assert create.form is not None
    assert create.form["sdp"] == call.offer
    assert create.headers["authorization"] == f"Bearer {fake.api_key}"
    check_observer(fake, call.call_id)
    screenshot(page, "connected.png")
    stop_call(page, fake, call)
    expect(page.locator("#error")).to_be_hidden()


def test_call_directly_with_an_ephemeral_key(page: Page, fake: FakeOpenAI) -> None:
    page.select_option("#via", "direct")
    start_call(page)
    call = check_media_and_conversation(page, fake)
    # The browser form: /token minted a key, the page posted raw SDP with it to the fake's origin.
    assert len(fake.requests_to("/realtime/client_secrets")) == 1
    posts = [r for r in fake.requests_to("/realtime/calls") if r.method == "POST"]
    assert len(posts) == 1
    assert posts[0].headers["authorization"].startswith("Bearer ek_")
    assert posts[0].headers["content-type"].startswith("application/sdp")
    assert posts[0].body.decode() == call.offer
    assert posts[0].headers["origin"] != fake.base_url.removesuffix("/v1")  # really cross-origin
    assert [r.method for r in fake.requests_to("/realtime/calls")].count("OPTIONS") == 1  # CORS preflight
    # The page read the call id from Location and asked the server to observe it.
    check_observer(fake, call.call_id)
    expect(page.locator("#log")).to_contain_text("Observer started")
    stop_call(page, fake, call)


@pytest.mark.parametrize("via", ["server", "direct"])
def test_without_transcription_the_page_shows_no_caller_words(
    context: BrowserContext, untranscribed_dev_server: str, fake: FakeOpenAI, via: str
) -> None:
    page = context.new_page()
    page.goto(untranscribed_dev_server + "/")
    page.select_option("#via", via)
    start_call(page)
    call = only_call(fake)
    # The assistant still speaks, but OpenAI sends no caller transcript to a session that did not ask.
    expect(page.locator("#transcript .turn.assistant .text")).to_have_text(ASSISTANT_TEXT)
    assert "transcription" not in call.session.get("audio", {}).get("input", {})
    assert fake.wait_for(
        lambda: "input_audio_buffer.speech_started" in [e["type"] for e in call.server_events]
    )
    time.sleep(0.3)  # the script's last events (the caller transcripts, if any were sent) have gone
    sent = [e["type"] for e in call.server_events]
    assert not any(t.startswith("conversation.item.input_audio_transcription.") for t in sent)
    # speech_started opens a "You" bubble; without transcription it never gets the caller's words.
    expect(page.locator("#transcript .turn.you .text")).to_have_text([""])
    expect(page.locator("#transcript")).not_to_contain_text(CALLER_TEXT)
    stop_call(page, fake, call)
    page.close()


def test_direct_mode_without_a_readable_location_still_connects(page: Page, fake: FakeOpenAI) -> None:
    fake.cors_expose_location = False  # the browser then hides Location from the page
    page.select_option("#via", "direct")
    start_call(page)
    call = only_call(fake)
    expect(page.locator("#log")).to_contain_text("did not expose the call id")
    expect(page.locator("#call-id")).to_have_text("—")
    expect(page.locator("#transcript .turn.assistant .text")).to_have_text(ASSISTANT_TEXT)
    assert fake.sidebands == []  # nothing to observe without the id
    stop_call(page, fake, call)


@pytest.mark.parametrize("mode", ["webcam", "screen"])
def test_video_goes_on_the_same_connection(page: Page, fake: FakeOpenAI, mode: str) -> None:
    posted: list[str] = []
    page.on("request", lambda request: posted.append(request.url) if "/rtc" in request.url else None)
    page.select_option("#mode", mode)
    start_call(page)
    call = only_call(fake)
    assert sorted(call.tracks) == ["audio", "video"]
    assert fake.wait_for(lambda: call.video_frames >= 5, timeout=5), call.video_frames
    assert call.video_size is not None
    assert call.video_size[0] > 0
    assert posted
    assert all(urlsplit(url).query == "video=true" for url in posted), posted
    expect(page.locator("#preview")).to_have_class("preview active")
    screenshot(page, f"connected-{mode}.png")
    stop_call(page, fake, call)
    expect(page.locator("#preview")).to_have_class("preview")


@pytest.mark.parametrize(
    ("via", "reason"),
    [
        ("server", "The server answered 502."),  # /rtc turns OpenAI's 500 into a 502 with a reason
        ("direct", "OpenAI answered 500."),
    ],
)
def test_upstream_failure_shows_the_reason_and_ends_disconnected(
    page: Page, fake: FakeOpenAI, via: str, reason: str
) -> None:
    fake.fail_next("/realtime/calls", 500)
    page.select_option("#via", via)
    page.click("#start")
    error = page.locator("#error")
    expect(error).to_be_visible()
    expect(page.locator("#error-title")).to_have_text(reason)
    expect(page.locator("#error-text")).to_contain_text("500")  # the one-line reason names the failure
    expect(page.locator("#status")).to_have_text("Disconnected")
    expect(page.locator("#start")).to_have_text("Start")
    assert all(state == "ended" for _, state in page.evaluate(TRACK_STATES))
    assert fake.webrtc_calls == {}
    print(f"{via} failure shown: {error.inner_text()!r}")
    screenshot(page, f"failed-{via}.png")
    # The page is usable again: the next Start connects.
    start_call(page)
    stop_call(page, fake, only_call(fake))
    expect(error).to_be_hidden()


def test_stop_while_the_offer_is_in_flight(page: Page, fake: FakeOpenAI) -> None:
    fake.delay_next("/realtime/calls", 1.5)
    page.click("#start")
    expect(page.locator("#start")).to_have_text("Stop")  # Stop is offered while connecting
    assert fake.wait_for(lambda: len(fake.requests_to("/realtime/calls")) == 1)
    page.click("#start")
    expect(page.locator("#status")).to_have_text("Disconnected")
    assert all(state == "ended" for _, state in page.evaluate(TRACK_STATES))
    # The late answer changes nothing: no error, no call id, still disconnected.
    page.wait_for_timeout(2_000)
    expect(page.locator("#status")).to_have_text("Disconnected")
    expect(page.locator("#error")).to_be_hidden()
    expect(page.locator("#call-id")).to_have_text("—")
    assert page.evaluate(PC_STATES) == ["closed"]


def test_media_path_failure_shows_a_message_and_ends_disconnected(page: Page, fake: FakeOpenAI) -> None:
    assert fake.webrtc is not None
    fake.webrtc.wrong_fingerprint = True  # ICE works, DTLS then fails: no secure media path
    started = time.monotonic()
    page.click("#start")
    expect(page.locator("#error-title")).to_have_text("The connection failed.")
    print(f"media path failure shown after {time.monotonic() - started:.1f} s")
    expect(page.locator("#status")).to_have_text("Disconnected")
    expect(page.locator("#start")).to_have_text("Start")
    assert all(state == "ended" for _, state in page.evaluate(TRACK_STATES))
    assert page.evaluate(PC_STATES)[-1] == "closed"


def test_microphone_denied_gives_a_clear_message(
    strict_browser: Browser, dev_server: str, fake: FakeOpenAI
) -> None:
    # No microphone permission in this context: Chromium refuses getUserMedia (NotAllowedError),
    # as when a person clicks "Block".
    context = strict_browser.new_context()
    try:
        page = context.new_page()
        page.goto(dev_server + "/")
        page.click("#start")
        expect(page.locator("#error-title")).to_have_text("Microphone access was denied.")
        expect(page.locator("#error-text")).to_contain_text("Allow microphone access")
        expect(page.locator("#status")).to_have_text("Disconnected")
        expect(page.locator("#start")).to_have_text("Start")
        expect(page.locator("#mode")).to_be_enabled()
        print(f"denied message: {page.locator('#error').inner_text()!r}")
    finally:
        context.close()
    assert fake.requests_to("/realtime/calls") == []  # nothing was sent anywhere


def test_phone_sized_and_keyboard_only(context: BrowserContext, dev_server: str, fake: FakeOpenAI) -> None:
    page = context.new_page()
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(dev_server + "/")
    # Labelled controls, found by their accessible names.
    expect(page.get_by_label("Connect", exact=True)).to_be_visible()
    expect(page.get_by_label("Share with the model")).to_be_visible()
    expect(page.get_by_role("button", name="Start a call")).to_be_visible()
    expect(page.get_by_role("meter", name="Your microphone level")).to_be_visible()
    expect(page.get_by_role("meter", name="Assistant audio level")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    # Keyboard only: Tab to the controls, Space to start and to stop.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "via"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "mode"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "start"
    page.keyboard.press("Space")
    expect(page.locator("#status")).to_have_text("Connected", timeout=CONNECT_TIMEOUT_MS)
    expect(page.locator("#transcript .turn.assistant .text")).to_have_text(ASSISTANT_TEXT)
    expect(page.locator("#transcript .turn.you .text")).to_have_text(CALLER_TEXT)
    expect(page.locator("#transcript .turn.pending")).to_have_count(0)
    screenshot(page, "connected-phone.png")
    expect(page.get_by_role("button", name="Stop the call")).to_be_focused()
    page.keyboard.press("Space")
    expect(page.locator("#status")).to_have_text("Disconnected")
    page.close()


def test_the_page_needs_no_other_host(page: Page, dev_server: str, fake: FakeOpenAI) -> None:
    hosts: set[str] = set()

    def record(request: Request) -> None:
        hosts.add(urlsplit(request.url).hostname or "")

    page.on("request", record)
    response = page.reload()
    assert response is not None
    # A CSP lets only the page's own inline code run and fetch only this origin and the OpenAI API.
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert f"connect-src 'self' {fake.base_url.removesuffix('/v1')};" in csp
    assert "unsafe-inline" not in csp
    expect(page.locator("#status")).to_have_text("Disconnected")
    # No absolute URL to any host anywhere in the page (scripts, styles, links, fetches).
    assert re.findall(r"(?:https?|wss?):/{2}[A-Za-z0-9]", page.content()) == []
    assert hosts == {"127.0.0.1"}


def test_tool_calls_show_as_bubbles_and_an_ended_call_says_why(page: Page, fake: FakeOpenAI) -> None:
    # What the browser's data channel carries when the observer runs tools: the model's call, then the
    # server's function_call_output item; then end_call, and the far end closes the call.
    assert fake.webrtc is not None
    time_call = function_call_events("call_time", "get_current_time", '{"timezone": "Europe/Paris"}')
    output = {"timezone": "Europe/Paris", "local_time": "2026-12-02 15:00", "weekday": "Wednesday"}
    answered = {
        "type": "conversation.item.done",
        "item": {"type": "function_call_output", "call_id": "call_time", "output": json.dumps(output)},
    }
    fake.webrtc.script = lambda: [
        *time_call,
        answered,
        *mcp_call_events("docs", "search", failed=True)[-1:],
        *function_call_events("call_end", "end_call"),
    ]
    start_call(page)
    call = only_call(fake)
    tools = page.locator("#transcript .turn.tool")
    expect(tools).to_have_count(3)
    expect(tools.nth(0)).to_contain_text('get_current_time({"timezone": "Europe/Paris"})')
    expect(tools.nth(0)).to_contain_text("2026-12-02 15:00")
    expect(tools.nth(0)).not_to_have_class(re.compile("pending"))
    expect(tools.nth(1)).to_contain_text("docs.search")
    expect(tools.nth(1)).to_have_class(re.compile("failed"))
    expect(tools.nth(2)).to_contain_text("end_call(")
    screenshot(page, "tools.png")
    fake.webrtc.close_all_threadsafe()  # the observer hung up: the call ends from the far side
    expect(page.locator("#transcript .turn.ended")).to_contain_text("The assistant ended the call.")
    expect(page.locator("#status")).to_have_text("The assistant ended the call", timeout=10_000)
    expect(page.locator("#start")).to_have_text("Start")
    expect(page.locator("#error")).to_be_hidden()
    assert call.closed
