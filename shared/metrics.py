"""CloudWatch metrics as Embedded Metric Format lines (Powertools), one line per data point.

Each call to `emit` writes its EMF JSON line to stdout at once: nothing is buffered between
invocations or shared between the threads of the local server, so there is nothing to flush or
lose when an invocation ends. The lines go to stdout, not through the logger, so tests that capture
log records are not disturbed by them.
"""

from __future__ import annotations

import os

from aws_lambda_powertools.metrics import MetricUnit, single_metric

NAMESPACE = "HelloRealtime"

CALLS_STARTED = "CallsStarted"  # dimension source: webrtc | sip
CALLS_ACCEPTED = "CallsAccepted"
CALLS_REJECTED = "CallsRejectedByPolicy"  # dimension sip_status: 603 (allow/deny lists) | 486 (busy)
ACCEPT_FAILURES = "AcceptFailures"
SIGNATURE_REJECTED = "WebhooksRejectedForSignature"
DUPLICATES_SUPPRESSED = "DuplicatesSuppressed"  # dimension kind: webhook | observer
OBSERVER_HANDOFFS = "ObserverHandoffs"
CALL_DURATION = "CallDuration"  # seconds, dimension source
WEBHOOK_TO_ACCEPT = "WebhookToAccept"  # milliseconds
TOOL_ERRORS = "ToolErrors"  # a tool call answered with an error output (the tool is in the log line)
CALLS_LIMITED = "CallsRefusedByLimit"  # dimension limit: client_hourly | daily_minutes
DAILY_MINUTES_USED = "DailyMinutesUsed"  # the stack's minutes counter for the UTC day, after each change
RECORD_WRITE_FAILURES = "RecordWriteFailures"  # call-record writes that failed (the call goes on)
WEBHOOKS_IGNORED = "WebhooksIgnored"  # verified events that are not ours to act on (live.*, others)


def emit(name: str, value: float = 1, unit: MetricUnit = MetricUnit.Count, **dimensions: str) -> None:
    """Write one data point (with `service` and the given dimensions) as an EMF line."""
    service = os.environ.get("POWERTOOLS_SERVICE_NAME", "hello-realtime")
    with single_metric(
        name=name,
        unit=unit,
        value=value,
        namespace=NAMESPACE,
        default_dimensions={"service": service, **dimensions},
    ):
        pass


def seconds(name: str, value: float, **dimensions: str) -> None:
    emit(name, round(value, 3), MetricUnit.Seconds, **dimensions)


def milliseconds(name: str, value: float, **dimensions: str) -> None:
    emit(name, round(value, 1), MetricUnit.Milliseconds, **dimensions)
