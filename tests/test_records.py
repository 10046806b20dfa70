"""Call records (shared/records/store.py): the stores on moto and in memory, and records written by real calls
through the local stack (local_api + the fake OpenAI's sideband): transcripts, tool calls, end reason,
usage, masked numbers, retention, hand-off appends."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import observer_app
from local_api.server import LocalServer, create_gateway
from shared import deps
from shared.errors import ClientError
from shared.launcher import LocalObserverLauncher
from shared.records import (
    DAY_SECONDS,
    MAX_STORED_BYTES,
    CallMeta,
    DynamoRecordStore,
    MemoryRecordStore,
    RecordBatch,
    RecordPolicy,
    RecordStore,
    RecordsUnavailable,
    encode_cursor,
    merged_prices,
    tool_call,
    turn,
    usage_of,
)
from tests.calls_table import create_calls_table, create_records_table, dynamodb_client
from tests.conftest import (
    API_KEY,
    FakeContext,
    LogCapture,
    RecordingLauncher,
    incoming_call_body,
    load_event,
    sign,
    with_body,
)
from tests.fake_openai import (
    TRANSCRIBING_SESSION,
    FakeOpenAI,
    caller_transcript_event,
    default_sideband_script,
    function_call_events,
    response_done_event,
)
from tests.moto_aws import aws_environment, boto3_client
from tests.test_records_pricing import FULL_USAGE


def meta(call_id: str = "rtc_rec0001", started: float = 1_800_000_000.0, **changes: Any) -> CallMeta:
    fields: dict[str, Any] = {
        "call_id": call_id,
        "source": "sip",
        "caller": "+1555***0123",
        "dialed": "+1555***0000",
        "agent": "default",
        "model": "gpt-realtime",
        "started_at": started,
    }
    return CallMeta(**{**fields, **changes})


# ----------------------------------------------------------------- the stores (moto and memory)


@pytest.fixture
def records_table(moto_endpoint: str) -> str:
    name = f"records-{uuid.uuid4().hex[:8]}"
    create_records_table(dynamodb_client(moto_endpoint), name)
    return name


def dynamo(moto_endpoint: str, table: str, retention_days: int = 30) -> DynamoRecordStore:
    client = boto3_client("dynamodb", moto_endpoint)
    return DynamoRecordStore(table, client, RecordPolicy(retention_days, merged_prices({})))


@pytest.fixture(params=["dynamodb", "memory"])
def make_store(request: pytest.FixtureRequest, moto_endpoint: str) -> Any:
    def build(retention_days: int = 30) -> RecordStore:
        if request.param == "memory":
            return MemoryRecordStore(RecordPolicy(retention_days))
        table = f"records-{uuid.uuid4().hex[:8]}"
        create_records_table(dynamodb_client(moto_endpoint), table)
        return dynamo(moto_endpoint, table, retention_days)

    return build


def test_the_table_has_ttl_on_expires_at_and_the_listing_index(
    moto_endpoint: str, records_table: str
) -> None:
    client = dynamodb_client(moto_endpoint)
    ttl = client.describe_time_to_live(TableName=records_table)["TimeToLiveDescription"]
    assert (ttl["AttributeName"], ttl["TimeToLiveStatus"]) == ("expires_at", "ENABLED")
    (index,) = client.describe_table(TableName=records_table)["Table"]["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "by_start"
    # The index carries summaries: no transcript or tool call text is copied into it.
    assert index["Projection"]["ProjectionType"] == "INCLUDE"
    assert not {"turns", "tool_calls"} & set(index["Projection"]["NonKeyAttributes"])


def test_a_record_keeps_masked_numbers_and_expires_after_the_retention(make_store: Any) -> None:
    store = make_store()
    batch = RecordBatch(
        turns=[
            turn("assistant", "Hello!", 30, at=1_800_000_001.0),
            turn("caller", "Hi", 30, at=1_800_000_003),
        ],
        tool_calls=[
            tool_call(
                "get_current_time", '{"timezone": "UTC"}', '{"t": 1}', ok=True, ms=3.5, retention_days=30
            )
        ],
        usage=usage_of({"usage": FULL_USAGE}),
    )
    store.write(meta(), batch)
    record = store.get_call("rtc_rec0001")
    assert record is not None
    assert (record.caller, record.dialed, record.source, record.agent) == (
        "+1555***0123",
        "+1555***0000",
        "sip",
        "default",
    )
    assert record.started_at == "2027-01-15T08:00:00Z"
    assert record.expires_at == "2027-02-14T08:00:00Z"  # 30 days on
    assert (record.ended_at, record.end_reason, record.duration_seconds) == (None, None, None)  # live
    assert [(t.role, t.text, t.at) for t in record.turns] == [
        ("assistant", "Hello!", "2027-01-15T08:00:01Z"),
        ("caller", "Hi", "2027-01-15T08:00:03Z"),
    ]
    (tool,) = record.tool_calls
    assert (tool.name, tool.arguments, tool.result, tool.error, tool.ms) == (
        "get_current_time",
        {"timezone": "UTC"},
        '{"t": 1}',
        None,
        3.5,
    )
    assert record.usage.input_audio_tokens == 350
    assert record.cost_usd == pytest.approx(0.0225)
    # Later writes of the same writer send no metadata: usage alone, then the end alone.
    store.write(meta(), RecordBatch(usage={"responses": 1, "input_text_tokens": 0}), first=False)
    store.write(meta(), RecordBatch(), first=False)  # nothing to add: no request at all
    store.write(meta(), RecordBatch(ended_at=1_800_000_042.5, end_reason="caller_hung_up"), first=False)
    ended = store.get_call("rtc_rec0001")
    assert ended is not None
    assert ended.usage.responses == 2
    assert (ended.end_reason, ended.duration_seconds, ended.ended_at) == (
        "caller_hung_up",
        42.5,
        "2027-01-15T08:00:42Z",
    )
    assert store.get_call("rtc_nosuchcall") is None


def test_a_successor_appends_and_never_resets_the_record(make_store: Any) -> None:
    store = make_store()
    first = meta()
    store.write(
        first,
        RecordBatch(turns=[turn("assistant", "one", 30)], usage={"responses": 1, "output_audio_tokens": 10}),
    )
    # The successor's copy of the metadata differs (a later start, another model): the first one stays.
    successor = meta(started=1_800_000_500.0, model="gpt-realtime-mini", caller="+1999***9999", agent="other")
    store.write(
        successor,
        RecordBatch(turns=[turn("caller", "two", 30)], usage={"responses": 1, "output_audio_tokens": 5}),
    )
    store.write(
        successor, RecordBatch(tool_calls=[tool_call("echo", "{}", "x", ok=True, ms=1, retention_days=30)])
    )
    record = store.get_call("rtc_rec0001")
    assert record is not None
    assert [t.text for t in record.turns] == ["one", "two"]
    assert [c.name for c in record.tool_calls] == ["echo"]
    assert (record.usage.responses, record.usage.output_audio_tokens) == (2, 15)
    assert (record.caller, record.agent, record.started_at) == (
        "+1555***0123",
        "default",
        "2027-01-15T08:00:00Z",
    )
    assert record.cost_usd == pytest.approx(15 * 64 / 1e6)  # priced as gpt-realtime, the first model


def test_an_outbound_call_s_progress_is_appended_in_order(make_store: Any) -> None:
    store = make_store()
    placed = meta(source="outbound")
    store.write(placed, RecordBatch(progress=[{"event": "ringing", "at": 1_800_000_001.0}]))
    failed = {"event": "failed", "at": 1_800_000_009.0, "code": "busy"}
    store.write(placed, RecordBatch(progress=[failed], ended_at=1_800_000_009.0, end_reason="call_failed"))
    record = store.get_call("rtc_rec0001")
    assert record is not None
    assert [(p.event, p.at, p.code) for p in record.progress] == [
        ("ringing", "2027-01-15T08:00:01Z", None),
        ("failed", "2027-01-15T08:00:09Z", "busy"),
    ]
    assert (record.direction, record.end_reason) == ("outbound", "call_failed")


def test_retention_zero_stores_no_text_and_keeps_metadata_30_days(make_store: Any) -> None:
    store = make_store(retention_days=0)
    store.write(
        meta(),
        RecordBatch(
            turns=[turn("caller", "my card number is 4111", 0)],
            tool_calls=[
                tool_call("lookup", '{"card": "4111"}', '{"balance": 12}', ok=True, ms=2, retention_days=0),
                tool_call(
                    "lookup",
                    '{"card": "4111"}',
                    '{"error": "card 4111 unknown"}',
                    ok=False,
                    ms=1,
                    retention_days=0,
                ),
            ],
        ),
    )
    record = store.get_call("rtc_rec0001")
    assert record is not None
    assert "4111" not in record.model_dump_json()
    assert [t.text for t in record.turns] == [""]
    assert [(c.name, c.arguments, c.result, c.error) for c in record.tool_calls] == [
        ("lookup", None, None, None),
        ("lookup", None, None, "error"),  # the flag, not the reason (it may quote the arguments)
    ]
    assert record.expires_at == "2027-02-14T08:00:00Z"  # METADATA_RETENTION_DAYS


def test_a_record_stops_taking_text_before_the_item_limit(make_store: Any) -> None:
    store = make_store()
    long_turn = "x" * 3_000
    for _ in range(MAX_STORED_BYTES // 3_000 + 20):  # well past the cap, 50 turns a batch
        store.write(meta(), RecordBatch(turns=[turn("caller", long_turn, 30)] * 50, usage={"responses": 1}))
    record = store.get_call("rtc_rec0001")
    assert record is not None
    stored = sum(len(t.text) for t in record.turns)
    assert 0 < stored <= MAX_STORED_BYTES
    assert record.usage.responses == MAX_STORED_BYTES // 3_000 + 20  # usage is never dropped
    assert len(record.model_dump_json()) < 400_000


def test_listing_is_newest_first_across_pages(make_store: Any) -> None:
    store = make_store()
    started = [1_800_000_000.0 + 60 * i for i in range(7)]
    for i, at in enumerate(started):
        store.write(meta(f"rtc_page{i}", started=at), RecordBatch(turns=[turn("caller", f"t{i}", 30)]))
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = store.list_calls(limit=3, cursor=cursor)
        pages += 1
        seen += [c.call_id for c in page.calls]
        assert all("turns" not in c.model_dump() for c in page.calls)  # summaries only
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
        assert pages < 10
    assert seen == [f"rtc_page{i}" for i in reversed(range(7))]
    assert pages == 3


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64 !!",
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        base64.urlsafe_b64encode(b"{}").decode(),
        encode_cursor({"call_id": {"S": "rtc_x"}, "kind": {"S": "other"}, "started_at": {"N": "1"}}),
        encode_cursor({"call_id": {"S": "../etc"}, "kind": {"S": "call"}, "started_at": {"N": "1"}}),
        encode_cursor({"call_id": {"S": "rtc_x"}, "kind": {"S": "call"}, "started_at": {"N": "soon"}}),
        encode_cursor({"call_id": {"N": "1"}, "kind": {"S": "call"}, "started_at": {"N": "1"}}),
        encode_cursor(
            {"call_id": {"S": "rtc_x"}, "kind": {"S": "call"}, "started_at": {"N": "1"}, "x": {"S": ""}}
        ),
    ],
)
def test_a_bad_cursor_is_a_400(make_store: Any, cursor: str) -> None:
    with pytest.raises(ClientError) as refused:
        make_store().list_calls(limit=5, cursor=cursor)
    assert (refused.value.status_code, refused.value.reason) == (400, "Invalid request: cursor is malformed")


def test_an_unreachable_table_is_a_503_naming_nothing(records_table: str) -> None:
    client = boto3_client("dynamodb", "http://127.0.0.1:9", max_attempts=1)
    store = DynamoRecordStore(records_table, client)
    for attempt in (
        lambda: store.get_call("rtc_x"),
        lambda: store.list_calls(limit=1),
        lambda: store.write(meta(), RecordBatch()),
    ):
        with pytest.raises(RecordsUnavailable) as failed:
            attempt()
        assert (failed.value.status_code, failed.value.reason) == (503, "Call records unavailable")


# ----------------------------------------------------------------- written by real calls, local stack

SCRIPT_USAGE = {
    "input_token_details": {
        "text_tokens": 120,
        "audio_tokens": 40,
        "cached_tokens_details": {"text_tokens": 20},
    },
    "output_token_details": {"text_tokens": 10, "audio_tokens": 90},
}


def call_script() -> list[Any]:
    """The fake's default exchange (an assistant turn, response.done with usage, a caller turn), a tool
    call, and a second response.done with fuller usage."""
    script: list[Any] = default_sideband_script()
    script += function_call_events(
        "call_t1", "get_current_time", '{"timezone": "Europe/Paris"}', response_id="resp_tool"
    )
    script.append(response_done_event("resp_more", usage=SCRIPT_USAGE))
    return script


@pytest.fixture
def local_stack(env: pytest.MonkeyPatch) -> Iterator[LocalServer]:
    env.setenv("OBSERVER_GREETING_DELAY_MS", "0")
    env.setenv("TOOL_FILLER_SECONDS", "0")
    deps.reset()
    with LocalServer(create_gateway()) as running:
        yield running


def dynamodb_stack(env: pytest.MonkeyPatch, endpoint: str) -> str:
    """Point every function at DynamoDB on moto, as the template does in AWS; returns the records table."""
    for name, value in aws_environment(endpoint).items():
        env.setenv(name, value)
    calls, records = f"calls-{uuid.uuid4().hex[:8]}", f"records-{uuid.uuid4().hex[:8]}"
    create_calls_table(dynamodb_client(endpoint), calls)
    create_records_table(dynamodb_client(endpoint), records)
    env.setenv("CALL_STORE", "dynamodb")
    env.setenv("CALLS_TABLE_NAME", calls)
    env.setenv("RECORDS_TABLE_NAME", records)
    return records


def wait_for_end(server: LocalServer, call_id: str, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = httpx.get(f"{server.url}/calls/{call_id}")
        if response.status_code == 200 and response.json()["end_reason"] is not None:
            return dict(response.json())
        time.sleep(0.05)
    raise AssertionError(f"no ended record for {call_id}")


def check_recorded_call(record: dict[str, Any], source: str) -> None:
    assert record["source"] == source
    assert record["end_reason"] == "caller_hung_up"  # the fake closed the sideband
    assert record["duration_seconds"] is not None
    assert 0 <= record["duration_seconds"] < 10
    assert [(t["role"], t["text"]) for t in record["turns"]] == [
        ("assistant", "Hello! Thanks for trying the Realtime API."),
        ("caller", "What's new?"),
    ]
    (tool,) = record["tool_calls"]
    assert (tool["name"], tool["arguments"], tool["error"]) == (
        "get_current_time",
        {"timezone": "Europe/Paris"},
        None,
    )
    assert json.loads(tool["result"])["timezone"] == "Europe/Paris"
    assert tool["ms"] >= 0
    # Three response.done events: the default one (181 text in, 18 text + 54 audio out), the tool
    # call's (no usage), and SCRIPT_USAGE.
    assert record["usage"] == {
        "input_text_tokens": 181 + 100,
        "input_audio_tokens": 40,
        "input_cached_text_tokens": 20,
        "input_cached_audio_tokens": 0,
        "output_text_tokens": 18 + 10,
        "output_audio_tokens": 54 + 90,
        "responses": 3,
        **NO_LIVE_USAGE,
    }
    assert (record["api"], record["backend_model"]) == ("realtime", None)
    # gpt-realtime-2.1: text 4 in, 24 out; audio 32 in, 64 out; cached text 0.40 (USD per 1M tokens).
    expected = (281 * 4 + 40 * 32 + 20 * 0.4 + 28 * 24 + 144 * 64) / 1e6
    assert record["cost_usd"] == pytest.approx(expected)


@pytest.mark.parametrize("kind", ["memory", "dynamodb"])
def test_a_sip_call_through_the_local_stack_is_recorded(
    env: pytest.MonkeyPatch, fake: FakeOpenAI, moto_endpoint: str, kind: str
) -> None:
    if kind == "dynamodb":
        dynamodb_stack(env, moto_endpoint)
    env.setenv("OBSERVER_GREETING_DELAY_MS", "0")
    env.setenv("TOOL_FILLER_SECONDS", "0")
    deps.reset()
    call_id = f"rtc_recsip{uuid.uuid4().hex[:12]}"
    fake.register_call(call_id)
    fake.sideband_script = call_script()
    with LocalServer(create_gateway()) as server:
        event = sign(with_body(load_event("sip"), incoming_call_body(call_id)))
        headers = {k: v for k, v in event["headers"].items() if k.startswith("webhook-")}
        response = httpx.post(
            f"{server.url}/sip",
            content=base64.b64decode(event["body"]),
            headers={**headers, "content-type": "application/json"},
        )
        assert response.status_code == 200
        record = wait_for_end(server, call_id)
        listed = httpx.get(f"{server.url}/calls").json()
    check_recorded_call(record, "sip")
    # The webhook's From/To numbers never appear whole (the record keeps masked ones at most).
    text = json.dumps(record) + json.dumps(listed)
    assert "+15551230000" not in text
    assert "+15559870000" not in text
    # /sip passes them on masked, and the record keeps exactly that (and the default profile).
    masked = (record["caller"], record["dialed"], record["agent"])
    assert masked == ("+1555***0000", "+1555***0000", "default")
    assert listed["calls"][0]["call_id"] == call_id
    assert "turns" not in listed["calls"][0]


def test_a_webrtc_call_through_the_local_stack_is_recorded(
    local_stack: LocalServer, fake: FakeOpenAI
) -> None:
    fake.sideband_script = call_script()
    offer = load_event("rtc")["body"]
    response = httpx.post(
        f"{local_stack.url}/rtc", content=offer, headers={"content-type": "application/sdp"}
    )
    assert response.status_code == 200
    assert fake.wait_for(lambda: len(fake.sidebands) == 1)
    call_id = fake.sidebands[0].call_id
    record = wait_for_end(local_stack, call_id)
    check_recorded_call(record, "webrtc")
    assert (record["caller"], record["dialed"], record["agent"]) == ("", "", "default")


@pytest.mark.parametrize(("transcription", "caller_turns"), [(None, ["What's new?"]), ("off", [])])
def test_the_callers_words_reach_the_record_only_when_the_session_transcribes(
    env: pytest.MonkeyPatch, fake: FakeOpenAI, transcription: str | None, caller_turns: list[str]
) -> None:
    if transcription is not None:
        env.setenv("TRANSCRIPTION_MODEL", transcription)
    env.setenv("OBSERVER_GREETING_DELAY_MS", "0")
    deps.reset()
    with LocalServer(create_gateway()) as server:
        offer = load_event("rtc")["body"]
        response = httpx.post(f"{server.url}/rtc", content=offer, headers={"content-type": "application/sdp"})
        assert response.status_code == 200
        assert fake.wait_for(lambda: len(fake.sidebands) == 1)
        record = wait_for_end(server, fake.sidebands[0].call_id)
    # The fake's default script has the caller speak; OpenAI sends their words only to a session with
    # audio.input.transcription, which TRANSCRIPTION_MODEL=off leaves out.
    assert [t["text"] for t in record["turns"] if t["role"] == "caller"] == caller_turns
    assert [t["text"] for t in record["turns"] if t["role"] == "assistant"] == [
        "Hello! Thanks for trying the Realtime API."
    ]


def worker_event(call_id: str, **fields: Any) -> dict[str, Any]:
    event = load_event("observer_async")
    now = time.time()
    event.update(call_id=call_id, source="sip", requested_at=now, call_started_at=now, **fields)
    return event


def test_the_observer_records_the_masked_numbers_and_agent_it_was_given(
    env: pytest.MonkeyPatch, fake: FakeOpenAI
) -> None:
    env.setenv("RECORD_RETENTION_DAYS", "7")
    deps.reset()
    call_id = "rtc_recmask0001"
    fake.register_call(call_id)
    event = worker_event(call_id, caller="+1555***0123", dialed="+1444***9876", agent="sales")
    assert observer_app.handler(event, FakeContext())["outcome"] == "closed"
    record = deps.record_store().get_call(call_id)
    assert record is not None
    assert (record.caller, record.dialed, record.agent, record.source) == (
        "+1555***0123",
        "+1444***9876",
        "sales",
        "sip",
    )
    started = event["call_started_at"]
    assert record.expires_at == time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(started) + 7 * DAY_SECONDS)
    )


def test_an_unknown_call_id_leaves_no_record(env: pytest.MonkeyPatch, fake: FakeOpenAI) -> None:
    """POST /observer/{call_id} is public: a guessed id the sideband refuses must not create records."""
    assert observer_app.handler(worker_event("rtc_recguess0001"), FakeContext())["outcome"] == "not_found"
    assert deps.record_store().list_calls(limit=10).calls == []


def test_a_handed_off_call_is_one_record_appended_to_by_each_generation(
    env: pytest.MonkeyPatch, fake: FakeOpenAI, moto_endpoint: str
) -> None:
    records = dynamodb_stack(env, moto_endpoint)
    env.setenv("OBSERVER_STOP_MARGIN_SECONDS", "2")
    env.setenv("MAX_CALL_SECONDS", "0")
    env.setenv("RECORD_FLUSH_SECONDS", "60")  # only the hand-off and end flushes
    deps.reset()
    call_id = "rtc_rechandoff0001"
    fake.register_call(call_id, TRANSCRIBING_SESSION)  # an accepted call whose caller is transcribed
    fake.sideband_scripts = [
        [caller_transcript_event("first generation"), response_done_event(usage=SCRIPT_USAGE)],
        [caller_transcript_event("second generation"), response_done_event(usage=SCRIPT_USAGE)],
    ]
    fake.sideband_hold_seconds = -1
    outcomes: list[dict[str, Any]] = []

    def successor(event: dict[str, Any]) -> None:
        outcomes.append(observer_app.handler(event, FakeContext(remaining_seconds=30)))

    launcher = LocalObserverLauncher(successor)
    deps.install_local_launcher(launcher)
    first = observer_app.handler(
        worker_event(call_id, caller="+1555***0123"), FakeContext(remaining_seconds=4)
    )
    assert first["outcome"] == "handed_off"
    # The predecessor wrote no end: the call is live.
    store = DynamoRecordStore(records, boto3_client("dynamodb", moto_endpoint))
    live = store.get_call(call_id)
    assert live is not None
    assert live.end_reason is None
    assert fake.wait_for(
        lambda: len(fake.sidebands) == 2 and fake.sidebands[1].server_events != [], timeout=5
    )
    time.sleep(0.3)
    httpx.post(
        f"{fake.base_url}/realtime/calls/{call_id}/hangup", headers={"Authorization": f"Bearer {API_KEY}"}
    )
    for thread in launcher.threads:
        thread.join(timeout=10)
    assert [o["outcome"] for o in outcomes] == ["closed"]
    record = store.get_call(call_id)
    assert record is not None
    assert [t.text for t in record.turns] == ["first generation", "second generation"]
    assert record.usage.responses == 2
    assert record.usage.output_audio_tokens == 180
    assert (record.caller, record.end_reason) == ("+1555***0123", "caller_hung_up")


def test_a_failed_record_write_is_counted_and_the_call_goes_on(
    env: pytest.MonkeyPatch, fake: FakeOpenAI, capsys: pytest.CaptureFixture[str], launcher: RecordingLauncher
) -> None:
    env.setenv("CALL_STORE", "memory")
    deps.reset()

    class Broken(MemoryRecordStore):
        def write(self, meta: CallMeta, batch: RecordBatch, *, first: bool = True) -> None:
            raise RecordsUnavailable("Call records unavailable")

    call_id = "rtc_recbroken0001"
    fake.register_call(call_id)
    fake.sideband_script = call_script()
    capsys.readouterr()
    with deps.record_store.override(Broken()):
        result = observer_app.handler(worker_event(call_id), FakeContext())
    assert result["outcome"] == "closed"
    (sideband,) = fake.sidebands
    assert [o["call_id"] for o in sideband.tool_outputs()] == ["call_t1"]  # the tool still answered
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    failures = [m for m in emf if "RecordWriteFailures" in m]
    assert len(failures) >= 2  # the first write and the last one, at least
    assert all(m["service"] for m in failures)


def test_a_live_call_is_recorded_while_it_lasts(env: pytest.MonkeyPatch, fake: FakeOpenAI) -> None:
    env.setenv("RECORD_FLUSH_SECONDS", "0.2")
    deps.reset()
    call_id = "rtc_reclive0001"
    fake.register_call(call_id, TRANSCRIBING_SESSION)
    fake.sideband_script = [caller_transcript_event("still here")]
    fake.sideband_hold_seconds = -1
    thread = threading.Thread(
        target=lambda: observer_app.handler(worker_event(call_id), FakeContext()), daemon=True
    )
    thread.start()
    store = deps.record_store()

    def live_turns() -> list[str]:
        record = store.get_call(call_id)
        return [] if record is None or record.end_reason is not None else [t.text for t in record.turns]

    assert fake.wait_for(lambda: live_turns() == ["still here"], timeout=5)  # a periodic flush
    httpx.post(
        f"{fake.base_url}/realtime/calls/{call_id}/hangup", headers={"Authorization": f"Bearer {API_KEY}"}
    )
    thread.join(timeout=10)
    record = store.get_call(call_id)
    assert record is not None
    assert (record.end_reason, [t.text for t in record.turns]) == ("caller_hung_up", ["still here"])


class CountingStore(MemoryRecordStore):
    """Counts the writes (each one is a DynamoDB update in AWS)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, meta: CallMeta, batch: RecordBatch, *, first: bool = True) -> None:
        self.writes += 1
        super().write(meta, batch, first=first)


