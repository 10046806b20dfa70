"""Call recordings kept in the stack: a stored GPT-Live session's WAV (`store: true` on a Live profile,
OpenAI keeps it 30 days) copied into the stack's own bucket (`RecordingsBucket`: SSE, public access
blocked, TLS only, expiring after RecordRetentionDays) when the call ends, and handed to operators as a
short-lived presigned URL (`GET /calls/{call_id}/recording`).

The copy streams the WAV through a temporary file (a 2-hour stereo call is hundreds of MB: never in
memory) and is retried a few times; whatever happens, the call's record says so (`recording`:
"stored" or "failed" with `recording_error`) and a failure counts in RecordingCopyFailures: a missing
recording is never silent.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
from typing import TYPE_CHECKING

from shared import aws, metrics
from shared.errors import ServiceError, UpstreamError
from shared.log import logger
from shared.records import CallMeta, RecordBatch, RecordingState, RecordStore
from shared.upstream import OpenAIClient

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

URL_SECONDS = 300  # a presigned URL's life: long enough to start a download, short enough not to leak
COPY_ATTEMPTS = 3
BACKOFF_SECONDS = 2.0  # then doubled: the recording may not be ready the instant the session closes
CONTENT_TYPE = "audio/wav"


def recording_key(call_id: str) -> str:
    return f"recordings/{call_id}.wav"


async def copy_recording(
    meta: CallMeta,
    *,
    client: OpenAIClient,
    records: RecordStore,
    bucket: str,
    s3: S3Client | None = None,
    attempts: int = COPY_ATTEMPTS,
    backoff_seconds: float = BACKOFF_SECONDS,
) -> bool:
    """Copy the recording of `meta.call_id` (a Live session started with `store: true`) into `bucket`
    and mark the call's record; True once stored. Call it when the call has ended. Never raises for a
    failed copy (False: the record holds the reason, RecordingCopyFailures counts it)."""
    reason = "RECORDINGS_BUCKET_NAME is not set" if not bucket else ""
    for attempt in range(1, attempts + 1 if bucket else 1):
        try:
            size = await _copy_once(meta.call_id, client, s3 or aws.client("s3"), bucket)
        except ServiceError as exc:
            reason, final = exc.reason, not _worth_retrying(exc)
        except Exception as exc:  # boto3/botocore errors: their type and code only, never their text
            code = aws.error_code(exc)
            reason = f"S3 refused the upload ({code})" if code else f"copy failed ({type(exc).__name__})"
            final = False
        else:
            logger.info("recording stored", extra={"call_id": meta.call_id, "bytes": size})
            _mark(records, meta, "stored", None)
            return True
        logger.warning(
            "recording copy failed", extra={"call_id": meta.call_id, "attempt": attempt, "reason": reason}
        )
        if final or attempt == attempts:
            break
        await asyncio.sleep(random.uniform(0.5, 1.0) * backoff_seconds * 2 ** (attempt - 1))  # noqa: S311
    logger.error("recording not copied", extra={"call_id": meta.call_id, "reason": reason})
    metrics.emit(metrics.RECORDING_COPY_FAILURES)
    _mark(records, meta, "failed", reason[:300])
    return False


def presigned_url(call_id: str, bucket: str, s3: S3Client | None = None) -> str:
    """A GET URL for the call's stored recording, valid URL_SECONDS (signed locally: no AWS call)."""
    if not bucket:
        raise ServiceError("Server misconfigured: RECORDINGS_BUCKET_NAME is not set")
    return (s3 or aws.client("s3")).generate_presigned_url(
        "get_object",
        Params={"Bucket": bucket, "Key": recording_key(call_id)},
        ExpiresIn=URL_SECONDS,
    )


async def _copy_once(call_id: str, client: OpenAIClient, s3: S3Client, bucket: str) -> int:
    with tempfile.TemporaryFile() as spool:
        size = await client.download_recording(call_id, spool)
        spool.seek(0)
        # boto3 blocks; a large file goes up in parts (every part is s3:PutObject for IAM).
        await asyncio.to_thread(
            s3.upload_fileobj, spool, bucket, recording_key(call_id), ExtraArgs={"ContentType": CONTENT_TYPE}
        )
    return size


def _worth_retrying(exc: ServiceError) -> bool:
    """Not ready yet (404 right after the end), throttled, timed out or 5xx: maybe later. Any other
    answer (no stored session, a refused key) will not change."""
    if not isinstance(exc, UpstreamError):
        return False
    status = exc.upstream_status
    return status is None or status in (404, 429) or status >= 500


def _mark(records: RecordStore, meta: CallMeta, state: RecordingState, error: str | None) -> None:
    try:
        records.write(meta, RecordBatch(recording=state, recording_error=error))
    except ServiceError as exc:
        metrics.emit(metrics.RECORD_WRITE_FAILURES)
        logger.error("recording state not recorded", extra={"call_id": meta.call_id, "reason": exc.reason})
