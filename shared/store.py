"""State that makes calls happen exactly once across concurrent instances.

Three kinds of record, all in one table keyed by `pk` (DynamoDB in AWS, a dict locally):

- `webhook#<webhook-id>`: one webhook delivery. `in_progress` while someone handles it (with a lock
  that lapses, so a crashed handler does not block redeliveries forever), `accepted` once the call
  is accepted, `done` once nothing is left to do. Kept for 4 days: OpenAI redelivers for up to 72 h.
- `lease#<call_id>`: the one observer of a call (owner + expiry). Handed from one generation to the
  next on long calls; `ended` once the call is over, so a late duplicate never reattaches.
- `tool#<call_id>#<tool_call_id>`: one function call of the model, recorded `started` (with its
  owner and start time) before it runs and `done` (with its output) after, so a duplicate event, a
  successor observer or a resumed one never runs it twice. Kept as long as a lease record.
- `slots`: the calls holding a concurrency slot (call id -> expiry) with a version for optimistic
  writes. Expired entries are ignored and pruned, so a lost release heals itself.
- `limit#...`: spend-limit counters (shared/limits.py): a count per client and hour (`n`) and the
  stack's call seconds per UTC day (`used`), each an atomic conditional `ADD`, expiring by TTL.

Every write that decides who wins is a conditional write; there is no read-then-write race.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from shared import aws
from shared.errors import ServiceError
from shared.log import logger

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

DeliveryState = Literal["new", "accepted", "done", "in_progress"]
WEBHOOK_RECORD_SECONDS = 4 * 24 * 3600
LEASE_RECORD_SECONDS = 24 * 3600
SLOT_WRITE_ATTEMPTS = 12
# A reservation that lost a race re-reads the counter from the failed write and tries again; each
# loss means another caller's reservation went in, so a few attempts always settle it.
RESERVE_ATTEMPTS = 10
ToolCallStatus = Literal["started", "done"]


class StoreUnavailable(ServiceError):
    """The store could not be reached or kept refusing: answer 5xx so OpenAI redelivers later."""

    status_code = 503


@dataclass(frozen=True)
class Lease:
    call_id: str
    owner: str
    fresh: bool  # no lease record existed before: this is the call's first observer


@dataclass(frozen=True)
class Grant:
    """A call's share of the day's minutes (shared/limits.py): `seconds` granted (None: no daily limit,
    MAX_CALL_SECONDS applies), reserved on the budget of `day` (YYYY-MM-DD, UTC; None: nothing reserved).
    An accepted webhook delivery keeps it, for a redelivery that must launch the observer again."""

    seconds: int | None = None
    day: str | None = None


@dataclass(frozen=True)
class ToolCallRecord:
    status: ToolCallStatus
    owner: str
    started_at: float  # unix s
    output: str | None = None


class CallStore(Protocol):
    def begin_delivery(self, webhook_id: str) -> DeliveryState:
        """Claim a delivery. `new`: accept the call; `accepted`: only start the observer again;
        `done`: a duplicate, answer 2xx; `in_progress`: someone else is on it right now."""
        ...

    def mark_delivery(
        self, webhook_id: str, state: Literal["accepted", "done"], *, grant: Grant | None = None
    ) -> None:
        """Record the delivery's state; `accepted` keeps the call's grant (its granted length and the day
        its minutes were reserved on) for a redelivery that has to launch the observer again."""
        ...

    def delivery_grant(self, webhook_id: str) -> Grant | None:
        """The grant stored with an accepted delivery (None: none was stored)."""
        ...

    def abandon_delivery(self, webhook_id: str) -> None:
        """Forget a failed delivery so that OpenAI's redelivery tries again from the start."""
        ...

    def acquire_lease(
        self, call_id: str, owner: str, *, until: float, claim: str | None = None
    ) -> Lease | None:
        """Take the call's observer lease (free, lapsed, or handed over to `claim`), else None."""
        ...

    def hand_over(self, call_id: str, owner: str, successor: str, *, until: float) -> bool: ...

    def lease_owner(self, call_id: str) -> str | None: ...

    def mark_attached(self, call_id: str, owner: str) -> None:
        """The owner's sideband is open: a predecessor waiting to hand off may now let go."""
        ...

    def attached_owner(self, call_id: str) -> str | None:
        """The lease owner if its sideband is open, else None."""
        ...

    def end_lease(self, call_id: str, owner: str) -> None: ...

    def release_lease(self, call_id: str, owner: str) -> None:
        """Let go without ending the call: another observer may take over (it will not greet)."""
        ...

    def take_slot(self, call_id: str, *, limit: int, until: float) -> bool:
        """Hold one of `limit` concurrent-call slots until `until` (or `release_slot`)."""
        ...

    def release_slot(self, call_id: str) -> None: ...

    def claim_tool_call(self, call_id: str, tool_call_id: str, owner: str) -> ToolCallRecord | None:
        """Record a tool call as `started` by `owner` before running it. None: this claim won, run it;
        else the record that was already there (started or done elsewhere: do not run it again)."""
        ...

    def finish_tool_call(self, call_id: str, tool_call_id: str, output: str) -> bool:
        """Mark the tool call `done` with its output; False if it was done already."""
        ...

    def count_call(self, key: str, *, limit: int, expires_at: int) -> int | None:
        """Add one to the counter `key` unless it has reached `limit`: the new count, else None."""
        ...

    def reserve_seconds(
        self, key: str, *, want: int, limit: int, minimum: int, expires_at: int
    ) -> tuple[int, int] | None:
        """Add `min(want, limit - used)` seconds to the budget `key` unless fewer than `minimum` are
        left: (seconds granted, the budget's new total), else None. Never takes it past `limit`."""
        ...

    def refund_seconds(self, key: str, seconds: int) -> int | None:
        """Give `seconds` back to the budget `key`: its new total (None: the budget is gone)."""
        ...

    def seconds_used(self, key: str) -> int:
        """The budget's total so far (0 if there is none)."""
        ...


