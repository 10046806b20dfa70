"""The observer function: the HTTP entry (202 + async start) and the sideband worker against the fake."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

import observer_app
import observer_worker
from shared.launcher import ObserveRequest
from tests.conftest import API_KEY, FakeContext, LogCapture, RecordingLauncher, load_event, response_json
from tests.fake_openai import TRANSCRIBING_SESSION, FakeOpenAI, default_sideband_script, response_done_event

CALL_ID = "rtc_observe0123456789"


def worker_event(call_id: str = CALL_ID) -> dict[str, Any]:
    event = load_event("observer_async")
    # The sample's fixed start time lies far in the past: the call limit would end the call at once.
    event.update(call_id=call_id, requested_at=time.time(), call_started_at=time.time())
    return event


def test_http_entry_answers_202_and_starts_the_worker(launcher: RecordingLauncher) -> None:
    event = load_event("observer_http")
    result = observer_app.handler(event, FakeContext())
    call_id = event["pathParameters"]["call_id"]
    assert result["statusCode"] == 202
    assert response_json(result) == {"call_id": call_id, "status": "starting"}
    assert [(r.call_id, r.source) for r in launcher.requests] == [(call_id, "api")]


def test_http_entry_without_a_key_answers_like_the_other_routes(
    launcher: RecordingLauncher, env: pytest.MonkeyPatch
) -> None:
    from shared import deps

    env.delenv("OPENAI_API_KEY")
    deps.reset()
    result = observer_app.handler(load_event("observer_http"), FakeContext())
    assert result["statusCode"] == 500
    assert response_json(result) == {"error": "Server misconfigured: OPENAI_API_KEY is not set"}
    assert launcher.requests == []  # no worker started that could only fail


@pytest.mark.parametrize(
    ("bad_id", "status"),
    [("nope", 400), ("rtc_", 400), ("rtc_" + "x" * 300, 400), ("rtc_a%2Fb", 404)],  # %2F: no such route
)
def test_http_entry_refuses_malformed_ids(launcher: RecordingLauncher, bad_id: str, status: int) -> None:
    event = load_event("observer_http")
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"/observer/{bad_id}"
    event["pathParameters"] = {"call_id": bad_id}
    result = observer_app.handler(event, FakeContext())
    assert result["statusCode"] == status
    assert "error" in response_json(result)
    assert launcher.requests == []


def test_worker_greets_logs_events_and_transcripts(
    fake: FakeOpenAI, env: pytest.MonkeyPatch, logs: LogCapture
) -> None:
    fake.register_call(CALL_ID, TRANSCRIBING_SESSION)  # the caller's words come as text too
    started = time.monotonic()
    result = observer_app.handler(worker_event(), FakeContext(remaining_seconds=60))
    assert result == {"call_id": CALL_ID, "outcome": "closed", "events": len(default_sideband_script()) + 1}
    assert time.monotonic() - started < 5

    (sideband,) = fake.sidebands
    assert sideband.call_id == CALL_ID
    assert sideband.headers["authorization"] == f"Bearer {API_KEY}"
    assert "openai-beta" not in sideband.headers
    (first, *rest) = sideband.client_events
    assert first[1] == {"type": "response.create"}
    assert rest == []
    assert 0.2 <= first[0] - sideband.opened_at < 1.0  # ~250 ms after open

    lines = logs.records
    assert all(line.get("call_id") == CALL_ID for line in lines if "event_type" in line)
    logged_types = [line["event_type"] for line in lines if line["message"] == "sideband event"]
    expected = [
        e["type"]
        for e in default_sideband_script()
        if not e["type"].endswith(".delta") and e["type"] not in observer_transcript_types()
    ]
    assert logged_types == ["session.created", *expected]
    transcripts = {(line["speaker"], line["text"]) for line in lines if line["message"] == "transcript"}
    assert ("assistant", "Hello! Thanks for trying the Realtime API.") in transcripts
    assert ("caller", "What's new?") in transcripts


def observer_transcript_types() -> set[str]:
    from shared.voice_api.realtime import TRANSCRIPTS

    return set(TRANSCRIPTS)


def test_unknown_call_ends_at_once_without_retry(fake: FakeOpenAI, env: pytest.MonkeyPatch) -> None:
    result = observer_app.handler(worker_event("rtc_unknown000"), FakeContext())
    assert result["outcome"] == "not_found"
    assert len(fake.requests_to("/realtime")) == 1  # one handshake, no loop
    assert fake.sidebands == []


def test_worker_stops_before_the_lambda_deadline(fake: FakeOpenAI, env: pytest.MonkeyPatch) -> None:
    fake.register_call(CALL_ID)
    fake.sideband_hold_seconds = -1  # the call goes on and on
    started = time.monotonic()
    # 12 s left minus the 10 s safety margin: the worker must give up after ~2 s.
    result = observer_app.handler(worker_event(), FakeContext(remaining_seconds=12))
    elapsed = time.monotonic() - started
    assert result["outcome"] == "deadline"
    assert 1.5 < elapsed < 5
    assert fake.wait_for(lambda: fake.sidebands[0].closed_at is not None, timeout=3)


def test_abrupt_close_is_a_normal_end(fake: FakeOpenAI, env: pytest.MonkeyPatch) -> None:
    fake.register_call(CALL_ID)
    fake.sideband_abrupt_close = True
    result = observer_app.handler(worker_event(), FakeContext())
    assert result["outcome"] == "closed"


@pytest.mark.parametrize("event", [{}, {"call_id": "bad"}, {"call_id": CALL_ID, "source": "fax"}])
def test_invalid_worker_events_do_nothing(
    fake: FakeOpenAI, env: pytest.MonkeyPatch, event: dict[str, Any]
) -> None:
    assert observer_app.handler(event, FakeContext())["outcome"] == "invalid"
    assert fake.requests == []


def test_missing_key_ends_the_worker(fake: FakeOpenAI, env: pytest.MonkeyPatch) -> None:
    env.delenv("OPENAI_API_KEY")
    from shared import deps

    deps.reset()
    assert observer_app.handler(worker_event(), FakeContext())["outcome"] == "refused"
    assert fake.requests == []


def test_deltas_are_counted_from_their_head_and_everything_else_is_parsed(logs: LogCapture) -> None:
    at = '"response_id":"resp_1","item_id":"item_1","output_index":0,"content_index":0'
    frames = [
        '{"type":"response.output_audio_transcript.delta",'
        + at
        + ',"delta":"Hel","event_id":"event_8"}',  # fake's order
        '{"event_id":"event_9","type":"response.output_audio.delta",'
        + at
        + ',"delta":"AAAA"}',  # docs' order
        '{"delta":"lo",'
        + at
        + ',"event_id":"event_10","type":"response.output_text.delta"}',  # parsed, a delta
        json.dumps({**response_done_event("resp_1"), "event_id": "event_11"}),
        '{"type":"response.done"',  # broken on purpose, not a delta: warned about and not counted
    ]

    class Socket:
        def __aiter__(self) -> Any:
            return self._frames()

        async def _frames(self) -> Any:
            for frame in frames:
                yield frame

    result = observer_worker.ObserveResult("closed")
    request = ObserveRequest(call_id="rtc_heads", source="api")
    call = observer_worker.CallSession(request, url="ws://unused", api_key=API_KEY)
    asyncio.run(observer_worker._read(call, Socket(), result))  # type: ignore[arg-type]
    assert result.events == 4
    assert [r["event_type"] for r in logs.messages("sideband event")] == ["response.done"]
    assert len(logs.messages("sideband frame is not a JSON event")) == 1
