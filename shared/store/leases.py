"""Observer leases: one observer per call, handed from one generation to the next on long calls.

`lease#<call_id>`: the owner and its expiry, `attached` once the owner's sideband is open, and
`ended` once the call is over, so a late duplicate never reattaches.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Protocol

from shared.store.table import ConditionFailed, DynamoTable, MemoryTable, number

LEASE_RECORD_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Lease:
    call_id: str
    owner: str
    fresh: bool  # no lease record existed before: this is the call's first observer


class Leases(Protocol):
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


class MemoryLeases(MemoryTable):
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


class DynamoLeases(DynamoTable):
    def acquire_lease(
        self, call_id: str, owner: str, *, until: float, claim: str | None = None
    ) -> Lease | None:
        condition = "attribute_not_exists(pk) OR (lease_until < :now AND attribute_not_exists(ended))"
        values = {
            ":owner": {"S": owner},
            ":until": number(until),
            ":now": number(time.time()),
            ":ttl": number(int(until) + LEASE_RECORD_SECONDS),
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
        except ConditionFailed:
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
                    ":until": number(until),
                },
            )
        except ConditionFailed:
            return False
        return True

    def lease_owner(self, call_id: str) -> str | None:
        item = self._get({"pk": {"S": f"lease#{call_id}"}})
        return None if item is None else str(item.get("owner", {}).get("S", ""))

    def mark_attached(self, call_id: str, owner: str) -> None:
        with contextlib.suppress(ConditionFailed):  # handed on or taken meanwhile
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
        with contextlib.suppress(ConditionFailed):
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
                    ":now": number(time.time()),
                },
            )

    def release_lease(self, call_id: str, owner: str) -> None:
        with contextlib.suppress(ConditionFailed):
            self._call(
                "update_item",
                TableName=self._table,
                Key={"pk": {"S": f"lease#{call_id}"}},
                UpdateExpression="SET lease_until = :past",
                ConditionExpression="#o = :owner",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":owner": {"S": owner}, ":past": number(time.time() - 1)},
            )
