"""Where call records live: one item per call, in a dict (`make dev`, tests) or DynamoDB (`RecordsTable`).

Writes only ever add: every flush is one update that sets the call's metadata if it is not there yet
(`if_not_exists`), appends turns and tool calls (`list_append`) and adds usage counters (`ADD`), so a
hand-off successor appends to its predecessor's record and never resets it. Only the end (ended_at,
end_reason) is set outright. The GSI `INDEX_NAME` (partition `kind` = "call", sort `started_at`) lists
calls newest first; the cursor is the base64 of the query's LastEvaluatedKey.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from shared import aws
from shared.errors import ClientError, ServiceError
from shared.log import logger
from shared.records.model import (
    MAX_STORED_BYTES,
    SECONDS_FIELD,
    TOKEN_FIELDS,
    USAGE_FIELDS,
    CallMeta,
    CallPage,
    CallRecord,
    CallSummary,
    ProgressEntry,
    RecordBatch,
    ToolCallEntry,
    Turn,
    Usage,
    direction_of,
    expires_at,
    iso,
)
from shared.records.pricing import estimate_cost, merged_prices
from shared.upstream import call_api, is_call_id

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

INDEX_NAME = "by_start"
# Set by a record's first write (if not there yet): a successor's copy never replaces them.
META_FIELDS = (
    "kind",
    "source",
    "caller",
    "dialed",
    "agent",
    "model",
    "backend_model",
    "started_at",
    "expires_at",
)
KIND = "call"
MAX_CURSOR_CHARS = 1_024
# What the listing index carries besides its keys (summaries only: no turn text in the index).
SUMMARY_ATTRIBUTES = (
    "source",
    "caller",
    "dialed",
    "agent",
    "model",
    "ended_at",
    "end_reason",
    "expires_at",
    *TOKEN_FIELDS,
)  # As deployed stacks have it: DynamoDB cannot change an index's projection in place, so a GPT-Live
# call's seconds and backend tokens (and so its cost) are in `GET /calls/{id}`, not in the listing.


class RecordsUnavailable(ServiceError):
    """The records table could not be reached or refused: the operator API answers 503."""

    status_code = 503


# ----------------------------------------------------------------------------- stores


class RecordStore(Protocol):
    def write(self, meta: CallMeta, batch: RecordBatch, *, first: bool = True) -> None:
        """Add `batch` to the record (one write), creating it if need be. `first=False`: this writer
        has written the record before, so it exists and its metadata need not be sent again."""
        ...

    def get_call(self, call_id: str) -> CallRecord | None: ...

    def list_calls(self, *, limit: int, cursor: str | None = None) -> CallPage:
        """Newest first; `cursor` is a previous page's `next_cursor` (a bad one is a 400)."""
        ...


@dataclass(frozen=True)
class RecordPolicy:
    retention_days: int = 30
    prices: dict[str, dict[str, float]] = field(default_factory=lambda: merged_prices({}))


