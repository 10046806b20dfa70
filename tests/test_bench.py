"""Smoke test of the benchmark's in-process measures (tiny counts; `make bench` runs the real thing)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from openai.types.live import ConnectServerEvent

from bench import live, tools, warm
from bench.procs import FakeProcess, fake_openai, moto_server
from bench.run import Row, dedupe_config, table
from bench.scenarios import event_call_ids, realistic_script
from tests.moto_aws import boto3_client
from tests.sdk_strict import assert_strict


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[FakeProcess, str]]:
    with (
        moto_server() as moto_url,
        fake_openai(
            [*event_call_ids(), "rtc_benchsmoke1", "rtc_benchsmoke2", "rtc_benchsmoke3", tools.CALL_ID]
        ) as fake,
    ):
        yield fake, moto_url


def test_realistic_script_is_mostly_deltas_with_whole_turns() -> None:
    events = realistic_script(3000)
    assert len(events) == 3000
    types = [e["type"] for e in events]
    deltas = sum(t.endswith(".delta") for t in types)
    assert 0.6 < deltas / len(events) < 0.95
    assert types.count("response.done") >= 10
    assert "conversation.item.input_audio_transcription.completed" in types


def test_warm_measures_run_and_see_one_connection(servers: tuple[FakeProcess, str]) -> None:
    fake, moto_url = servers
    overhead = warm.overhead(fake, repeats=3, warmup=1)
    assert [r.label for r in overhead] == ["/rtc", "/token", "/sip", "/observer (HTTP)", "page"]
    upstream, local = overhead[:3], overhead[3:]
    assert all(r.handler_ms > 0 and r.direct_ms > 0 for r in upstream)
    # Routes with no upstream call: the whole handler time is the added latency.
    assert all(r.direct_ms == 0 and r.added_ms == r.handler_ms > 0 for r in local)
    reuse = warm.connection_reuse(fake, moto_url, invocations=3)
    assert [r.openai_connections for r in reuse] == [1, 1, 1, None]
    assert all(r.lambda_connections for r in reuse if r.label != "/token")


def test_webhook_to_accept_times_each_accept(servers: tuple[FakeProcess, str]) -> None:
    fake, moto_url = servers
    label, env = dedupe_config(moto_url)
    ids = ["rtc_benchsmoke1", "rtc_benchsmoke2", "rtc_benchsmoke3"]
    result = warm.webhook_to_accept(fake, moto_url, ids, (label, env))
    assert result.runs == 1
    assert 0 < result.median_ms < 5000
    # The deliveries were claimed in DynamoDB (on moto), not in an in-process store.
    items = boto3_client("dynamodb", moto_url).scan(TableName=env["CALLS_TABLE_NAME"])["Items"]
    deliveries = [item["pk"]["S"] for item in items if item["pk"]["S"].startswith("webhook#")]
    assert len(deliveries) == len(ids), deliveries  # warm-ups included: one record per delivery


def test_tool_turnaround_times_each_tool_call(servers: tuple[FakeProcess, str]) -> None:
    fake, _ = servers
    result = tools.turnaround(fake, runs=4)
    assert result.runs == 4
    assert 0 < result.median_ms <= result.p90_ms < 5000


def test_live_webhook_to_accept_times_each_live_accept(servers: tuple[FakeProcess, str]) -> None:
    fake, moto_url = servers
    label, env = dedupe_config(moto_url)
    result = live.webhook_to_accept(fake, moto_url, 2, (label, env), {"OBSERVER_LAUNCH": "off"})
    assert result.runs == 2
    assert 0 < result.median_ms < 5000
    items = boto3_client("dynamodb", moto_url).scan(TableName=env["CALLS_TABLE_NAME"])["Items"]
    accepted = [item["pk"]["S"] for item in items if item["pk"]["S"].startswith("webhook#")]
    assert len(accepted) == 4, accepted  # two warm-ups and two timed, each claimed in DynamoDB


def test_live_tool_turnaround_times_each_tool_call(servers: tuple[FakeProcess, str]) -> None:
    fake, _ = servers
    result = live.tool_turnaround(fake, runs=4)
    assert result.runs == 4
    assert 0 < result.median_ms <= result.p90_ms < 5000


def test_table_marks_pass_fail_and_report_only_rows() -> None:
    text = table(
        [
            Row("m", "a", 1, "ms", "<= 2", True),
            Row("m", "b", 3, "ms", "<= 2", False),
            Row("m", "c", 1, "", "-", None),
        ]
    )
    lines = text.splitlines()
    assert lines[2].rstrip().endswith("PASS")
    assert lines[3].rstrip().endswith("FAIL")
    assert lines[4].rstrip().endswith("-")


def test_live_frame_work_times_the_worker_s_own_handling_of_each_frame(
    servers: tuple[FakeProcess, str],
) -> None:
    """Measure 5's GPT-Live target row: the worker handles every frame (reflected audio from its ends
    only), and that costs less than parsing each one."""
    fake, _ = servers
    audio = base64.b64encode(bytes(960)).decode()  # 20 ms of PCM16 at 24 kHz

    def frame(event: dict[str, Any], **dumps: Any) -> str:
        assert_strict(ConnectServerEvent, event)  # as GPT-Live sends it, every required field
        return json.dumps(event, **dumps)

    frames = []
    for n in range(200):
        at = {"start_ms": n * 20, "end_ms": n * 20 + 20}
        frames.append(frame({"type": "session.input_audio.append", "audio": audio}, separators=(",", ":")))
        frames.append(frame({"type": "session.output_audio.delta", "delta": audio, **at}))
        if n % 20 == 0:
            words = {"type": "session.output_transcript.delta", "event_id": f"e{n}", "delta": "hi", **at}
            frames.append(frame(words))
    result = live.frame_work(fake, frames, repeats=3)
    assert (result.frames, result.audio_frames) == (len(frames), 400)
    assert 0 < result.observer_us < result.json_loads_us
