"""The OpenAI Realtime and GPT-Live HTTP APIs, on one pooled httpx client per event loop (so per warm
container)."""

from __future__ import annotations

import asyncio
import json
import re
import weakref
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import IO, Any, Literal

import httpx

from shared import tls
from shared.errors import ClientError, UpstreamError, UpstreamTimeout, redact
from shared.secrets import SecretStore
from shared.settings import Settings, VoiceApi

CALL_ID_PATTERN = re.compile(r"^rtc_[A-Za-z0-9_-]{1,200}$")
# OpenAI's error.code for an offer it cannot answer ("Invalid SDP offer. Please try again with a
# WHIP-compliant offer."): the browser's doing, so a 400 in our words, not a 502.
INVALID_OFFER = "invalid_offer"
# A GPT-Live session id (`live_...`, from `live.transport.incoming` or a create): never an `rtc_` id.
LIVE_SESSION_ID_PATTERN = re.compile(r"^live_[A-Za-z0-9_-]{1,200}$")
# Any call id this stack handles: a Realtime call or a GPT-Live session (one pattern for routes' paths).
ANY_CALL_ID_PATTERN = re.compile(r"^(?:rtc|live)_[A-Za-z0-9_-]{1,200}$")
DECISION_ALREADY_MADE = "decision_already_made"
ControlAction = Literal["accept", "reject", "refer", "hangup"]


def is_call_id(value: object) -> bool:
    """A Realtime call id (`rtc_...`) or a GPT-Live session id (`live_...`)."""
    return isinstance(value, str) and ANY_CALL_ID_PATTERN.match(value) is not None


def call_api(call_id: str) -> VoiceApi:
    """The API a call id belongs to, by its prefix (`live_...` GPT-Live, else Realtime)."""
    return "live" if call_id.startswith("live_") else "realtime"


def realtime_call_path(call_id: str, action: ControlAction) -> str:
    """The call-control path of a Realtime call (`rtc_...`); ValueError for anything else."""
    if not CALL_ID_PATTERN.match(call_id):
        raise ValueError(f"not a call id: {call_id[:40]!r}")
    return f"/realtime/calls/{call_id}/{action}"


def live_session_path(session_id: str, action: ControlAction) -> str:
    """The call-control path of a GPT-Live session (`live_...`); ValueError for anything else."""
    if not LIVE_SESSION_ID_PATTERN.match(session_id):
        raise ValueError(f"not a Live session id: {session_id[:40]!r}")
    return f"/live/sessions/{session_id}/{action}"


class DecisionAlreadyMade(UpstreamError):
    """An accept or reject lost to a decision already made for the call (by the other API's webhook,
    or a duplicate delivery): the call is decided, so the webhook answers 2xx quietly. Never retried."""


class EncodedJson(bytes):
    """A JSON body encoded once, as httpx's `json=` encodes it, and sent as it is: a profile's SIP
    accept body is the same on every call, and encoding its ~2 KB per call is a measurable share of
    /sip's own time (docs/PERFORMANCE.md)."""

    @classmethod
    def of(cls, value: Any) -> EncodedJson:
        return cls(json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode())


JsonBody = dict[str, Any] | EncodedJson


def make_headers(api_key: str, content_type: str | None = None) -> dict[str, str]:
    """Authorization (and optionally Content-Type) headers for an OpenAI request."""
    headers = {"Authorization": f"Bearer {api_key}"}
    if content_type:
        headers["Content-Type"] = content_type
    return headers


@dataclass(frozen=True)
class CreatedCall:
    call_id: str
    sdp: str
    content_type: str


@dataclass(frozen=True)
class CreatedLiveSession:
    """`POST /live/sessions` (WebRTC): the new session's id (for the sideband) and the SDP answer."""

    session_id: str
    sdp: str


