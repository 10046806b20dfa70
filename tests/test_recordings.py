"""Call recordings (shared/recordings.py): a stored GPT-Live session's WAV copied from the fake OpenAI
into an S3 bucket on the moto server, a failed copy marked on the record and counted, and
GET /calls/{call_id}/recording's presigned URL, fetched for real from the moto server."""

from __future__ import annotations

import asyncio
import io
import time
import uuid
import wave
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import calls_app
from shared import deps
from shared.live_session import SipTrunk, live_session, outbound_create_body
from shared.recordings import URL_SECONDS, copy_recording, recording_key
from shared.records import CallMeta, MemoryRecordStore, RecordBatch
from shared.secrets import SecretStore
from shared.settings import Settings
from shared.upstream import OpenAIClient
from tests.conftest import TRUNK, FakeContext, load_event, response_json
from tests.fake_openai import FakeOpenAI
from tests.moto_aws import aws_environment, boto3_client


@pytest.fixture
def bucket(moto_endpoint: str) -> str:
    name = f"recordings-{uuid.uuid4().hex[:12]}"
    boto3_client("s3", moto_endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture
def client(fake: FakeOpenAI) -> OpenAIClient:
    settings = Settings(openai_base_url=fake.base_url, openai_api_key=fake.api_key)
    return OpenAIClient(settings, SecretStore(settings))


def placed_call(fake: FakeOpenAI, client: OpenAIClient, *, store: bool) -> CallMeta:
    """An outbound Live session on the fake, started with or without `store`."""
    fake.live.outbound_enabled = True
    trunk = SipTrunk.model_validate(
        {
            "provider_url": TRUNK["provider_url"],
            "auth": {"username": TRUNK["username"], "password": TRUNK["password"]},
            "caller_number": TRUNK["caller_number"],
        }
    )
    session = live_session(Settings(), "sip", store=store)
    call_id = asyncio.run(
        client.create_outbound_session(outbound_create_body(session, "+14155550123", trunk).to_json())
    )
    return CallMeta(call_id, "outbound", "", "+1415***0123", "sales", "gpt-live-1.1", time.time())


def copy(meta: CallMeta, client: OpenAIClient, records: MemoryRecordStore, bucket: str, s3: Any) -> bool:
    return asyncio.run(
        copy_recording(meta, client=client, records=records, bucket=bucket, s3=s3, backoff_seconds=0.01)
    )


def test_a_stored_call_is_copied_into_the_bucket(
    fake: FakeOpenAI, client: OpenAIClient, bucket: str, moto_endpoint: str
) -> None:
    meta, records, s3 = (
        placed_call(fake, client, store=True),
        MemoryRecordStore(),
        boto3_client("s3", moto_endpoint),
    )
    assert copy(meta, client, records, bucket, s3) is True
    stored = s3.get_object(Bucket=bucket, Key=recording_key(meta.call_id))
    assert stored["ContentType"] == "audio/wav"
    with wave.open(io.BytesIO(stored["Body"].read())) as wav:
        assert (wav.getnchannels(), wav.getsampwidth()) == (2, 2)  # caller left, agent right
        assert wav.getnframes() > 0
    (request,) = fake.requests_to(f"/v1/live/sessions/{meta.call_id}/content")
    assert request.method == "GET"
    record = records.get_call(meta.call_id)
    assert record is not None
    assert (record.recording, record.recording_error, record.direction) == ("stored", None, "outbound")


def test_a_failed_copy_is_retried_then_marked_and_counted(
    fake: FakeOpenAI,
    client: OpenAIClient,
    bucket: str,
    moto_endpoint: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    meta, records = placed_call(fake, client, store=False), MemoryRecordStore()  # no recording upstream
    assert copy(meta, client, records, bucket, boto3_client("s3", moto_endpoint)) is False
    # A 404 may be a recording not ready yet: bounded retries, then the mark.
    assert len(fake.requests_to(f"/v1/live/sessions/{meta.call_id}/content")) == 3
    record = records.get_call(meta.call_id)
    assert record is not None
    assert record.recording == "failed"
    assert record.recording_error is not None
    assert record.recording_error.startswith("OpenAI answered 404")
    assert '"RecordingCopyFailures"' in capsys.readouterr().out  # the EMF data point


def test_an_unusable_bucket_or_none_is_marked_too(
    fake: FakeOpenAI, client: OpenAIClient, moto_endpoint: str
) -> None:
    meta, records = placed_call(fake, client, store=True), MemoryRecordStore()
    assert (
        copy(meta, client, records, "no-such-recordings-bucket", boto3_client("s3", moto_endpoint)) is False
    )
    record = records.get_call(meta.call_id)
    assert record is not None
    assert record.recording_error == "S3 refused the upload (NoSuchBucket)"
    before = len(fake.requests)
    assert copy(meta, client, records, "", None) is False  # RECORDINGS_BUCKET_NAME unset: no download
    assert len(fake.requests) == before
    record = records.get_call(meta.call_id)
    assert record is not None
    assert record.recording_error == "RECORDINGS_BUCKET_NAME is not set"


# ----------------------------------------------------------------- GET /calls/{call_id}/recording


@pytest.fixture
def operator_api(env: pytest.MonkeyPatch, moto_endpoint: str, bucket: str) -> Iterator[MemoryRecordStore]:
    for name, value in aws_environment(moto_endpoint).items():
        env.setenv(name, value)
    env.setenv("RECORDINGS_BUCKET_NAME", bucket)
    deps.reset()
    records = MemoryRecordStore()
    with deps.record_store.override(records):
        yield records


def ask(call_id: str) -> tuple[int, dict[str, Any]]:
    event = load_event("recording")
    event["pathParameters"]["call_id"] = call_id
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"/calls/{call_id}/recording"
    result = calls_app.handler(event, FakeContext())
    return result["statusCode"], response_json(result)


def test_the_recording_url_downloads_the_wav(
    operator_api: MemoryRecordStore, bucket: str, moto_endpoint: str
) -> None:
    call = CallMeta("live_rec0001", "outbound", "", "+1415***0123", "sales", "gpt-live-1.1", time.time())
    boto3_client("s3", moto_endpoint).put_object(
        Bucket=bucket, Key=recording_key(call.call_id), Body=b"RIFF-wav"
    )
    operator_api.write(call, RecordBatch(recording="stored"))
    status, answer = ask(call.call_id)
    assert (status, answer["expires_in"]) == (200, URL_SECONDS)
    assert answer["url"].startswith(f"{moto_endpoint}/{bucket}/recordings/live_rec0001.wav?")
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in answer["url"]
    assert "X-Amz-Expires=300" in answer["url"]
    assert httpx.get(answer["url"]).content == b"RIFF-wav"


@pytest.mark.parametrize(
    ("batch", "reason"),
    [
        (None, "No such call"),
        (RecordBatch(turns=[]), "No recording for this call"),
        (
            RecordBatch(recording="failed", recording_error="OpenAI answered 404: gone"),
            "The recording was not copied: OpenAI answered 404: gone",
        ),
    ],
)
def test_no_recording_is_a_404_saying_why(
    operator_api: MemoryRecordStore, batch: RecordBatch | None, reason: str
) -> None:
    call = CallMeta("live_rec0002", "outbound", "", "", "sales", "gpt-live-1.1", time.time())
    if batch is not None:
        operator_api.write(call, batch)
    status, answer = ask(call.call_id)
    assert status == 404
    assert answer["error"].startswith(reason)


def test_only_live_calls_have_recordings(operator_api: MemoryRecordStore) -> None:
    assert ask("rtc_abc") == (400, {"error": "Invalid request: path.call_id is malformed"})
