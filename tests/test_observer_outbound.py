"""The observer on outbound calls (issue 19), end to end against the fake's GPT-Live: POST /calls dials,
the observer the dial launched attaches, records ringing / answered / failed, greets only once the
phone is answered, runs the same tools (and `press_keys`, one `transport.dtmf.send` per key), ends on
end_call, and copies a `store: true` call's recording into the stack's bucket (moto S3). A failed
call refunds its minutes and frees its slot; a call ringing past the ring limit is hung up."""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.metrics import MetricUnit

import observer_app
import observer_worker
from shared import deps, metrics
from shared.recordings import recording_key
from shared.records import CallRecord
from shared.store import MemoryCallStore
from shared.tools import available_tools, select_tools
from tests.conftest import TRUNK, FakeContext, RecordingLauncher
from tests.fake_live import live_session_closed, live_tool_call_events
from tests.fake_openai import FakeOpenAI
from tests.moto_aws import aws_environment, boto3_client
from tests.test_observer_live import SPEED, sent, types
from tests.test_outbound import TO, dial, minutes_used, slots

AGENTS = """
agents:
  default: {}
  sales:
    api: live
    instructions: You call customers back about their orders.
    store: true
    tools: [end_call, get_current_time, press_keys]
"""


@pytest.fixture
def bucket(moto_endpoint: str) -> str:
    name = f"recordings-{uuid.uuid4().hex[:12]}"
    boto3_client("s3", moto_endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture
def outbound(
    env: pytest.MonkeyPatch,
    fake: FakeOpenAI,
    launcher: RecordingLauncher,
    tmp_path: Path,
    moto_endpoint: str,
    bucket: str,
) -> Iterator[MemoryCallStore]:
    """Outbound on (trunk, prefixes, a `store: true` Live profile with press_keys), a minutes budget
    and a concurrency cap in an in-process call store, the recordings bucket on moto."""
    agents = tmp_path / "agents.yaml"
    agents.write_text(AGENTS)
    for name, value in aws_environment(moto_endpoint).items():
        env.setenv(name, value)
    env.setenv("AGENTS_FILE", str(agents))
    env.setenv("OBSERVER_GREETING_DELAY_MS", "0")
    env.setenv("OUTBOUND_TRUNK", json.dumps(TRUNK))
    env.setenv("OUTBOUND_ALLOWED_PREFIXES", "+1415*")
    env.setenv("MAX_CALL_MINUTES_PER_DAY", "120")
    env.setenv("MAX_CONCURRENT_CALLS", "2")
    env.setenv("RECORDINGS_BUCKET_NAME", bucket)
    env.setenv("END_CALL_QUIET_MS", "400")
    env.setenv("SPEECH_WAIT_MAX_SECONDS", "6")
    deps.reset()
    fake.live.outbound_enabled = True
    fake.live.speed = SPEED
    store = MemoryCallStore()
    with deps.call_store.override(store):
        yield store


@pytest.fixture
def points(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, str]]]:
    """The metric points emitted (name, dimensions), besides being written as usual."""
    seen: list[tuple[str, dict[str, str]]] = []
    emit = metrics.emit

    def recording(
        name: str, value: float = 1, unit: MetricUnit = MetricUnit.Count, **dimensions: str
    ) -> None:
        seen.append((name, dimensions))
        emit(name, value, unit, **dimensions)

    monkeypatch.setattr(metrics, "emit", recording)
    return seen


def outcomes(points: list[tuple[str, dict[str, str]]]) -> list[str]:
    return [dims["outcome"] for name, dims in points if name == metrics.OUTBOUND_CALLS]


def dial_and_observe(launcher: RecordingLauncher, remaining: float = 30) -> tuple[str, dict[str, Any]]:
    """POST /calls, then run the observer it launched (with the event the launcher would send)."""
    status, answer = dial({"to": TO, "agent": "sales", "metadata": {"ticket": "T-1"}})
    assert status == 201, answer
    (request,) = launcher.requests
    result = observer_app.handler(request.to_event(), FakeContext(remaining_seconds=remaining))
    return str(answer["call_id"]), result


def record_of(call_id: str) -> CallRecord:
    record = deps.record_store().get_call(call_id)
    assert record is not None
    return record


