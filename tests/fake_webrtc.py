"""The WebRTC side of the fake OpenAI: a real aiortc peer that answers a browser's offer.

``FakeOpenAI(webrtc=True)`` hands every ``POST /v1/realtime/calls`` offer to :class:`WebRTCPeers`,
which answers it with a real SDP answer from an ``aiortc`` peer connection. That peer, per call:

- sends an audible 440 Hz tone on the audio track (what "the model speaking" sounds like here);
- receives the caller's microphone audio and any video track, and measures them;
- speaks the ``oai-events`` protocol on the data channel the browser opens: ``session.created``,
  then a short scripted exchange (assistant transcript deltas and done, the caller's transcription),
  ``session.updated`` for ``session.update`` and a fresh response for ``response.create``.

Knobs on ``FakeOpenAI.webrtc`` (reset by ``FakeOpenAI.reset()``): ``event_interval`` (seconds
between data-channel events) and ``wrong_fingerprint`` (answer with another DTLS fingerprint, so the
browser's connection fails after ICE, as with a broken media path).

Everything stays on loopback: no ICE servers (aiortc's default is a public STUN server) and aioice
offers only 127.0.0.1 as a host candidate. The peers live on the fake's own event loop (uvicorn's).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import fractions
import json
import logging
import math
import re
import secrets
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aioice.ice
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame, VideoFrame

from tests.fake_openai import events_for_session

__all__ = ["ToneTrack", "WebRTCCall", "WebRTCPeers", "loopback_only"]

logger = logging.getLogger("fake_openai.webrtc")

SAMPLE_RATE = 48_000
FRAME_SAMPLES = 960  # 20 ms
TONE_HZ = 440
TONE_AMPLITUDE = 0.3


def _loopback_host_addresses(use_ipv4: bool = True, use_ipv6: bool = False) -> list[str]:
    return ["127.0.0.1"] if use_ipv4 else []


def loopback_only() -> None:
    """Make aioice offer 127.0.0.1 only (its default lists every interface address but loopback)."""
    aioice.ice.get_host_addresses = _loopback_host_addresses


class ToneTrack(MediaStreamTrack):
    """A 440 Hz sine, 20 ms mono s16 frames at 48 kHz, paced in real time."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        # One second holds exactly 440 periods, so slicing it cyclically is seamless.
        peak = int(32767 * TONE_AMPLITUDE)
        self._second = array(
            "h", (int(peak * math.sin(2 * math.pi * TONE_HZ * n / SAMPLE_RATE)) for n in range(SAMPLE_RATE))
        ).tobytes()
        self._pts = 0
        self._start: float | None = None
        self.frames_sent = 0

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._pts += FRAME_SAMPLES
            await asyncio.sleep(max(0.0, self._start + self._pts / SAMPLE_RATE - time.monotonic()))
        offset = (self._pts % SAMPLE_RATE) * 2
        frame = AudioFrame(format="s16", layout="mono", samples=FRAME_SAMPLES)
        frame.planes[0].update(self._second[offset : offset + FRAME_SAMPLES * 2])
        frame.pts = self._pts
        frame.sample_rate = SAMPLE_RATE
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        self.frames_sent += 1
        return frame


@dataclass
class WebRTCCall:
    """What the fake's peer saw of one call (read from the test thread; plain counters only)."""

    call_id: str
    offer: str
    answer: str = ""
    states: list[str] = field(default_factory=list)  # connectionState changes, in order
    audio_frames: int = 0  # microphone frames received (decoded)
    audio_peak: int = 0  # largest absolute s16 sample seen in the microphone audio
    video_frames: int = 0
    video_size: tuple[int, int] | None = None
    tracks: list[str] = field(default_factory=list)  # kinds of the tracks the browser sent
    data_channel: str | None = None  # label of the data channel the browser opened
    client_events: list[dict[str, Any]] = field(default_factory=list)  # received on the data channel
    server_events: list[dict[str, Any]] = field(default_factory=list)  # sent on the data channel
    tone_frames: int = 0
    closed: bool = False
    # The call's session (from the ephemeral key, or the `session` part): whether the caller is transcribed.
    session: dict[str, Any] = field(default_factory=lambda: {"type": "realtime"})
    greeting: list[dict[str, Any]] | None = None  # GPT-Live: the only events the data channel sends

    @property
    def connected(self) -> bool:
        return "connected" in self.states

    def client_event_types(self) -> list[str]:
        return [str(event.get("type")) for event in self.client_events]