class MemoryCallStore:
    """The same rules in one process (`make dev`, tests): one lock around a dict."""

    def __init__(self, *, lock_seconds: float = 30.0, clock: Callable[[], float] = time.time) -> None:
        self._lock_seconds = lock_seconds
        self._clock = clock
        self._items: dict[str, dict[str, Any]] = {}
        self._mutex = threading.Lock()

    def begin_delivery(self, webhook_id: str) -> DeliveryState:
        now = self._clock()
        with self._mutex:
            item = self._items.get(f"webhook#{webhook_id}")
            if item is None:
                self._items[f"webhook#{webhook_id}"] = {
                    "status": "in_progress",
                    "lock_until": now + self._lock_seconds,
                }
                return "new"
            if item["status"] == "done":
                return "done"
            if item["lock_until"] >= now:
                return "in_progress"
            item["lock_until"] = now + self._lock_seconds
            return "accepted" if item["status"] == "accepted" else "new"

    def mark_delivery(
        self, webhook_id: str, state: Literal["accepted", "done"], *, grant: Grant | None = None
    ) -> None:
        with self._mutex:
            self._items[f"webhook#{webhook_id}"] = {
                "status": state,
                "lock_until": self._clock() + self._lock_seconds,
                "grant": grant,
            }

    def delivery_grant(self, webhook_id: str) -> Grant | None:
        with self._mutex:
            item = self._items.get(f"webhook#{webhook_id}") or {}
            grant: Grant | None = item.get("grant")
            return grant

    def abandon_delivery(self, webhook_id: str) -> None:
        with self._mutex:
            self._items.pop(f"webhook#{webhook_id}", None)

    def acquire_lease(
        self, call_id: str, owner: str, *, until: float, claim: str | None = None
    ) -> Lease | None:
        now = self._clock()
        with self._mutex:
            item = self._items.get(f"lease#{call_id}")
            free = item is None or (item["until"] < now and not item.get("ended"))
            if not free and not (claim is not None and item is not None and item["owner"] == claim):
                return None
            self._items[f"lease#{call_id}"] = {"owner": owner, "until": until, "attached": False}
            return Lease(call_id, owner, fresh=item is None)

    def hand_over(self, call_id: str, owner: str, successor: str, *, until: float) -> bool:
        with self._mutex:
            item = self._items.get(f"lease#{call_id}")
            if item is None or item["owner"] != owner:
                return False
            item.update(owner=successor, until=until, attached=False)
            return True

    def lease_owner(self, call_id: str) -> str | None:
        with self._mutex:
            item = self._items.get(f"lease#{call_id}")
            return None if item is None else str(item["owner"])

    def mark_attached(self, call_id: str, owner: str) -> None:
        with self._mutex:
            item = self._items.get(f"lease#{call_id}")
            if item is not None and item["owner"] == owner:
                item["attached"] = True

    def attached_owner(self, call_id: str) -> str | None:
        with self._mutex:
            item = self._items.get(f"lease#{call_id}")
            return str(item["owner"]) if item is not None and item.get("attached") else None

    def end_lease(self, call_id: str, owner: str) -> None:
        with self._mutex:
            item = self._items.get(f"lease#{call_id}")
            if item is not None and item["owner"] == owner:
                item.update(ended=True, until=self._clock())

    def release_lease(self, call_id: str, owner: str) -> None:
        with self._mutex:
            item = self._items.get(f"lease#{call_id}")
            if item is not None and item["owner"] == owner:
                item["until"] = self._clock() - 1

    def take_slot(self, call_id: str, *, limit: int, until: float) -> bool:
        now = self._clock()
        with self._mutex:
            slots: dict[str, float] = self._items.setdefault("slots", {"calls": {}})["calls"]
            for held in [k for k, v in slots.items() if v < now]:
                del slots[held]
            if call_id not in slots and len(slots) >= limit:
                return False
            slots[call_id] = until
            return True

    def release_slot(self, call_id: str) -> None:
        with self._mutex:
            self._items.get("slots", {"calls": {}})["calls"].pop(call_id, None)

    def claim_tool_call(self, call_id: str, tool_call_id: str, owner: str) -> ToolCallRecord | None:
        with self._mutex:
            item = self._items.get(f"tool#{call_id}#{tool_call_id}")
            if item is not None:
                return ToolCallRecord(**item)
            self._items[f"tool#{call_id}#{tool_call_id}"] = {
                "status": "started",
                "owner": owner,
                "started_at": self._clock(),
            }
            return None

    def finish_tool_call(self, call_id: str, tool_call_id: str, output: str) -> bool:
        with self._mutex:
            item = self._items.get(f"tool#{call_id}#{tool_call_id}")
            if item is None or item["status"] == "done":
                return False
            item.update(status="done", output=output)
            return True

    def count_call(self, key: str, *, limit: int, expires_at: int) -> int | None:
        with self._mutex:
            item = self._items.setdefault(key, {"n": 0, "expires_at": expires_at})
            if item["n"] >= limit:
                return None
            item["n"] += 1
            return int(item["n"])

    def reserve_seconds(
        self, key: str, *, want: int, limit: int, minimum: int, expires_at: int
    ) -> tuple[int, int] | None:
        with self._mutex:
            item = self._items.setdefault(key, {"used": 0, "expires_at": expires_at})
            granted = min(want, limit - item["used"])
            if granted < minimum:
                return None
            item["used"] += granted
            return granted, int(item["used"])

    def refund_seconds(self, key: str, seconds: int) -> int | None:
        with self._mutex:
            item = self._items.get(key)
            if item is None:
                return None
            item["used"] -= seconds
            return int(item["used"])

    def seconds_used(self, key: str) -> int:
        with self._mutex:
            return int(self._items.get(key, {}).get("used", 0))