def test_a_finished_turn_is_written_long_before_the_periodic_flush_and_a_burst_is_one_write(
    env: pytest.MonkeyPatch, fake: FakeOpenAI
) -> None:
    env.setenv("RECORD_FLUSH_SECONDS", "15")  # the default: only a turn's end can write sooner
    deps.reset()
    call_id = "rtc_recturn0001"
    fake.register_call(call_id, TRANSCRIBING_SESSION)  # the caller's words as text: the session asks
    burst = [caller_transcript_event(f"burst {n}") for n in range(6)]
    fake.sideband_script = [caller_transcript_event("hello"), 1.5, *burst]
    fake.sideband_hold_seconds = -1
    store = CountingStore()
    started = time.monotonic()
    with deps.record_store.override(store):
        thread = threading.Thread(
            target=lambda: observer_app.handler(worker_event(call_id), FakeContext()), daemon=True
        )
        thread.start()

        def live_turns() -> list[str]:
            record = store.get_call(call_id)
            return [] if record is None else [t.text for t in record.turns]

        assert fake.wait_for(lambda: live_turns() == ["hello"], timeout=5)
        assert time.monotonic() - started < 5  # not the 15 s flush
        assert fake.wait_for(lambda: len(live_turns()) == 7, timeout=5)
        assert time.monotonic() - started < 10
        # The session's first write, "hello", the burst: the six burst turns arrive within 0.1 s, and
        # turns are written at most once a second, so the burst is one or two writes, not six.
        assert store.writes <= 4
        httpx.post(
            f"{fake.base_url}/realtime/calls/{call_id}/hangup",
            headers={"Authorization": f"Bearer {API_KEY}"},
        )
        thread.join(timeout=10)
    record = store.get_call(call_id)
    assert record is not None
    assert record.end_reason == "caller_hung_up"