class MemoryRecordStore:
    """The same rules in one process (`make dev`, tests): the items DynamoDB would hold, in a dict."""

    def __init__(self, policy: RecordPolicy | None = None) -> None:
        self.policy = policy or RecordPolicy()
        self._items: dict[str, dict[str, Any]] = {}
        self._mutex = threading.Lock()

    def write(self, meta: CallMeta, batch: RecordBatch, *, first: bool = True) -> None:
        with self._mutex:
            item = self._items.setdefault(meta.call_id, _new_item(meta, self.policy.retention_days))
            size = batch.stored_bytes()
            if item["stored_bytes"] + size <= MAX_STORED_BYTES:
                item["turns"].extend(batch.turns)
                item["tool_calls"].extend(batch.tool_calls)
                item["stored_bytes"] += size
            elif batch.turns or batch.tool_calls:
                item["truncated"] = True
            for kind, count in batch.usage.items():
                item[kind] = item.get(kind, 0) + count
            item.setdefault("progress", []).extend(batch.progress)
            if batch.seconds is not None:
                item[SECONDS_FIELD] = batch.seconds
            if batch.end_reason is not None:
                item.update(ended_at=batch.ended_at, end_reason=batch.end_reason)
            if batch.recording is not None:
                item.update(recording=batch.recording, recording_error=batch.recording_error)

    def get_call(self, call_id: str) -> CallRecord | None:
        with self._mutex:
            item = self._items.get(call_id)
            return None if item is None else _record(json.loads(json.dumps(item)), self.policy.prices)

    def list_calls(self, *, limit: int, cursor: str | None = None) -> CallPage:
        after = decode_cursor(cursor)
        with self._mutex:
            ordered = sorted(
                self._items.values(), key=lambda i: (i["started_at"], i["call_id"]), reverse=True
            )
        if after is not None:
            position = (float(after["started_at"]["N"]), after["call_id"]["S"])
            ordered = [i for i in ordered if (i["started_at"], i["call_id"]) < position]
        page, more = ordered[:limit], len(ordered) > limit
        last = page[-1] if page and more else None
        next_cursor = None
        if last is not None:
            next_cursor = encode_cursor(
                {
                    "call_id": {"S": last["call_id"]},
                    "kind": {"S": KIND},
                    "started_at": {"N": repr(last["started_at"])},
                }
            )
        return CallPage(calls=[_summary(i, self.policy.prices) for i in page], next_cursor=next_cursor)


