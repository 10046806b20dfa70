"""State that makes calls happen exactly once across concurrent instances: the call store.

Four concerns, one module each, each a small Protocol with its in-memory and DynamoDB implementations
side by side (the pattern of Powertools' idempotency persistence layers):

- deliveries.py: webhook deliveries (`webhook#<webhook-id>`), claimed before anything happens;
- leases.py: the one observer of a call (`lease#<call_id>`);
- tool_calls.py: the tool-call ledger (`tool#<call_id>#<tool_call_id>`);
- counters.py: the concurrent-call slots (`slots`) and the spend-limit counters (`limit#...`).

They share one table (table.py): a dict behind a lock locally, the template's `CallsTable` in AWS. A
`CallStore` is all four on that table; code that needs one concern takes its Protocol.
"""

from __future__ import annotations

from typing import Protocol

from shared.store.counters import Counters, DynamoCounters, Grant, MemoryCounters
from shared.store.deliveries import (
    WEBHOOK_RECORD_SECONDS,
    Deliveries,
    Delivery,
    DeliveryState,
    DynamoDeliveries,
    MemoryDeliveries,
)
from shared.store.leases import LEASE_RECORD_SECONDS, DynamoLeases, Lease, Leases, MemoryLeases
from shared.store.table import StoreUnavailable
from shared.store.tool_calls import (
    DynamoToolCalls,
    MemoryToolCalls,
    ToolCallRecord,
    ToolCalls,
    ToolCallStatus,
)

__all__ = [
    "LEASE_RECORD_SECONDS",
    "WEBHOOK_RECORD_SECONDS",
    "CallStore",
    "Counters",
    "Deliveries",
    "Delivery",
    "DeliveryState",
    "DynamoCallStore",
    "Grant",
    "Lease",
    "Leases",
    "MemoryCallStore",
    "StoreUnavailable",
    "ToolCallRecord",
    "ToolCallStatus",
    "ToolCalls",
]


class CallStore(Deliveries, Leases, ToolCalls, Counters, Protocol):
    """Every concern of the call store on one table."""


class MemoryCallStore(MemoryDeliveries, MemoryLeases, MemoryToolCalls, MemoryCounters):
    """The rules in one process (`make dev`, tests): one lock around a dict."""


class DynamoCallStore(DynamoDeliveries, DynamoLeases, DynamoToolCalls, DynamoCounters):
    """The rules as DynamoDB conditional writes on the calls table (template.yaml `CallsTable`)."""