class OpenAIClient:
    """Calls OpenAI with the standard key. Pass `transport` to test without a network."""

    def __init__(
        self, settings: Settings, secrets: SecretStore, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._settings = settings
        self._secrets = secrets
        self._transport = transport
        # httpx connections belong to the loop that opened them; Mangum keeps one loop per container.
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def base_url(self) -> str:
        return self._settings.api_base

    def _url(self, path: str) -> httpx.URL:
        return _absolute_url(self.base_url, path)

    def _http(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            timeout = self._settings.upstream_timeout_seconds
            client = httpx.AsyncClient(
                base_url=self.base_url,
                transport=self._transport,
                timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
                verify=tls.client_context() if self._transport is None else True,
            )
            self._clients[loop] = client
        return client

    def drop_connections(self) -> None:
        """Forget every pooled connection (SnapStart hooks): the next request opens a new one. A loop
        that is not running gets its client closed properly; sockets of a running one are left to it."""
        clients, self._clients = list(self._clients.items()), weakref.WeakKeyDictionary()
        for loop, client in clients:
            if not loop.is_closed() and not loop.is_running():
                loop.run_until_complete(client.aclose())

    async def create_call(self, offer_sdp: str, session: dict[str, Any]) -> CreatedCall:
        """POST /realtime/calls (multipart sdp + session) -> the SDP answer and the new call id."""
        files = {"sdp": (None, offer_sdp), "session": (None, json.dumps(session))}

        async def post(key: str) -> httpx.Response:
            http = self._http()
            url = self._url("/realtime/calls")
            request = http.build_request("POST", url, files=files, headers=make_headers(key))
            request.read()  # the multipart body in one buffer: streamed, it leaves in ~8 socket writes
            return await http.send(request)

        with _offer_refusals():
            response = await self._send(post)
        call_id = response.headers.get("location", "").rstrip("/").rsplit("/", 1)[-1]
        if not CALL_ID_PATTERN.match(call_id):
            raise UpstreamError("Upstream answer had no usable call id", upstream_status=response.status_code)
        if not response.text.startswith("v="):
            raise UpstreamError("Upstream answer had no SDP", upstream_status=response.status_code)
        content_type = response.headers.get("content-type", "application/sdp")
        return CreatedCall(call_id=call_id, sdp=response.text, content_type=content_type)

    async def create_client_secret(self, session: dict[str, Any], ttl_seconds: int) -> dict[str, Any]:
        """POST /realtime/client_secrets -> `{"value": "ek_...", "expires_at": ..., "session": {...}}`."""
        body = {"expires_after": {"anchor": "created_at", "seconds": ttl_seconds}, "session": session}
        response = await self._post_json("/realtime/client_secrets", body)
        data = _json_object(response)
        if not isinstance(data.get("value"), str) or not isinstance(data.get("expires_at"), int):
            raise UpstreamError("Upstream answer had no client secret", upstream_status=response.status_code)
        return data

    async def accept_call(self, call_id: str, session: JsonBody) -> None:
        await self._call_control(call_id, "accept", session)

    async def reject_call(self, call_id: str, status_code: int = 603) -> None:
        await self._call_control(call_id, "reject", {"status_code": status_code})

    async def hangup_call(self, call_id: str) -> None:
        await self._call_control(call_id, "hangup", None)

    async def refer_call(self, call_id: str, target_uri: str) -> None:
        """SIP transfer: OpenAI sends a REFER to the trunk; the sideband closes once it is done."""
        await self._call_control(call_id, "refer", {"target_uri": target_uri})

    async def _call_control(self, call_id: str, action: ControlAction, body: JsonBody | None) -> None:
        await self._post_json(realtime_call_path(call_id, action), body)

    # ----------------------------------------------------------------- GPT-Live (/live/sessions)

    async def create_live_session(self, body: dict[str, Any]) -> CreatedLiveSession:
        """POST /live/sessions (JSON `{session, transport: {type: "webrtc", sdp}}`, shared/live_session.py)
        -> the session id and the SDP answer."""
        with _offer_refusals():
            response = await self._post_json("/live/sessions", body)
        data = _json_object(response)
        session, transport = data.get("session"), data.get("transport")
        session_id = session.get("id") if isinstance(session, dict) else None
        sdp = transport.get("sdp") if isinstance(transport, dict) else None
        if not isinstance(session_id, str) or not LIVE_SESSION_ID_PATTERN.match(session_id):
            raise UpstreamError(
                "Upstream answer had no usable session id", upstream_status=response.status_code
            )
        if not isinstance(sdp, str) or not sdp.startswith("v="):
            raise UpstreamError("Upstream answer had no SDP", upstream_status=response.status_code)
        return CreatedLiveSession(session_id=session_id, sdp=sdp)

    async def create_outbound_session(self, body: dict[str, Any]) -> str:
        """POST /live/sessions with a SIP transport (shared/live_session.py `outbound_create_body`): dials
        the number; returns the session id once the session is initialised (not when the callee answers).

        Sent exactly once: every create places a new phone call and OpenAI does not dedupe them, so a
        timeout or a connection lost after the request may have gone out is never retried (it raises
        UpstreamTimeout / UpstreamError at once). Only a 401, which places no call, is sent again with a
        refreshed key (`_send`)."""
        response = await self._post_json("/live/sessions", body)
        data = _json_object(response)
        session = data.get("session")
        session_id = session.get("id") if isinstance(session, dict) else None
        if not isinstance(session_id, str) or not LIVE_SESSION_ID_PATTERN.match(session_id):
            raise UpstreamError(
                "Upstream answer had no usable session id", upstream_status=response.status_code
            )
        return session_id

    async def download_recording(self, session_id: str, sink: IO[bytes]) -> int:
        """GET /live/sessions/{id}/content (a stored session's stereo WAV) streamed into `sink`, so a long
        call never sits in memory; returns the bytes written. Raises UpstreamError (404: no recording)."""
        if not LIVE_SESSION_ID_PATTERN.match(session_id):
            raise ValueError(f"not a Live session id: {session_id[:40]!r}")
        path = f"/live/sessions/{session_id}/content"
        refreshed = False
        key = self._secrets.api_key()
        while True:
            headers = {**make_headers(key), "Accept": "application/binary"}
            try:
                async with self._http().stream("GET", self._url(path), headers=headers) as response:
                    if response.status_code == 401 and not refreshed:
                        refreshed, fresh = True, self._secrets.api_key(refresh=True)
                        if fresh != key:
                            key = fresh
                            continue
                    if not response.is_success:
                        await response.aread()
                        raise _upstream_error(response)
                    sink.seek(0)
                    sink.truncate()
                    written = 0
                    async for chunk in response.aiter_bytes():
                        sink.write(chunk)
                        written += len(chunk)
                    return written
            except httpx.TimeoutException as exc:
                raise UpstreamTimeout("OpenAI did not send the recording in time") from exc
            except httpx.HTTPError as exc:
                raise UpstreamError(f"OpenAI unreachable ({type(exc).__name__})") from exc

    async def accept_live_session(self, session_id: str, body: JsonBody) -> None:
        """Accept an inbound SIP call; `body` is `{"session": {"type": "live", ...}}`. Returns once the
        session is initialised; DecisionAlreadyMade when another decision won."""
        await self._live_control(session_id, "accept", body)

    async def reject_live_session(self, session_id: str, status_code: int) -> None:
        """Reject an inbound SIP call: Live requires the SIP status (486 busy, 603 declined)."""
        await self._live_control(session_id, "reject", {"status_code": status_code})

    async def refer_live_session(self, session_id: str, target_uri: str) -> None:
        await self._live_control(session_id, "refer", {"target_uri": target_uri})

    async def hangup_live_session(self, session_id: str) -> None:
        """End a SIP call (no body). A Live WebRTC session ends with `session.close` on the sideband."""
        await self._live_control(session_id, "hangup", None)

    async def _live_control(self, session_id: str, action: ControlAction, body: JsonBody | None) -> None:
        await self._post_json(live_session_path(session_id, action), body)

    async def _post_json(self, path: str, body: JsonBody | None) -> httpx.Response:
        url = self._url(path)

        def post(key: str) -> Awaitable[httpx.Response]:
            if isinstance(body, EncodedJson):
                return self._http().post(url, content=body, headers=make_headers(key, "application/json"))
            return self._http().post(url, json=body, headers=make_headers(key))

        return await self._send(post)

    async def _send(self, request: Callable[[str], Awaitable[httpx.Response]]) -> httpx.Response:
        """Send with the current key; after a 401, fetch the key again once and retry once if it changed."""
        key = self._secrets.api_key()
        response = await _guarded(request, key)
        if response.status_code == 401:
            fresh = self._secrets.api_key(refresh=True)
            if fresh != key:
                response = await _guarded(request, fresh)
        if response.is_success:
            return response
        raise _upstream_error(response)


@lru_cache(maxsize=16)
def _absolute_url(base: str, path: str) -> httpx.URL:
    """`path` under the API base as one absolute URL, parsed once (a fixed path is parsed once per
    container): given a relative path, httpx parses it and the base URL again per request to merge them."""
    return httpx.URL(base.rstrip("/") + path)


def _upstream_error(response: httpx.Response) -> UpstreamError:
    """The error for an unsuccessful answer, with OpenAI's own status, code and message."""
    message, code = _error_detail(response)
    kind = DecisionAlreadyMade if code == DECISION_ALREADY_MADE else UpstreamError
    return kind(
        f"OpenAI answered {response.status_code}: {message or response.reason_phrase or 'error'}",
        upstream_status=response.status_code,
        upstream_code=code,
        upstream_message=message,
    )


@contextmanager
def _offer_refusals() -> Iterator[None]:
    """OpenAI's 400 `invalid_offer` (either API) becomes our 400: the browser's offer is at fault."""
    try:
        yield
    except UpstreamError as exc:
        if exc.upstream_status != 400 or exc.upstream_code != INVALID_OFFER:
            raise
        reason = exc.upstream_message or "invalid offer"
        raise ClientError(400, f"OpenAI refused the SDP offer: {reason}") from None


async def _guarded(request: Callable[[str], Awaitable[httpx.Response]], key: str) -> httpx.Response:
    try:
        return await request(key)
    except httpx.TimeoutException as exc:
        raise UpstreamTimeout("OpenAI did not answer in time") from exc
    except httpx.HTTPError as exc:
        raise UpstreamError(f"OpenAI unreachable ({type(exc).__name__})") from exc


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise UpstreamError("Upstream answer was not a JSON object", upstream_status=response.status_code)
    return data


def _error_detail(response: httpx.Response) -> tuple[str, str | None]:
    """The upstream's own error message and code when it sent them (OpenAI error JSON), else ("", None)."""
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return "", None
    if not isinstance(error, dict):
        return "", None
    message, code = error.get("message"), error.get("code")
    return (
        redact(message) if isinstance(message, str) else "",
        code if isinstance(code, str) else None,
    )