class DynamoRecordStore:
    """Records in DynamoDB (`RecordsTable`) on a boto3 low-level client: UpdateItem, GetItem, Query."""

    def __init__(self, table_name: str, client: DynamoDBClient, policy: RecordPolicy | None = None) -> None:
        if not table_name:
            raise ServiceError("Server misconfigured: RECORDS_TABLE_NAME is not set")
        self._table = table_name
        self._client = client
        self.policy = policy or RecordPolicy()

    def write(self, meta: CallMeta, batch: RecordBatch, *, first: bool = True) -> None:
        from botocore.exceptions import ClientError as BotoClientError

        size = batch.stored_bytes()
        try:
            self._update(meta, batch, size, first=first)
        except BotoClientError as exc:
            if aws.error_code(exc) != "ConditionalCheckFailedException":
                raise self._unavailable(exc) from exc
            # The record is full: keep the usage and the end, mark it truncated.
            short = RecordBatch(
                usage=batch.usage,
                progress=batch.progress,
                seconds=batch.seconds,
                ended_at=batch.ended_at,
                end_reason=batch.end_reason,
                recording=batch.recording,
                recording_error=batch.recording_error,
            )
            try:
                self._update(meta, short, 0, first=first, truncated=True)
            except BotoClientError as again:
                raise self._unavailable(again) from again
        except Exception as exc:
            raise self._unavailable(exc) from exc

    def _update(
        self, meta: CallMeta, batch: RecordBatch, size: int, *, first: bool, truncated: bool = False
    ) -> None:
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        sets = []
        if first:  # the metadata: the first write of any generation wins, a later one never resets it
            item = _new_item(meta, self.policy.retention_days)
            for name in META_FIELDS:
                names[f"#{name}"] = name
                values[f":{name}"] = item[name]
                sets.append(f"#{name} = if_not_exists(#{name}, :{name})")
            values[":empty"] = []
        adds = []
        for kind, count in batch.usage.items():
            if count:  # fewer values to send: the request's CPU grows with them
                values[f":{kind}"] = count
                adds.append(f"{kind} :{kind}")
        condition = None
        if size:
            values[":size"], values[":room"] = size, MAX_STORED_BYTES - size
            values[":empty"] = []
            for name, entries in (("turns", batch.turns), ("tool_calls", batch.tool_calls)):
                if entries:
                    values[f":{name}"] = entries
                    sets.append(f"{name} = list_append(if_not_exists({name}, :empty), :{name})")
            adds.append("stored_bytes :size")
            condition = "attribute_not_exists(stored_bytes) OR stored_bytes <= :room"
        elif first:
            sets.append("turns = if_not_exists(turns, :empty)")
            sets.append("tool_calls = if_not_exists(tool_calls, :empty)")
        if batch.progress:  # a few small entries: outside the text budget
            values[":empty"], values[":progress"] = [], batch.progress
            sets.append("progress = list_append(if_not_exists(progress, :empty), :progress)")
        if batch.seconds is not None:  # cumulative: set, never added
            values[":seconds"] = batch.seconds
            sets.append(f"{SECONDS_FIELD} = :seconds")
        if truncated:
            values[":true"] = True
            sets.append("truncated = :true")
        if batch.end_reason is not None:
            values[":ended_at"], values[":end_reason"] = batch.ended_at, batch.end_reason
            sets.append("ended_at = :ended_at")
            sets.append("end_reason = :end_reason")
        if batch.recording is not None:
            values[":recording"], values[":recording_error"] = batch.recording, batch.recording_error
            sets.append("recording = :recording")
            sets.append("recording_error = :recording_error")
        expression = " ".join(
            part
            for part in ("SET " + ", ".join(sets) if sets else "", "ADD " + ", ".join(adds) if adds else "")
            if part
        )
        if not expression:
            return  # nothing to add (a later write of an empty batch)
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": {"call_id": {"S": meta.call_id}},
            "UpdateExpression": expression,
            "ExpressionAttributeValues": _serialize(values),
        }
        if names:
            request["ExpressionAttributeNames"] = names
        if condition is not None:
            request["ConditionExpression"] = condition
        self._client.update_item(**request)

    def get_call(self, call_id: str) -> CallRecord | None:
        try:
            answer = self._client.get_item(TableName=self._table, Key={"call_id": {"S": call_id}})
        except Exception as exc:
            raise self._unavailable(exc) from exc
        item = answer.get("Item")
        return None if not item else _record(_deserialize(item), self.policy.prices)

    def list_calls(self, *, limit: int, cursor: str | None = None) -> CallPage:
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": INDEX_NAME,
            "KeyConditionExpression": "#kind = :kind",
            "ExpressionAttributeNames": {"#kind": "kind"},
            "ExpressionAttributeValues": {":kind": {"S": KIND}},
            "ScanIndexForward": False,  # newest first
            "Limit": limit,
        }
        start = decode_cursor(cursor)
        if start is not None:
            request["ExclusiveStartKey"] = start
        try:
            answer = self._client.query(**request)
        except Exception as exc:
            raise self._unavailable(exc) from exc
        calls = [_summary(_deserialize(item), self.policy.prices) for item in answer.get("Items", [])]
        last = answer.get("LastEvaluatedKey")
        return CallPage(calls=calls, next_cursor=encode_cursor(dict(last)) if last else None)

    def _unavailable(self, exc: Exception) -> ServiceError:
        from botocore.exceptions import BotoCoreError
        from botocore.exceptions import ClientError as BotoClientError

        if isinstance(exc, ServiceError):
            return exc
        if not isinstance(exc, BotoClientError | BotoCoreError):
            logger.error("records: unexpected error", extra={"error": type(exc).__name__})
            return RecordsUnavailable("Call records unavailable")
        # The error's type and code only: its message may quote the request (keys, values).
        code = aws.error_code(exc) if isinstance(exc, BotoClientError) else ""
        logger.error("records store error", extra={"error": type(exc).__name__, "code": code})
        return RecordsUnavailable("Call records unavailable")


# ----------------------------------------------------------------------------- cursors


def encode_cursor(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, sort_keys=True, separators=(",", ":")).encode()).decode()


def decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    """The LastEvaluatedKey a cursor carries, checked for exactly the index's key shape; else a 400."""
    if cursor is None:
        return None
    bad = ClientError(400, "Invalid request: cursor is malformed")
    if len(cursor) > MAX_CURSOR_CHARS:
        raise bad
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error):
        raise bad from None
    if not isinstance(key, dict) or set(key) != {"call_id", "kind", "started_at"}:
        raise bad
    try:
        call_id, kind, started = key["call_id"]["S"], key["kind"]["S"], key["started_at"]["N"]
        float(started)
    except (TypeError, KeyError, ValueError):
        raise bad from None
    shapes = (len(key["call_id"]), len(key["kind"]), len(key["started_at"]))
    if shapes != (1, 1, 1) or kind != KIND or not is_call_id(call_id):
        raise bad
    if not isinstance(started, str):
        raise bad
    return key