class Flaky(MemoryRecordStore):
    """Refuses the next `failures` writes, then behaves."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def write(self, meta: CallMeta, batch: RecordBatch, *, first: bool = True) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise RecordsUnavailable("Call records unavailable")
        super().write(meta, batch, first=first)


# What a Realtime call's record holds of GPT-Live's usage: nothing.
NO_LIVE_USAGE = {
    "backend_input_tokens": 0,
    "backend_cached_input_tokens": 0,
    "backend_output_tokens": 0,
    "seconds": 0.0,
}


def recorder_run(store: MemoryRecordStore, texts: list[str]) -> None:
    """Feed a recorder one transcript per flush, as the reader would, then finish the call."""
    from observer_records import Recorder
    from shared.launcher import ObserveRequest
    from shared.voice_api import SessionInfo, Transcript

    async def run() -> Recorder:
        recorder = Recorder(
            store,
            ObserveRequest(call_id="rtc_recflaky0001", source="sip", call_started_at=time.time()),
            model="gpt-realtime",
            retention_days=30,
            flush_seconds=60,
        )
        recorder.on_event(SessionInfo("gpt-realtime-mini"))
        for text in texts:
            recorder.on_event(Transcript("caller", text, final=True))
            await recorder.flush()
        return recorder

    asyncio.run(run()).finish("closed")


def test_a_failed_batch_is_retried_once_with_the_next(env: pytest.MonkeyPatch) -> None:
    store = Flaky(failures=1)
    recorder_run(store, ["one", "two"])
    record = store.get_call("rtc_recflaky0001")
    assert record is not None
    assert [t.text for t in record.turns] == ["one", "two"]
    assert record.end_reason == "caller_hung_up"


def test_a_batch_refused_twice_is_dropped_and_the_record_goes_on(
    env: pytest.MonkeyPatch, logs: LogCapture
) -> None:
    store = Flaky(failures=2)
    recorder_run(store, ["one", "two", "three"])
    record = store.get_call("rtc_recflaky0001")
    assert record is not None
    assert [t.text for t in record.turns] == ["three"]
    assert len(logs.messages("call record batch dropped")) == 1
    assert len(logs.messages("call record write failed")) == 2


def test_a_tool_error_is_recorded_and_counted(
    env: pytest.MonkeyPatch, fake: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    call_id = "rtc_recbadtool0001"
    fake.register_call(call_id)
    fake.sideband_script = [*function_call_events("call_bad", "get_current_time", '{"timezone": 5}')]
    capsys.readouterr()
    assert observer_app.handler(worker_event(call_id), FakeContext())["outcome"] == "closed"
    record = deps.record_store().get_call(call_id)
    assert record is not None
    (tool,) = record.tool_calls
    assert (tool.name, tool.arguments, tool.result) == ("get_current_time", {"timezone": 5}, None)
    assert tool.error is not None
    assert tool.error.startswith("invalid arguments")
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    (counted,) = [m for m in emf if "ToolErrors" in m]
    assert counted["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
