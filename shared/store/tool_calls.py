"""The tool-call ledger: each function call of the model runs once, whoever sees it.

`tool#<call_id>#<tool_call_id>`: recorded `started` (with its owner and start time) before it runs and
`done` (with its output) after, so a duplicate event, a successor observer or a resumed one never runs
it twice. Kept as long as a lease record.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal, Protocol

from shared.store.leases import LEASE_RECORD_SECONDS
from shared.store.table import ConditionFailed, DynamoTable, MemoryTable, number

ToolCallStatus = Literal["started", "done"]


@dataclass(frozen=True)
class ToolCallRecord:
    status: ToolCallStatus
    owner: str
    started_at: float  # unix s
    output: str | None = None


class ToolCalls(Protocol):
    def claim_tool_call(self, call_id: str, tool_call_id: str, owner: str) -> ToolCallRecord | None:
        """Record a tool call as `started` by `owner` before running it. None: this claim won, run it;
        else the record that was already there (started or done elsewhere: do not run it again)."""
        ...

    def finish_tool_call(self, call_id: str, tool_call_id: str, output: str) -> bool:
        """Mark the tool call `done` with its output; False if it was done already."""
        ...


class MemoryToolCalls(MemoryTable):
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


class DynamoToolCalls(DynamoTable):
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
                    "started_at": number(now),
                    "expires_at": number(int(now) + LEASE_RECORD_SECONDS),
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ConditionFailed:
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
        except ConditionFailed:
            return False
        return True