def test_an_answered_call_is_greeted_runs_its_tools_and_its_recording_lands_in_the_bucket(
    outbound: MemoryCallStore,
    fake: FakeOpenAI,
    launcher: RecordingLauncher,
    bucket: str,
    moto_endpoint: str,
    points: list[tuple[str, dict[str, str]]],
) -> None:
    fake.live.scripts.append(
        [
            3.0,
            *live_tool_call_events("call_time", "get_current_time", "{}"),
            5.0,
            *live_tool_call_events("call_keys", "press_keys", '{"keys": "1#"}'),
            5.0,
            *live_tool_call_events("call_end", "end_call", "{}"),
            60.0,
            live_session_closed(),
        ]
    )
    call_id, result = dial_and_observe(launcher)
    assert result["outcome"] == "model_ended"
    session = fake.live.sessions[call_id]
    timeline = [e["type"] for e in session.timeline]
    assert timeline.index("transport.ringing") < timeline.index("transport.answered")
    events = sent(fake, call_id)  # every client event strictly as the SDK types it
    assert types(events)[0] == "session.instructions.append"  # the greeting, once answered
    assert timeline.index("session.instructions.appended") > timeline.index("transport.answered")
    keys = [e for e in events if e["type"] == "transport.dtmf.send"]
    assert [e["event"] for e in keys] == ["1", "#"]  # one event per key
    assert [e["event"] for e in session.timeline if e["type"] == "transport.dtmf.sent"] == ["1", "#"]
    assert len(fake.requests_to(f"/live/sessions/{call_id}/hangup")) == 1  # end_call

    record = record_of(call_id)
    assert (record.source, record.direction, record.end_reason) == ("outbound", "outbound", "model_ended")
    assert [p.event for p in record.progress] == ["ringing", "answered"]
    assert [c.name for c in record.tool_calls] == ["get_current_time", "press_keys", "end_call"]
    assert record.tool_calls[1].result == '{"pressed": "1#"}'
    assert record.usage.seconds > 0
    assert record.cost_usd is not None
    assert record.cost_usd > 0
    assert record.recording == "stored"
    stored = boto3_client("s3", moto_endpoint).get_object(Bucket=bucket, Key=recording_key(call_id))
    assert stored["Body"].read()[:4] == b"RIFF"
    assert outcomes(points) == ["answered"]
    assert [dims for name, dims in points if name == metrics.RING_SECONDS] == [{"api": "live"}]
    assert slots(outbound) == {}  # the slot is free again
    assert minutes_used(outbound) < 60  # the rest of the reservation went back


def test_a_busy_call_ends_its_record_refunds_its_minutes_and_frees_its_slot(
    outbound: MemoryCallStore,
    fake: FakeOpenAI,
    launcher: RecordingLauncher,
    points: list[tuple[str, dict[str, str]]],
) -> None:
    fake.live.outbound_outcome = "failed"
    fake.live.script = [60.0, live_session_closed()]
    call_id, result = dial_and_observe(launcher)
    assert result["outcome"] == "call_failed"
    assert types(sent(fake, call_id)) == []  # nobody to greet
    record = record_of(call_id)
    assert record.end_reason == "call_failed"
    assert [(p.event, p.code) for p in record.progress] == [("ringing", None), ("failed", "busy")]
    assert record.recording is None  # nothing to copy from a call never answered
    assert minutes_used(outbound) <= 5
    assert slots(outbound) == {}
    assert outcomes(points) == ["failed"]


def test_a_call_ringing_past_the_ring_limit_is_hung_up(
    outbound: MemoryCallStore,
    fake: FakeOpenAI,
    launcher: RecordingLauncher,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(observer_worker, "RING_LIMIT_SECONDS", 1.0)  # OpenAI's limit: 180 s
    fake.live.outbound_ring_seconds = 10_000.0
    started = time.monotonic()
    call_id, result = dial_and_observe(launcher)
    assert result["outcome"] == "no_answer"
    assert time.monotonic() - started < 8
    assert len(fake.requests_to(f"/live/sessions/{call_id}/hangup")) == 1
    assert types(sent(fake, call_id)) == []  # a ringing phone is never greeted
    record = record_of(call_id)
    assert (record.end_reason, [p.event for p in record.progress]) == ("call_failed", ["ringing"])
    assert slots(outbound) == {}


def test_press_keys_is_opt_in_and_live_sip_only() -> None:
    known = available_tools()
    offered = select_tools(["press_keys"], transfer_target="", known=known, channel="sip", api="live")
    assert "press_keys" in offered
    assert "press_keys" not in select_tools([], transfer_target="", known=known, channel="sip", api="live")
    on_realtime = select_tools(["press_keys"], transfer_target="", known=known, channel="sip", api="realtime")
    on_webrtc = select_tools(["press_keys"], transfer_target="", known=known, channel="webrtc", api="live")
    assert "press_keys" not in {*on_realtime, *on_webrtc}
    arguments = known["press_keys"].arguments
    for bad in ("", "12x", "E", "1" * 33):
        with pytest.raises(ValueError, match="keys"):
            arguments.model_validate({"keys": bad})


def test_the_metadata_reaches_the_observer_and_its_successors() -> None:
    event = {"call_id": "live_abc123", "source": "outbound", "metadata": {"ticket": "T-1", "n": 5}}
    request = observer_worker._parse_request(event)
    assert request is not None
    assert request.metadata == {"ticket": "T-1"}  # strings only, as POST /calls takes them
    successor = observer_worker._parse_request(dataclasses.replace(request, generation=1).to_event())
    assert successor is not None
    assert (successor.metadata, successor.generation) == ({"ticket": "T-1"}, 1)
