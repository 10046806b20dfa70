"""Call records: one per call (who, when, how it ended, what was said, which tools ran, tokens used).

The observer writes them (functions/observer: a recorder batches the call's turns, tool calls and
usage (Realtime `response.done` tokens; GPT-Live billed seconds and backend tokens) and flushes
every RECORD_FLUSH_SECONDS, before a hand-off and at the end); the
operator API reads them (functions/calls). Writes only ever add: every flush is one update that sets
the call's metadata if it is not there yet (`if_not_exists`), appends turns and tool calls
(`list_append`) and adds usage counters (`ADD`), so a hand-off successor appends to its predecessor's
record and never resets it. Only the end (ended_at, end_reason) is set outright.

Numbers are masked before they get here (shared/policy.py `mask_number`). RECORD_RETENTION_DAYS sets
the TTL (`expires_at`); 0 keeps no turn text, tool arguments or tool results, and the metadata for
METADATA_RETENTION_DAYS. An item stays under DynamoDB's 400 KB: texts are cut to MAX_TEXT_CHARS, and
once a record holds MAX_STORED_BYTES of turns and tool calls, later ones are dropped (`truncated`).

Three modules: model.py (what a record is, and how its parts are stored), pricing.py (token and
per-minute prices, the cost estimate), store.py (the memory and DynamoDB stores: `RecordsTable`, key
`call_id`).
"""

from shared.records.model import (
    DAY_SECONDS,
    MAX_ARGUMENT_DEPTH,
    MAX_STORED_BYTES,
    MAX_TEXT_CHARS,
    METADATA_RETENTION_DAYS,
    SECONDS_FIELD,
    USAGE_FIELDS,
    CallMeta,
    CallPage,
    CallRecord,
    CallSummary,
    Direction,
    EndReason,
    RecordBatch,
    RecordingState,
    RecordSource,
    Role,
    ToolCallEntry,
    Turn,
    Usage,
    VoiceApiName,
    expires_at,
    iso,
    tool_call,
    turn,
    usage_of,
)
from shared.records.pricing import DEFAULT_MINUTE_PRICES, DEFAULT_TOKEN_PRICES, estimate_cost, merged_prices
from shared.records.store import (
    INDEX_NAME,
    KIND,
    MAX_CURSOR_CHARS,
    SUMMARY_ATTRIBUTES,
    DynamoRecordStore,
    MemoryRecordStore,
    RecordPolicy,
    RecordStore,
    RecordsUnavailable,
    decode_cursor,
    encode_cursor,
)

__all__ = [
    "DAY_SECONDS",
    "DEFAULT_MINUTE_PRICES",
    "DEFAULT_TOKEN_PRICES",
    "INDEX_NAME",
    "KIND",
    "MAX_ARGUMENT_DEPTH",
    "MAX_CURSOR_CHARS",
    "MAX_STORED_BYTES",
    "MAX_TEXT_CHARS",
    "METADATA_RETENTION_DAYS",
    "SECONDS_FIELD",
    "SUMMARY_ATTRIBUTES",
    "USAGE_FIELDS",
    "CallMeta",
    "CallPage",
    "CallRecord",
    "CallSummary",
    "Direction",
    "DynamoRecordStore",
    "EndReason",
    "MemoryRecordStore",
    "RecordBatch",
    "RecordPolicy",
    "RecordSource",
    "RecordStore",
    "RecordingState",
    "RecordsUnavailable",
    "Role",
    "ToolCallEntry",
    "Turn",
    "Usage",
    "VoiceApiName",
    "decode_cursor",
    "encode_cursor",
    "estimate_cost",
    "expires_at",
    "iso",
    "merged_prices",
    "tool_call",
    "turn",
    "usage_of",
]
