"""The fake OpenAI's WebRTC mode, checked with a Python aiortc peer playing the browser (no Chromium)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from array import array
from typing import Any

import httpx
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame

from local_api.server import LocalServer, create_gateway
from shared import deps
from tests.conftest import API_KEY
from tests.fake_openai import TRANSCRIBING_SESSION, FakeOpenAI
from tests.fake_webrtc import ToneTrack, loopback_only


@pytest.fixture
def fake(webrtc_fake: FakeOpenAI) -> FakeOpenAI:
    return webrtc_fake  # tests/conftest.py: the WebRTC fake, clean for each test


async def _browser_like_call(fake: FakeOpenAI, key: str) -> dict[str, Any]:
    """Offer audio + the oai-events channel like the page does (before ICE gathering ends)."""
    loopback_only()
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTrack(ToneTrack())
    channel = pc.createDataChannel("oai-events")
    received: list[dict[str, Any]] = []
    got_transcript, got_update, got_audio = asyncio.Event(), asyncio.Event(), asyncio.Event()
    peaks: list[int] = []
    consumers: list[asyncio.Task[None]] = []

    @channel.on("message")
    def on_message(message: str) -> None:
        event = json.loads(message)
        received.append(event)
        if event["type"] == "conversation.item.input_audio_transcription.completed":
            got_transcript.set()
        if event["type"] == "session.updated":
            got_update.set()

    @pc.on("track")
    def on_track(track: Any) -> None:
        async def consume() -> None:
            while True:
                try:
                    frame = await track.recv()
                except MediaStreamError:
                    return
                assert isinstance(frame, AudioFrame)
                samples = array("h", bytes(frame.planes[0]))
                peaks.append(max(max(samples), -min(samples)))
                if len(peaks) >= 25:
                    got_audio.set()

        consumers.append(asyncio.ensure_future(consume()))

    await pc.setLocalDescription(await pc.createOffer())
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{fake.base_url}/realtime/calls",
            content=pc.localDescription.sdp,
            headers={
                "Authorization": f"Bearer {key}",
                "Content-Type": "application/sdp",
                "Origin": "http://127.0.0.1:1",
            },
        )
    assert response.status_code == 201, response.text
    await pc.setRemoteDescription(RTCSessionDescription(sdp=response.text, type="answer"))
    await asyncio.wait_for(got_transcript.wait(), timeout=10)
    channel.send(json.dumps({"type": "session.update", "session": {"instructions": "Be brief."}}))
    await asyncio.wait_for(asyncio.gather(got_update.wait(), got_audio.wait()), timeout=10)
    # Keep sending our tone until the fake has heard half a second of it: once the peer is closed no
    # more frames can arrive, and a quick exchange above can finish sooner than that.
    call_id = response.headers["location"].rsplit("/", 1)[-1]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        call = fake.webrtc_calls.get(call_id)
        if call is not None and call.audio_frames >= 25:
            break
        await asyncio.sleep(0.02)
    state = pc.connectionState
    await pc.close()
    return {"response": response, "received": received, "peaks": peaks, "state": state}


def test_answers_with_a_real_peer_on_loopback(fake: FakeOpenAI) -> None:
    result = asyncio.run(
        asyncio.wait_for(
            _browser_like_call(fake, fake.mint_ephemeral_key(session=TRANSCRIBING_SESSION)), timeout=20
        )
    )
    response: httpx.Response = result["response"]
    call_id = response.headers["location"].rsplit("/", 1)[-1]
    assert response.headers["access-control-allow-origin"] == "*"
    assert "Location" in response.headers["access-control-expose-headers"]
    # A real answer: DTLS fingerprint, and host candidates on 127.0.0.1 only.
    answer = response.text
    assert "a=fingerprint:sha-256" in answer
    candidates = re.findall(r"a=candidate:\S+ \d+ udp \d+ (\S+) \d+ typ", answer)
    assert candidates
    assert set(candidates) == {"127.0.0.1"}
    assert result["state"] == "connected"
    # The tone (amplitude 0.3 of full scale) arrived, decoded.
    assert max(result["peaks"]) > 5000
    # oai-events: session.created first, the scripted transcripts, session.updated on request.
    types = [e["type"] for e in result["received"]]
    assert types[0] == "session.created"
    assert "response.output_audio_transcript.done" in types
    assert "session.updated" in types
    call = fake.webrtc_calls[call_id]
    assert fake.wait_for(lambda: call.audio_frames >= 25)
    assert call.audio_peak > 5000  # the client's tone reached the fake
    assert call.client_event_types() == ["session.update"]
    assert call.data_channel == "oai-events"
    assert call_id in fake.known_calls  # a sideband for this call is accepted like any other


def test_cors_preflight_for_the_calls_endpoint(fake: FakeOpenAI) -> None:
    response = httpx.options(
        f"{fake.base_url}/realtime/calls",
        headers={
            "Origin": "http://127.0.0.1:3000",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert response.status_code == 204
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "Authorization" in response.headers["access-control-allow-headers"]
    assert fake.requests_to("/realtime/calls")[0].method == "OPTIONS"


def test_errors_carry_cors_headers_so_the_page_can_read_them(fake: FakeOpenAI) -> None:
    fake.fail_next("/realtime/calls", 500)
    response = httpx.post(
        f"{fake.base_url}/realtime/calls",
        content="v=0\r\n",
        headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/sdp"},
    )
    assert response.status_code == 500
    assert response.headers["access-control-allow-origin"] == "*"
    assert fake.webrtc_calls == {}


def test_an_offer_aiortc_cannot_answer_is_a_400(fake: FakeOpenAI) -> None:
    response = httpx.post(
        f"{fake.base_url}/realtime/calls",
        content="v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n",
        headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/sdp"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_offer"
    assert fake.known_calls == set()


def test_default_fake_keeps_its_plain_behaviour(fake_server: FakeOpenAI) -> None:
    fake_server.reset()
    response = httpx.post(
        f"{fake_server.base_url}/realtime/calls",
        content="v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n",
        headers={"Authorization": f"Bearer {fake_server.api_key}", "Content-Type": "application/sdp"},
    )
    assert response.status_code == 201
    assert "access-control-allow-origin" not in response.headers
    assert fake_server.webrtc_calls == {}
    assert httpx.options(f"{fake_server.base_url}/realtime/calls").status_code == 405


async def _connect_through_rtc_then_leave(fake: FakeOpenAI, stack_url: str) -> str:
    """Call through the local stack's /rtc like the page, wait for the call's sideband, then hang up
    the way a closing tab does: close the peer connection (DTLS close_notify), nothing else."""
    loopback_only()
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTrack(ToneTrack())
    pc.createDataChannel("oai-events")
    await pc.setLocalDescription(await pc.createOffer())
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{stack_url}/rtc", content=pc.localDescription.sdp, headers={"Content-Type": "application/sdp"}
        )
    assert response.status_code == 200, response.text
    await pc.setRemoteDescription(RTCSessionDescription(sdp=response.text, type="answer"))
    call_id = response.headers["x-call-id"]

    def ready() -> bool:
        opened = [s for s in fake.sidebands if s.call_id == call_id and s.closed_at is None]
        return pc.connectionState == "connected" and bool(opened) and bool(opened[0].client_events)

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if ready():
            break
        await asyncio.sleep(0.02)
    assert ready()
    await pc.close()
    return call_id


def test_when_the_browser_leaves_the_sideband_closes_and_the_record_ends(
    fake: FakeOpenAI, env: pytest.MonkeyPatch
) -> None:
    env.setenv("OBSERVER_GREETING_DELAY_MS", "0")
    deps.reset()
    fake.sideband_hold_seconds = -1  # as `make demo` runs it: only the call's end closes the sideband
    with LocalServer(create_gateway()) as server:
        call_id = asyncio.run(asyncio.wait_for(_connect_through_rtc_then_leave(fake, server.url), 20))
        assert fake.wait_for(lambda: all(s.closed_at is not None for s in fake.sidebands), timeout=10)
        assert fake.webrtc_calls[call_id].closed

        def ended() -> bool:
            response = httpx.get(f"{server.url}/calls/{call_id}")
            return response.status_code == 200 and response.json()["end_reason"] is not None

        assert fake.wait_for(ended, timeout=10)
        record = httpx.get(f"{server.url}/calls/{call_id}").json()
    assert (record["source"], record["end_reason"]) == ("webrtc", "caller_hung_up")
    assert fake.requests_to(f"/{call_id}/hangup") == []  # nobody hung up: the browser left