class DynamoCallStore:
    """The rules as DynamoDB conditional writes, on a boto3 DynamoDB client (the low-level API's shapes).

    Table: partition key `pk` (S), TTL attribute `expires_at` (template.yaml `CallsTable`).
    """

    def __init__(self, table_name: str, client: DynamoDBClient, *, lock_seconds: float = 30.0) -> None:
        if not table_name:
            raise ServiceError("Server misconfigured: CALLS_TABLE_NAME is not set")
        self._table = table_name
        self._client = client
        self._lock_seconds = lock_seconds

    # ----------------------------------------------------------------- webhook deliveries

    def begin_delivery(self, webhook_id: str) -> DeliveryState:
        now = time.time()
        key = {"pk": {"S": f"webhook#{webhook_id}"}}
        try:
            answer = self._call(
                "update_item",
                TableName=self._table,
                Key=key,
                UpdateExpression="SET #s = if_not_exists(#s, :new), lock_until = :lock, expires_at = :ttl",
                ConditionExpression="attribute_not_exists(pk) OR (#s <> :done AND lock_until < :now)",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":new": {"S": "in_progress"},
                    ":done": {"S": "done"},
                    ":lock": _n(now + self._lock_seconds),
                    ":now": _n(now),
                    ":ttl": _n(int(now) + WEBHOOK_RECORD_SECONDS),
                },
                ReturnValues="ALL_OLD",
            )
        except _ConditionFailed:
            item = self._get(key) or {}
            return "done" if item.get("status", {}).get("S") == "done" else "in_progress"
        old = answer.get("Attributes", {}).get("status", {}).get("S")
        return "accepted" if old == "accepted" else "new"

    def mark_delivery(
        self, webhook_id: str, state: Literal["accepted", "done"], *, grant: Grant | None = None
    ) -> None:
        now = time.time()
        item = {
            "pk": {"S": f"webhook#{webhook_id}"},
            "status": {"S": state},
            "lock_until": _n(now + self._lock_seconds),
            "expires_at": _n(int(now) + WEBHOOK_RECORD_SECONDS),
        }
        if grant is not None and grant.seconds is not None:
            item["grant_seconds"] = _n(grant.seconds)
        if grant is not None and grant.day is not None:
            item["grant_day"] = {"S": grant.day}
        self._call("put_item", TableName=self._table, Item=item)

    def delivery_grant(self, webhook_id: str) -> Grant | None:
        item = self._get({"pk": {"S": f"webhook#{webhook_id}"}})
        if item is None or not ({"grant_seconds", "grant_day"} & item.keys()):
            return None
        seconds = item.get("grant_seconds", {}).get("N")
        return Grant(
            seconds=int(seconds) if seconds is not None else None, day=item.get("grant_day", {}).get("S")
        )

    def abandon_delivery(self, webhook_id: str) -> None:
        key = {"pk": {"S": f"webhook#{webhook_id}"}}
        self._call("delete_item", TableName=self._table, Key=key)

    # ----------------------------------------------------------------- observer leases

    def acquire_lease(
        self, call_id: str, owner: str, *, until: float, claim: str | None = None
    ) -> Lease | None:
        condition = "attribute_not_exists(pk) OR (lease_until < :now AND attribute_not_exists(ended))"
        values = {
            ":owner": {"S": owner},
            ":until": _n(until),
            ":now": _n(time.time()),
            ":ttl": _n(int(until) + LEASE_RECORD_SECONDS),
        }
        if claim is not None:
            condition += " OR #o = :claim"
            values[":claim"] = {"S": claim}
        try:
            answer = self._call(
                "update_item",
                TableName=self._table,
                Key={"pk": {"S": f"lease#{call_id}"}},
                UpdateExpression="SET #o = :owner, lease_until = :until, expires_at = :ttl REMOVE attached",
                ConditionExpression=condition,
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues=values,
                ReturnValues="ALL_OLD",
            )
        except _ConditionFailed:
            return None
        return Lease(call_id, owner, fresh=not answer.get("Attributes"))

    def hand_over(self, call_id: str, owner: str, successor: str, *, until: float) -> bool:
        try:
            self._call(
                "update_item",
                TableName=self._table,
                Key={"pk": {"S": f"lease#{call_id}"}},
                UpdateExpression="SET #o = :successor, lease_until = :until REMOVE attached",
                ConditionExpression="#o = :owner",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={
                    ":owner": {"S": owner},
                    ":successor": {"S": successor},
                    ":until": _n(until),
                },
            )
        except _ConditionFailed:
            return False
        return True

    def lease_owner(self, call_id: str) -> str | None:
        item = self._get({"pk": {"S": f"lease#{call_id}"}})
        return None if item is None else str(item.get("owner", {}).get("S", ""))

    def mark_attached(self, call_id: str, owner: str) -> None:
        with contextlib.suppress(_ConditionFailed):  # handed on or taken meanwhile
            self._call(
                "update_item",
                TableName=self._table,
                Key={"pk": {"S": f"lease#{call_id}"}},
                UpdateExpression="SET attached = :true",
                ConditionExpression="#o = :owner",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":owner": {"S": owner}, ":true": {"BOOL": True}},
            )

    def attached_owner(self, call_id: str) -> str | None:
        item = self._get({"pk": {"S": f"lease#{call_id}"}})
        if item is None or not item.get("attached", {}).get("BOOL"):
            return None
        return str(item.get("owner", {}).get("S", ""))

    def end_lease(self, call_id: str, owner: str) -> None:
        # A failed condition: handed over or taken by someone else meanwhile, theirs to end.
        with contextlib.suppress(_ConditionFailed):
            self._call(
                "update_item",
                TableName=self._table,
                Key={"pk": {"S": f"lease#{call_id}"}},
                UpdateExpression="SET ended = :true, lease_until = :now",
                ConditionExpression="#o = :owner",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={
                    ":owner": {"S": owner},
                    ":true": {"BOOL": True},
                    ":now": _n(time.time()),
                },
            )

    def release_lease(self, call_id: str, owner: str) -> None:
        with contextlib.suppress(_ConditionFailed):
            self._call(
                "update_item",
                TableName=self._table,
                Key={"pk": {"S": f"lease#{call_id}"}},
                UpdateExpression="SET lease_until = :past",
                ConditionExpression="#o = :owner",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":owner": {"S": owner}, ":past": _n(time.time() - 1)},
            )

    # ----------------------------------------------------------------- concurrency slots

    def take_slot(self, call_id: str, *, limit: int, until: float) -> bool:
        key = {"pk": {"S": "slots"}}
        for _ in range(SLOT_WRITE_ATTEMPTS):
            now = time.time()
            item = self._get(key)
            version = int(item["version"]["N"]) if item else 0
            calls = (item or {}).get("calls", {}).get("M", {})
            held = {k: float(v["N"]) for k, v in calls.items() if float(v["N"]) >= now}
            if call_id not in held and len(held) >= limit:
                return False
            held[call_id] = until
            try:
                self._call(
                    "put_item",
                    TableName=self._table,
                    Item={
                        "pk": {"S": "slots"},
                        "version": _n(version + 1),
                        "calls": {"M": {k: _n(v) for k, v in held.items()}},
                    },
                    ConditionExpression="attribute_not_exists(pk) OR version = :v",
                    ExpressionAttributeValues={":v": _n(version)},
                )
            except _ConditionFailed:
                time.sleep(random.uniform(0.005, 0.05))  # noqa: S311 - jitter, not crypto
                continue
            return True
        raise StoreUnavailable("Too much contention on the call slots; try again")

    def release_slot(self, call_id: str) -> None:
        with contextlib.suppress(_ConditionFailed):  # no slots item: nothing to release
            self._call(
                "update_item",
                TableName=self._table,
                Key={"pk": {"S": "slots"}},
                # The version bump makes a concurrent take_slot (holding an old copy) start over.
                UpdateExpression="REMOVE calls.#c SET version = version + :one",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={"#c": call_id},
                ExpressionAttributeValues={":one": {"N": "1"}},
            )

    # ----------------------------------------------------------------- tool calls

    def claim_tool_call(self, call_id: str, tool_call_id: str, owner: str) -> ToolCallRecord | None:
        now = time.time()
        key = {"pk": {"S": f"tool#{call_id}#{tool_call_id}"}}
        try:
            self._call(
                "put_item",
                TableName=self._table,
                Item={
                    **key,
                    "status": {"S": "started"},
                    "owner": {"S": owner},
                    "started_at": _n(now),
                    "expires_at": _n(int(now) + LEASE_RECORD_SECONDS),
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except _ConditionFailed:
            item = self._get(key) or {}
            status = item.get("status", {}).get("S")
            return ToolCallRecord(
                status="done" if status == "done" else "started",
                owner=str(item.get("owner", {}).get("S", "")),
                started_at=float(item.get("started_at", {}).get("N", "0")),
                output=item.get("output", {}).get("S"),
            )
        return None

    def finish_tool_call(self, call_id: str, tool_call_id: str, output: str) -> bool:
        try:
            self._call(
                "update_item",
                TableName=self._table,
                Key={"pk": {"S": f"tool#{call_id}#{tool_call_id}"}},
                UpdateExpression="SET #s = :done, #out = :output",
                ConditionExpression="attribute_exists(pk) AND #s <> :done",
                ExpressionAttributeNames={"#s": "status", "#out": "output"},
                ExpressionAttributeValues={":done": {"S": "done"}, ":output": {"S": output}},
            )
        except _ConditionFailed:
            return False
        return True

    # ----------------------------------------------------------------- spend-limit counters

    def count_call(self, key: str, *, limit: int, expires_at: int) -> int | None:
        try:
            answer = self._call(
                "update_item",
                TableName=self._table,
                Key={"pk": {"S": key}},
                UpdateExpression="SET expires_at = :ttl ADD n :one",
                ConditionExpression="attribute_not_exists(n) OR n < :limit",
                ExpressionAttributeValues={":one": _n(1), ":limit": _n(limit), ":ttl": _n(expires_at)},
                ReturnValues="UPDATED_NEW",
            )
        except _ConditionFailed:
            return None
        return int(answer["Attributes"]["n"]["N"])

    def reserve_seconds(
        self, key: str, *, want: int, limit: int, minimum: int, expires_at: int
    ) -> tuple[int, int] | None:
        used = 0  # a guess, so that the usual case (room left) is one write and no read
        for _ in range(RESERVE_ATTEMPTS):
            granted = min(want, limit - used)
            if granted < minimum:
                return None
            try:
                answer = self._call(
                    "update_item",
                    TableName=self._table,
                    Key={"pk": {"S": key}},
                    UpdateExpression="SET expires_at = :ttl ADD used :granted",
                    # The budget after this write is at most `limit`: it can never overshoot.
                    ConditionExpression="attribute_not_exists(used) OR used <= :room",
                    ExpressionAttributeValues={
                        ":granted": _n(granted),
                        ":room": _n(limit - granted),
                        ":ttl": _n(expires_at),
                    },
                    ReturnValues="UPDATED_NEW",
                    # A lost race answers with the current total: no separate read.
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except _ConditionFailed as lost:
                used = int((lost.item or {}).get("used", {}).get("N", limit))
                continue
            return granted, int(answer["Attributes"]["used"]["N"])
        raise StoreUnavailable("Too much contention on the call minutes budget; try again")

    def refund_seconds(self, key: str, seconds: int) -> int | None:
        try:
            answer = self._call(
                "update_item",
                TableName=self._table,
                Key={"pk": {"S": key}},
                UpdateExpression="ADD used :back",
                ConditionExpression="attribute_exists(used)",  # never recreate an expired budget
                ExpressionAttributeValues={":back": _n(-seconds)},
                ReturnValues="UPDATED_NEW",
            )
        except _ConditionFailed:
            return None
        return int(answer["Attributes"]["used"]["N"])

    def seconds_used(self, key: str) -> int:
        item = self._get({"pk": {"S": key}}) or {}
        return int(item.get("used", {}).get("N", "0"))

    # ----------------------------------------------------------------- plumbing

    def _get(self, key: dict[str, Any]) -> dict[str, Any] | None:
        answer = self._call("get_item", TableName=self._table, Key=key, ConsistentRead=True)
        item = answer.get("Item")
        return item if isinstance(item, dict) else None

    def _call(self, operation: str, **payload: Any) -> dict[str, Any]:
        """One DynamoDB operation by its boto3 name (`update_item`); the arguments are its request."""
        try:
            answer: dict[str, Any] = getattr(self._client, operation)(**payload)
        except Exception as exc:
            from botocore.exceptions import BotoCoreError, ClientError  # loaded: the client is boto3's

            if isinstance(exc, ClientError):
                code = aws.error_code(exc)
                if code == "ConditionalCheckFailedException":
                    item = exc.response.get("Item")  # asked for by ReturnValuesOnConditionCheckFailure
                    raise _ConditionFailed(item if isinstance(item, dict) else None) from None
            elif isinstance(exc, BotoCoreError):  # no answer: unreachable, timed out, no credentials
                code = ""
            else:
                raise
            # The error's type and code only: its message may quote the request (keys, values).
            logger.error("call store error", extra={"error": type(exc).__name__, "code": code})
            raise StoreUnavailable("Call store unavailable") from exc
        return answer


class _ConditionFailed(Exception):
    """Someone else's write won the condition. `item`: the item as it was, when the write asked for it
    (`ReturnValuesOnConditionCheckFailure`)."""

    def __init__(self, item: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.item = item


def _n(value: float) -> dict[str, str]:
    return {"N": repr(round(value, 3)) if isinstance(value, float) else str(value)}