# ----------------------------------------------------------------------------- items <-> models


def _new_item(meta: CallMeta, retention_days: int) -> dict[str, Any]:
    return {
        "call_id": meta.call_id,
        "kind": KIND,
        "source": meta.source,
        "caller": meta.caller,
        "dialed": meta.dialed,
        "agent": meta.agent,
        "model": meta.model,
        "backend_model": meta.backend_model,
        "started_at": round(meta.started_at, 3),
        "expires_at": expires_at(meta.started_at, retention_days),
        "turns": [],
        "tool_calls": [],
        "stored_bytes": 0,
    }


def _summary_fields(item: dict[str, Any], prices: dict[str, dict[str, float]]) -> dict[str, Any]:
    usage = Usage(
        **{kind: int(item.get(kind) or 0) for kind in USAGE_FIELDS},
        seconds=float(item.get(SECONDS_FIELD) or 0),
    )
    started = float(item["started_at"])
    ended = float(item["ended_at"]) if item.get("ended_at") is not None else None
    model, backend_model = str(item.get("model", "")), str(item.get("backend_model") or "")
    api = call_api(item["call_id"])
    # A GPT-Live call's seconds are not in the listing index (SUMMARY_ATTRIBUTES): no guess at its cost.
    priced = api == "realtime" or SECONDS_FIELD in item
    return {
        "call_id": item["call_id"],
        "api": api,
        "source": item.get("source", "webrtc"),
        "direction": direction_of(str(item.get("source", "webrtc"))),
        "caller": item.get("caller", ""),
        "dialed": item.get("dialed", ""),
        "agent": item.get("agent", "default"),
        "model": model,
        "backend_model": backend_model or None,
        "started_at": iso(started),
        "ended_at": iso(ended) if ended is not None else None,
        "duration_seconds": round(max(0.0, ended - started), 1) if ended is not None else None,
        "end_reason": item.get("end_reason"),
        "usage": usage,
        "cost_usd": estimate_cost(model, usage, prices, backend_model) if priced else None,
        "expires_at": iso(float(item["expires_at"])),
    }


def _summary(item: dict[str, Any], prices: dict[str, dict[str, float]]) -> CallSummary:
    return CallSummary(**_summary_fields(item, prices))


def _record(item: dict[str, Any], prices: dict[str, dict[str, float]]) -> CallRecord:
    turns = [Turn(role=t["role"], text=t["text"], at=iso(float(t["at"]))) for t in item.get("turns") or []]
    tools = [
        ToolCallEntry(**{**c, "ms": float(c["ms"]), "at": iso(float(c["at"]))})
        for c in item.get("tool_calls") or []
    ]
    return CallRecord(
        **_summary_fields(item, prices),
        turns=turns,
        tool_calls=tools,
        progress=[
            ProgressEntry(event=p["event"], at=iso(float(p["at"])), code=p.get("code"))
            for p in item.get("progress") or []
        ],
        recording=item.get("recording"),
        recording_error=item.get("recording_error"),
    )


def _serialize(values: dict[str, Any]) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeSerializer

    serializer = TypeSerializer()
    return {name: serializer.serialize(_decimals(value)) for name, value in values.items()}


def _deserialize(item: dict[str, Any]) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    return {name: _plain(deserializer.deserialize(value)) for name, value in item.items()}


def _decimals(value: Any) -> Any:
    """boto3's serializer takes numbers as Decimal (floats are refused: they lose precision)."""
    if isinstance(value, float):
        return Decimal(repr(round(value, 3)))
    if isinstance(value, dict):
        return {k: _decimals(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_decimals(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | set):
        return [_plain(v) for v in value]
    return value
