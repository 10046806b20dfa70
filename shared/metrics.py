"""CloudWatch metrics as Embedded Metric Format documents (the shape Powertools' EMF serializer writes).

Inside a request every data point joins the request's one EMF document, written when it ends
(shared/audit.py); outside one (the observer worker, background threads) each point is written to
stdout at once. Either way nothing is buffered between invocations or shared between the threads of
the local server. The lines go to stdout, not through the logger, so tests that capture log records
are not disturbed by them.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from shared import audit

NAMESPACE = "HelloRealtime"

# Dimension `api` (realtime | live, shared/upstream.py call_api) wherever a call's API is known.

CALLS_STARTED = "CallsStarted"  # dimensions source: webrtc | sip | outbound, api
CALLS_ACCEPTED = "CallsAccepted"  # dimension api
CALLS_REJECTED = "CallsRejectedByPolicy"  # dimensions sip_status: 603 (caller lists) | 486 (busy), api
ACCEPT_FAILURES = "AcceptFailures"  # dimension api, rolled up (the alarm watches the total)
SIGNATURE_REJECTED = "WebhooksRejectedForSignature"  # dimension reason (shared/webhooks.py), rolled up
DUPLICATES_SUPPRESSED = "DuplicatesSuppressed"  # dimensions kind: webhook | observer | decision, api
OBSERVER_HANDOFFS = "ObserverHandoffs"  # dimension api
CALL_DURATION = "CallDuration"  # seconds, dimensions source, api
WEBHOOK_TO_ACCEPT = "WebhookToAccept"  # milliseconds, dimension api
TOOL_ERRORS = "ToolErrors"  # a tool call answered with an error output (the tool is in the log line)
CALLS_LIMITED = "CallsRefusedByLimit"  # dimension limit: client_hourly | daily_minutes
DAILY_MINUTES_USED = "DailyMinutesUsed"  # the stack's minutes counter for the UTC day, after each change
RECORD_WRITE_FAILURES = "RecordWriteFailures"  # call-record writes that failed (the call goes on)
RECORDING_COPY_FAILURES = "RecordingCopyFailures"  # a call's recording not copied to the bucket
OUTBOUND_CALLS = "OutboundCalls"  # a placed call's line: dimensions outcome answered|failed|no_answer, api
RING_SECONDS = "RingSeconds"  # seconds an outbound call rang before it was answered, dimension api
# Verified webhooks acted on by nobody here: dimension reason event_type (not an incoming call), or
# other_api (a call whose profile uses the other API, whose own webhook accepts it) with api.
WEBHOOKS_IGNORED = "WebhooksIgnored"


# Metrics whose data points also count without their own dimensions: one point is both the total
# (`service` only: what the alarm watches) and its breakdown (`service` + the given dimensions).
ROLLED_UP = frozenset({SIGNATURE_REJECTED, ACCEPT_FAILURES})


def emit(name: str, value: float = 1, unit: MetricUnit = MetricUnit.Count, **dimensions: str) -> None:
    """One data point (with `service` and the given dimensions): into the request's EMF document, or
    written as its own EMF line outside a request."""
    document = point(name, value, unit, **dimensions)
    request = audit.current()
    if request is not None:
        request.metrics.append(document)
    else:
        print(json.dumps(document, separators=(",", ":")))  # EMF goes to stdout


def point(name: str, value: float, unit: MetricUnit, **dimensions: str) -> dict[str, Any]:
    """The EMF document of one data point, as Powertools' `single_metric` writes it. Built here: a
    request's points share one document with a directive per dimension set (shared/audit.py), which
    Powertools' serializer (one dimension set per document) cannot write, and its provider costs
    ~50 µs per point to set up."""
    service = os.environ.get("POWERTOOLS_SERVICE_NAME", "hello-realtime")
    keys = ["service", *dimensions]
    # A rolled-up metric's point counts in the total (`service` only) and in its breakdown.
    sets = [["service"], keys] if name in ROLLED_UP and dimensions else [keys]
    directive = {"Namespace": NAMESPACE, "Dimensions": sets, "Metrics": [{"Name": name, "Unit": unit.value}]}
    return {
        "_aws": {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": [directive]},
        "service": service,
        **dimensions,
        name: [float(value)],
    }


def seconds(name: str, value: float, **dimensions: str) -> None:
    emit(name, round(value, 3), MetricUnit.Seconds, **dimensions)


def milliseconds(name: str, value: float, **dimensions: str) -> None:
    emit(name, round(value, 1), MetricUnit.Milliseconds, **dimensions)
