"""The page on GPT-Live, end to end: real Chromium, `make dev`'s server, the fake's `/v1/live/sessions`
(strict against the SDK) answering with a real aiortc peer whose data channel carries the session's
events as the browser's permissions allow (tests/fake_live.py relays them; tests/fake_webrtc.py).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e.conftest import ARTIFACTS
from tests.e2e.test_page import CONNECT_TIMEOUT_MS, PC_STATES, TRACK_STATES, screenshot, start_call
from tests.fake_live import (
    live_assistant_speech,
    live_caller_speech,
    live_session_closed,
    live_tool_call_events,
)
from tests.fake_openai import FakeOpenAI
from tests.fake_webrtc import WebRTCCall

ASSISTANT_TEXT = "Hello! You are talking to GPT-Live."
CALLER_TEXT = "What time is it in Paris?"
ANSWER_TEXT = "It is three in the afternoon."
LIVE_RADIO = "input[name=api][value=live]"
REALTIME_RADIO = "input[name=api][value=realtime]"


def live_script(fake: FakeOpenAI, *extra: dict[str, Any] | float) -> None:
    """What the session says, from its start (the observer's own greeting, if it sends one, is silent
    here: the page's bubbles are then exactly these)."""
    fake.live.script_waits_for_sideband = False
    fake.live.speed = 3.0  # speech paced three times faster than real time
    fake.live.greeting_text = ""
    # The observer answers the script's tool calls on the sideband; the script's own speech stands for the
    # model's answer, so the fake says nothing more after the tool's output.
    fake.live.tool_answer_text = ""
    fake.live.script = [
        0.3,
        *live_assistant_speech(ASSISTANT_TEXT),
        0.5,
        *live_caller_speech(CALLER_TEXT),
        *extra,
    ]


def rtc_posts(page: Page) -> list[str]:
    posted: list[str] = []
    page.on("request", lambda request: posted.append(request.url) if "/rtc" in request.url else None)
    return posted


def only_live_call(fake: FakeOpenAI) -> tuple[str, WebRTCCall]:
    assert fake.wait_for(lambda: len(fake.webrtc_calls) == 1), fake.webrtc_calls
    session_id, call = next(iter(fake.webrtc_calls.items()))
    assert session_id.startswith("live_")
    return session_id, call


def check_live_call(page: Page, fake: FakeOpenAI) -> tuple[str, WebRTCCall]:
    """What every page-made GPT-Live call must show, on both sides."""
    session_id, call = only_live_call(fake)
    # The server's create: JSON with the whole offer, ICE already gathered (no trickle on Live), and the
    # data channel in it (created before the offer).
    (create,) = fake.requests_to("/live/sessions")
    assert create.json is not None
    offer = create.json["transport"]["sdp"]
    assert offer == call.offer
    assert "a=candidate:" in offer
    assert "m=application" in offer
    assert fake.requests_to("/realtime/calls") == []
    assert fake.wait_for(lambda: call.connected), call.states
    assert fake.wait_for(lambda: call.data_channel == "oai-events")
    # Media both ways: the fake heard the (beeping) fake microphone; the page gets the fake's tone.
    assert fake.wait_for(lambda: call.audio_frames >= 50 and call.audio_peak > 1000, timeout=5)
    page.wait_for_function(
        "() => Number(document.querySelector('#remote-level').getAttribute('aria-valuenow')) > 40",
        timeout=5_000,
    )
    # Transcript deltas grouped into one bubble per turn, settled (no "…") once the speaker is quiet.
    expect(page.locator("#transcript .turn.assistant .text")).to_have_text([ASSISTANT_TEXT])
    expect(page.locator("#transcript .turn.you .text")).to_have_text([CALLER_TEXT])
    expect(page.locator("#transcript .turn.pending")).to_have_count(0, timeout=5_000)
    expect(page.locator("#log")).to_contain_text(f"assistant: {ASSISTANT_TEXT}")
    expect(page.locator("#log")).to_contain_text(f"you: {CALLER_TEXT}")
    expect(page.locator("#log")).to_contain_text("session.started (gpt-live-1.1)")
    # The page says which API it uses, and names the session.
    expect(page.locator("#api-sub")).to_have_text("Talk with OpenAI GPT-Live over WebRTC.")
    expect(page.locator("#call-id-label")).to_have_text("GPT-Live call")
    expect(page.locator("#call-id")).to_have_text(session_id)
    expect(page.locator("#log")).to_contain_text(f"Answer received for GPT-Live call {session_id}")
    # Only what the browser's permissions allow came on the channel (no usage, no reflected audio) ...
    sent = {event["type"] for event in call.server_events}
    assert sent <= {
        "session.started",
        "session.input_transcript.delta",
        "session.output_transcript.delta",
        "session.delegation.created",
        "response.event",
        "session.closed",
    }, sent
    # ... and the page sent nothing on it (never `session.start`: the server created the session).
    assert call.client_events == []
    return session_id, call


def stop_live_call(page: Page, fake: FakeOpenAI, session_id: str, call: WebRTCCall) -> None:
    page.click("#start")
    expect(page.locator("#status")).to_have_text("Disconnected")
    assert all(state == "ended" for _, state in page.evaluate(TRACK_STATES))
    assert page.evaluate(PC_STATES)[-1] == "closed"
    expect(page.locator(LIVE_RADIO)).to_be_enabled()
    assert fake.wait_for(lambda: call.closed, timeout=10), call.states
    # Stop ended the session itself first (its one event on the channel), then the media.
    assert call.client_event_types() == ["session.close"]
    assert fake.live.sessions[session_id].close_reason == "close_requested"
    expect(page.locator("#log")).to_contain_text("session.closed (close_requested)")
    expect(page.locator("#error")).to_be_hidden()


def test_a_person_chooses_gpt_live_and_talks(page: Page, fake: FakeOpenAI) -> None:
    live_script(fake)
    posted = rtc_posts(page)
    expect(page.locator("#api-sub")).to_have_text("Talk with the OpenAI Realtime API over WebRTC.")
    expect(page.locator(REALTIME_RADIO)).to_be_checked()
    expect(page.locator("#api-choice")).to_contain_text("Realtime (server default)")
    page.check(LIVE_RADIO)
    # GPT-Live has no ephemeral keys (no direct mode) and no video input.
    expect(page.locator("#api-sub")).to_have_text("Talk with OpenAI GPT-Live over WebRTC.")
    expect(page.locator("#via option[value=direct]")).to_be_disabled()
    expect(page.locator("#mode option[value=webcam]")).to_be_disabled()
    expect(page.locator("#mode option[value=screen]")).to_be_disabled()
    start_call(page)
    expect(page.locator(LIVE_RADIO)).to_be_disabled()  # no switching mid-call
    session_id, call = check_live_call(page, fake)
    assert [parse_qs(urlsplit(url).query) for url in posted] == [{"api": ["live"]}]
    expect(page.locator("#log")).to_contain_text("Gathering network candidates")
    expect(page.locator("#error")).to_be_hidden()
    screenshot(page, "connected-live.png")
    stop_live_call(page, fake, session_id, call)
    # Back to Realtime: the page is the Realtime page again, direct mode and video included.
    page.check(REALTIME_RADIO)
    expect(page.locator("#api-sub")).to_have_text("Talk with the OpenAI Realtime API over WebRTC.")
    expect(page.locator("#via option[value=direct]")).to_be_enabled()
    expect(page.locator("#mode option[value=webcam]")).to_be_enabled()


def test_live_tool_activity_shows_and_an_ended_session_says_why(page: Page, fake: FakeOpenAI) -> None:
    # The Responses backend calls a tool (the observer answers it on the sideband: the page sees the
    # call only), then end_call, and the session closes as after the observer's session.close.
    live_script(
        fake,
        *live_tool_call_events("call_time", "get_current_time", '{"timezone": "Europe/Paris"}'),
        0.3,
        *live_assistant_speech(ANSWER_TEXT),
        *live_tool_call_events("call_end", "end_call"),
        0.5,
        live_session_closed("close_requested"),
    )
    page.check(LIVE_RADIO)
    start_call(page)
    session_id, _ = only_live_call(fake)
    tools = page.locator("#transcript .turn.tool")
    expect(tools).to_have_count(2)
    expect(tools.nth(0)).to_contain_text('get_current_time({"timezone": "Europe/Paris"})')
    expect(tools.nth(0)).not_to_have_class(re.compile("pending"))
    expect(tools.nth(1)).to_contain_text("end_call(")
    # The answer after the tool is a new bubble below it, not more words in the first one.
    expect(page.locator("#transcript .turn.assistant .text")).to_have_text([ASSISTANT_TEXT, ANSWER_TEXT])
    log = page.locator("#log")
    expect(log).to_contain_text("delegation to responses")
    expect(log).to_contain_text("tool call: get_current_time")
    expect(log).to_contain_text("session.closed (close_requested)")
    screenshot(page, "tools-live.png")
    expect(page.locator("#transcript .turn.ended")).to_contain_text("The assistant ended the call.")
    kinds = page.locator("#transcript .turn").evaluate_all("turns => turns.map((t) => t.classList[1])")
    assert kinds == ["assistant", "you", "tool", "assistant", "tool", "ended"], kinds
    # The log tells the same story in the same order (a turn is logged once it is complete).
    text = log.inner_text()
    story = [f"assistant: {ASSISTANT_TEXT}", f"you: {CALLER_TEXT}", "tool call: get_current_time"]
    story += [f"assistant: {ANSWER_TEXT}", "tool call: end_call", "session.closed (close_requested)"]
    assert [text.find(line) for line in story] == sorted(text.find(line) for line in story), text
    assert -1 not in [text.find(line) for line in story], text
    expect(page.locator("#status")).to_have_text("The assistant ended the call", timeout=10_000)
    expect(page.locator("#start")).to_have_text("Start")
    expect(page.locator("#error")).to_be_hidden()
    assert fake.live.sessions[session_id].close_reason == "close_requested"


def test_a_live_server_starts_the_page_on_gpt_live(
    context: BrowserContext, live_dev_server: str, fake: FakeOpenAI
) -> None:
    live_script(fake)
    page = context.new_page()
    page.set_default_timeout(10_000)
    posted = rtc_posts(page)
    page.goto(live_dev_server + "/")
    expect(page.locator(LIVE_RADIO)).to_be_checked()
    expect(page.locator("#api-choice")).to_contain_text("GPT-Live (server default)")
    expect(page.locator("#api-sub")).to_have_text("Talk with OpenAI GPT-Live over WebRTC.")
    page.click("#start")
    expect(page.locator("#status")).to_have_text("Connected", timeout=CONNECT_TIMEOUT_MS)
    session_id, call = check_live_call(page, fake)
    stop_live_call(page, fake, session_id, call)
    # Realtime on a Live server: the page names it (?api=realtime) and gets a Realtime call.
    page.check(REALTIME_RADIO)
    page.click("#start")
    expect(page.locator("#status")).to_have_text("Connected", timeout=CONNECT_TIMEOUT_MS)
    assert fake.wait_for(lambda: len(fake.webrtc_calls) == 2)
    expect(page.locator("#call-id")).to_have_text(re.compile(r"^rtc_"))
    expect(page.locator("#call-id-label")).to_have_text("Realtime call")
    assert [parse_qs(urlsplit(url).query) for url in posted] == [{"api": ["live"]}, {"api": ["realtime"]}]
    page.click("#start")
    expect(page.locator("#status")).to_have_text("Disconnected")
    assert page.evaluate("window.__csp") == []
    page.close()
    assert ARTIFACTS.is_dir()