class WebRTCPeers:
    """The aiortc peers of the fake, one per call, all on the fake's event loop."""

    def __init__(self, script: Callable[[], list[dict[str, Any]]], *, event_interval: float = 0.02) -> None:
        loopback_only()
        # What the data channel plays after session.created (and per response.create); tests swap it.
        self.script = script
        self.event_interval = event_interval
        # Answer with a DTLS fingerprint that is not the peer's: ICE connects, DTLS then fails
        # (what a browser sees when no secure media path can be set up).
        self.wrong_fingerprint = False
        self.calls: dict[str, WebRTCCall] = {}
        # GPT-Live: the session's own events (`relay`), held per call until its data channel opens.
        self._channels: dict[str, RTCDataChannel] = {}
        self._held: dict[str, list[dict[str, Any]]] = {}
        # Told the call id when a peer goes away (the browser left or the media path failed): the fake
        # then ends the call's sideband, as OpenAI does when a WebRTC call ends.
        self.on_closed: Callable[[str], None] | None = None
        # GPT-Live: told each event the browser sends on the data channel (the session acts on it).
        self.on_live_client_event: Callable[[str, dict[str, Any]], None] | None = None
        self._peers: dict[str, RTCPeerConnection] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------------------ answering

    async def answer(
        self,
        call_id: str,
        offer: str,
        session: dict[str, Any] | None = None,
        *,
        greeting: list[dict[str, Any]] | None = None,
    ) -> str:
        """Answer ``offer`` with a real peer for ``call_id`` (whose session is ``session``); returns the
        SDP answer.

        ``greeting``: the data channel sends these events, then what ``relay`` is given (a GPT-Live
        session: no Realtime ``session.created``, script or replies); None: the Realtime protocol.
        """
        self._loop = asyncio.get_running_loop()
        call = WebRTCCall(
            call_id=call_id,
            offer=offer,
            session=copy.deepcopy(session or {"type": "realtime"}),
            greeting=greeting,
        )
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.calls[call_id] = call
        self._peers[call_id] = pc

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            call.states.append(pc.connectionState)
            logger.info("webrtc %s: %s", call_id, pc.connectionState)
            if pc.connectionState in ("failed", "closed"):
                await self._close(call_id)

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            call.tracks.append(track.kind)
            self._spawn(self._consume(call, track))

        @pc.on("datachannel")
        def on_datachannel(channel: RTCDataChannel) -> None:
            call.data_channel = channel.label
            if channel.label != "oai-events":
                return
            self._channels[call_id] = channel

            @channel.on("message")
            def on_message(message: str | bytes) -> None:
                self._on_client_event(call, channel, message)

            self._spawn(self._greet(call, channel))

        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        tone = ToneTrack()
        if any(transceiver.kind == "audio" for transceiver in pc.getTransceivers()):
            pc.addTrack(tone)  # takes the offer's audio transceiver: sendrecv
        answer = await pc.createAnswer()
        await pc.setLocalDescription(answer)  # gathers host candidates (127.0.0.1 only): fast
        call.answer = pc.localDescription.sdp
        if self.wrong_fingerprint:  # every algorithm aiortc lists (sha-256/384/512): same length, other bytes
            call.answer = re.sub(
                r"(a=fingerprint:\S+ )(\S+)",
                lambda m: m[1] + ":".join(secrets.token_hex(1).upper() for _ in m[2].split(":")),
                call.answer,
            )
        self._spawn(self._count_tone(call, tone))
        return call.answer

    # ------------------------------------------------------------------ media

    async def _consume(self, call: WebRTCCall, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if isinstance(frame, AudioFrame):
                call.audio_frames += 1
                samples = array("h", bytes(frame.planes[0]))
                if samples:
                    call.audio_peak = max(call.audio_peak, max(samples), -min(samples))
            elif isinstance(frame, VideoFrame):
                call.video_frames += 1
                call.video_size = (frame.width, frame.height)

    async def _count_tone(self, call: WebRTCCall, tone: ToneTrack) -> None:
        while not call.closed:
            call.tone_frames = tone.frames_sent
            await asyncio.sleep(0.1)
        call.tone_frames = tone.frames_sent

    # ------------------------------------------------------------------ oai-events

    def _send(self, call: WebRTCCall, channel: RTCDataChannel, event: dict[str, Any]) -> None:
        if channel.readyState != "open":
            return
        event = dict(event)
        event.setdefault("event_id", "event_" + secrets.token_hex(12))
        channel.send(json.dumps(event))
        call.server_events.append(event)

    async def _greet(self, call: WebRTCCall, channel: RTCDataChannel) -> None:
        if call.greeting is not None:
            for event in [*call.greeting, *self._held.pop(call.call_id, [])]:
                self._send(call, channel, event)
            return
        session = {"object": "realtime.session", "id": "sess_" + secrets.token_hex(12), **call.session}
        self._send(call, channel, {"type": "session.created", "session": session})
        await self._play_script(call, channel)

    async def _play_script(self, call: WebRTCCall, channel: RTCDataChannel) -> None:
        for event in events_for_session(copy.deepcopy(self.script()), call.session):
            await asyncio.sleep(self.event_interval)
            if channel.readyState != "open":
                return
            self._send(call, channel, event)

    def relay(self, call_id: str, event: dict[str, Any]) -> None:
        """GPT-Live: one of the session's events goes to the browser's data channel (held until it opens;
        on the fake's loop). Unknown or ended calls: dropped."""
        call, channel = self.calls.get(call_id), self._channels.get(call_id)
        if call is None or call.closed:
            return
        if channel is None or channel.readyState != "open":
            self._held.setdefault(call_id, []).append(event)
        else:
            self._send(call, channel, event)

    def close_soon(self, call_id: str, delay: float = 0.2) -> None:
        """End the call's peer connection after ``delay`` s (the data channel flushes first; on the loop)."""

        async def close_later() -> None:
            await asyncio.sleep(delay)
            await self._close(call_id)

        self._spawn(close_later())

    def _on_client_event(self, call: WebRTCCall, channel: RTCDataChannel, message: str | bytes) -> None:
        text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
        try:
            event = json.loads(text)
        except ValueError:
            event = {"type": None, "raw": text}
        if not isinstance(event, dict):
            event = {"type": None, "raw": text}
        call.client_events.append(event)
        if call.greeting is not None:  # GPT-Live: the session decides what the browser may do
            if self.on_live_client_event is not None:
                self.on_live_client_event(call.call_id, event)
            return
        if event.get("type") == "session.update":
            update = event.get("session")
            call.session.update(update if isinstance(update, dict) else {})
            self._send(call, channel, {"type": "session.updated", "session": copy.deepcopy(call.session)})
        elif event.get("type") == "response.create":
            self._spawn(self._play_script(call, channel))

    # ------------------------------------------------------------------ lifecycle

    def _spawn(self, coroutine: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _close(self, call_id: str) -> None:
        pc = self._peers.pop(call_id, None)
        self._channels.pop(call_id, None)
        self._held.pop(call_id, None)
        call = self.calls.get(call_id)
        if call is not None:
            call.closed = True
        if pc is not None:
            await pc.close()
            if self.on_closed is not None:
                self.on_closed(call_id)

    async def close_all(self) -> None:
        for call_id in list(self._peers):
            await self._close(call_id)
        for task in list(self._tasks):
            task.cancel()

    def close_all_threadsafe(self, timeout: float = 5.0) -> None:
        """Close every peer from another thread (the fake's reset()/stop() run on the test thread)."""
        loop = self._loop
        if loop is None or loop.is_closed() or not loop.is_running():
            return
        future = asyncio.run_coroutine_threadsafe(self.close_all(), loop)
        with contextlib.suppress(Exception):
            future.result(timeout)
