"""The one table every concern of the call store shares: a dict behind a lock in one process, or the
template's `CallsTable` in DynamoDB (partition key `pk` (S), TTL attribute `expires_at`).

Each concern (deliveries.py, leases.py, tool_calls.py, counters.py) writes its own items, keyed by
its own `pk` prefix, on top of one of the two bases here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shared import aws
from shared.errors import ServiceError
from shared.log import logger

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class StoreUnavailable(ServiceError):
    """The store could not be reached or kept refusing: answer 5xx so OpenAI redelivers later."""

    status_code = 503


class MemoryTable:
    """Items by `pk` in a dict, one lock around every rule (`make dev`, tests)."""

    def __init__(self, *, lock_seconds: float = 30.0, clock: Callable[[], float] = time.time) -> None:
        self._lock_seconds = lock_seconds
        self._clock = clock
        self._items: dict[str, dict[str, Any]] = {}
        self._mutex = threading.Lock()


class DynamoTable:
    """Items by `pk` in DynamoDB, through a boto3 client (the low-level API's shapes). Every write that
    decides who wins is a conditional write: there is no read-then-write race."""

    def __init__(self, table_name: str, client: DynamoDBClient, *, lock_seconds: float = 30.0) -> None:
        if not table_name:
            raise ServiceError("Server misconfigured: CALLS_TABLE_NAME is not set")
        self._table = table_name
        self._client = client
        self._lock_seconds = lock_seconds

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
                    raise ConditionFailed(item if isinstance(item, dict) else None) from None
            elif isinstance(exc, BotoCoreError):  # no answer: unreachable, timed out, no credentials
                code = ""
            else:
                raise
            # The error's type and code only: its message may quote the request (keys, values).
            logger.error("call store error", extra={"error": type(exc).__name__, "code": code})
            raise StoreUnavailable("Call store unavailable") from exc
        return answer


class ConditionFailed(Exception):
    """Someone else's write won the condition. `item`: the item as it was, when the write asked for it
    (`ReturnValuesOnConditionCheckFailure`)."""

    def __init__(self, item: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.item = item


def number(value: float) -> dict[str, str]:
    """A DynamoDB number attribute (floats to the millisecond)."""
    return {"N": repr(round(value, 3)) if isinstance(value, float) else str(value)}
