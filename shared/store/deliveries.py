"""Webhook deliveries: each OpenAI webhook delivery is acted on once, across instances.

`webhook#<webhook-id>`: `in_progress` while someone handles it (with a lock that lapses, so a crashed
handler does not block redeliveries forever), `accepted` once the call is accepted (with its grant),
`done` once nothing is left to do. Kept for 4 days: OpenAI redelivers for up to 72 h.

A route uses it as `with store.delivery(webhook_id) as delivery:` (see `Deliveries.delivery`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal, Protocol

from shared.store.counters import Grant
from shared.store.table import ConditionFailed, DynamoTable, MemoryTable, number

DeliveryState = Literal["new", "accepted", "done", "in_progress"]
WEBHOOK_RECORD_SECONDS = 4 * 24 * 3600


class Delivery:
    """One claimed delivery. `state` is what the claim found: `new` (accept the call), `accepted` (an
    earlier delivery accepted it: only start the observer again, with `grant`), `done` (a duplicate) or
    `in_progress` (someone else is on it right now)."""

    def __init__(self, ledger: Deliveries, webhook_id: str, state: DeliveryState, grant: Grant) -> None:
        self._ledger = ledger
        self.webhook_id = webhook_id
        self.state = state
        self.grant = grant

    @property
    def duplicate(self) -> bool:
        return self.state in ("done", "in_progress")

    def accept(self, grant: Grant) -> None:
        """The call is accepted: from now on a redelivery only starts its observer again, with `grant`."""
        self._ledger.mark_delivery(self.webhook_id, "accepted", grant=grant)
        self.state, self.grant = "accepted", grant


class Deliveries(Protocol):
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

    @contextmanager
    def delivery(self, webhook_id: str) -> Iterator[Delivery]:
        """Claim the delivery for the block. Leaving it normally marks the delivery `done`; an exception
        before `accept` forgets it (the redelivery starts from scratch), one after leaves it `accepted`
        (a redelivery only starts the observer, it never accepts twice). A duplicate is left alone."""
        state = self.begin_delivery(webhook_id)
        # Nothing is reserved again on a redelivery: the observer gets the grant the accepting one stored.
        grant = (self.delivery_grant(webhook_id) if state == "accepted" else None) or Grant()
        delivery = Delivery(self, webhook_id, state, grant)
        if delivery.duplicate:
            yield delivery
            return
        try:
            yield delivery
        except BaseException:
            if delivery.state == "new":
                self.abandon_delivery(webhook_id)
            raise
        self.mark_delivery(webhook_id, "done")


class MemoryDeliveries(MemoryTable, Deliveries):
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


class DynamoDeliveries(DynamoTable, Deliveries):
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
                    ":lock": number(now + self._lock_seconds),
                    ":now": number(now),
                    ":ttl": number(int(now) + WEBHOOK_RECORD_SECONDS),
                },
                ReturnValues="ALL_OLD",
            )
        except ConditionFailed:
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
            "lock_until": number(now + self._lock_seconds),
            "expires_at": number(int(now) + WEBHOOK_RECORD_SECONDS),
        }
        if grant is not None and grant.seconds is not None:
            item["grant_seconds"] = number(grant.seconds)
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
