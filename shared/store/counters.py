"""Counters: the concurrent-call slots and the spend-limit counters (shared/limits.py).

- `slots`: the calls holding a concurrency slot (call id -> expiry) with a version for optimistic
  writes. Expired entries are ignored and pruned, so a lost release heals itself.
- `limit#...`: a count per client and hour (`n`) and the stack's call seconds per UTC day (`used`),
  each an atomic conditional `ADD`, expiring by TTL.
"""

from __future__ import annotations

import contextlib
import random
import time
from dataclasses import dataclass
from typing import Protocol

from shared.store.table import ConditionFailed, DynamoTable, MemoryTable, StoreUnavailable, number

SLOT_WRITE_ATTEMPTS = 12
# A reservation that lost a race re-reads the counter from the failed write and tries again; each
# loss means another caller's reservation went in, so a few attempts always settle it.
RESERVE_ATTEMPTS = 10


@dataclass(frozen=True)
class Grant:
    """A call's share of the day's minutes (shared/limits.py): `seconds` granted (None: no daily limit,
    MAX_CALL_SECONDS applies), reserved on the budget of `day` (YYYY-MM-DD, UTC; None: nothing reserved).
    An accepted webhook delivery keeps it, for a redelivery that must launch the observer again."""

    seconds: int | None = None
    day: str | None = None


class Counters(Protocol):
    def take_slot(self, call_id: str, *, limit: int, until: float) -> bool:
        """Hold one of `limit` concurrent-call slots until `until` (or `release_slot`)."""
        ...

    def release_slot(self, call_id: str) -> None: ...

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


class MemoryCounters(MemoryTable):
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


class DynamoCounters(DynamoTable):
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
                        "version": number(version + 1),
                        "calls": {"M": {k: number(v) for k, v in held.items()}},
                    },
                    ConditionExpression="attribute_not_exists(pk) OR version = :v",
                    ExpressionAttributeValues={":v": number(version)},
                )
            except ConditionFailed:
                time.sleep(random.uniform(0.005, 0.05))  # noqa: S311 - jitter, not crypto
                continue
            return True
        raise StoreUnavailable("Too much contention on the call slots; try again")

    def release_slot(self, call_id: str) -> None:
        with contextlib.suppress(ConditionFailed):  # no slots item: nothing to release
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

    def count_call(self, key: str, *, limit: int, expires_at: int) -> int | None:
        try:
            answer = self._call(
                "update_item",
                TableName=self._table,
                Key={"pk": {"S": key}},
                UpdateExpression="SET expires_at = :ttl ADD n :one",
                ConditionExpression="attribute_not_exists(n) OR n < :limit",
                ExpressionAttributeValues={
                    ":one": number(1),
                    ":limit": number(limit),
                    ":ttl": number(expires_at),
                },
                ReturnValues="UPDATED_NEW",
            )
        except ConditionFailed:
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
                        ":granted": number(granted),
                        ":room": number(limit - granted),
                        ":ttl": number(expires_at),
                    },
                    ReturnValues="UPDATED_NEW",
                    # A lost race answers with the current total: no separate read.
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ConditionFailed as lost:
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
                ExpressionAttributeValues={":back": number(-seconds)},
                ReturnValues="UPDATED_NEW",
            )
        except ConditionFailed:
            return None
        return int(answer["Attributes"]["used"]["N"])

    def seconds_used(self, key: str) -> int:
        item = self._get({"pk": {"S": key}}) or {}
        return int(item.get("used", {}).get("N", "0"))
