"""One audit record per request: one JSON log line and one EMF metrics document.

Inside a request (`with audit.request(...)`, opened by shared/web.py's Lambda handler) the logger's
lines below ERROR and every metric data point are gathered instead of written. When the request ends
they go out together: one `request` log line, whose `events` hold each gathered line's message and
fields (the request's keys, such as `call_id`, on the line itself), and one EMF document with every
data point (one directive per dimension set). Errors and tracebacks are still written at once, so a
crash never swallows them; outside a request (the observer worker, a thread that outlives the
request) lines and metrics go out one by one as before.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.logging.formatter import RESERVED_LOG_ATTRS

from shared import log
from shared.log import logger

REQUEST_MESSAGE = "request"
_NOT_FIELDS = {*RESERVED_LOG_ATTRS, "taskName"}  # a LogRecord's own attributes, not the caller's fields


@dataclass
class RequestRecord:
    """What one request has logged and measured so far."""

    fields: dict[str, Any] = field(default_factory=dict)  # the request line's own fields (route, status)
    keys: dict[str, Any] = field(default_factory=dict)  # the request's log keys, as its lines saw them
    events: list[dict[str, Any]] = field(default_factory=list)
    level: int = logging.INFO
    metrics: list[dict[str, Any]] = field(default_factory=list)  # EMF documents, one per data point
    open: bool = True

    def gather(self, message: str, fields: Mapping[str, Any], level: int, keys: Mapping[str, Any]) -> bool:
        """A line of this request's (shared/log.py): one of the request line's `events`."""
        if not self.open:
            return False  # logged by a thread that outlived the request: a line of its own
        event = {"message": message, **fields}
        if level != logging.INFO:
            event["level"] = logging.getLevelName(level)
        self.events.append(event)
        self.level = max(self.level, level)
        self.keys.update(keys)
        return True


def current() -> RequestRecord | None:
    """The request being recorded in this context, if any (and not yet written)."""
    record = log.current_gatherer()
    return record if isinstance(record, RequestRecord) and record.open else None


@contextmanager
def request(**fields: Any) -> Iterator[RequestRecord]:
    """Gather this request's log lines and metrics; write them as one line and one document at the end."""
    record = RequestRecord(fields=dict(fields))
    token = log.gathering(record)
    started = time.perf_counter()
    try:
        yield record
    finally:
        record.open = False
        log.stop_gathering(token)
        record.fields["duration_ms"] = round((time.perf_counter() - started) * 1000, 2)
        _write(record)


class _Gather(logging.Filter):
    """On the logger's output handler: a line logged inside a request joins the request's record
    (plain info lines get there without a LogRecord: shared/log.py's Logger)."""

    def filter(self, line: logging.LogRecord) -> bool:
        record = current()
        if record is None or line.levelno >= logging.ERROR or line.exc_info:
            return True
        fields = {k: v for k, v in line.__dict__.items() if k not in _NOT_FIELDS}
        return not record.gather(
            line.getMessage(), fields, line.levelno, logger.thread_safe_get_current_keys()
        )


logger.registered_handler.addFilter(_Gather())


def _write(record: RequestRecord) -> None:
    for document in merge(record.metrics):
        print(json.dumps(document, separators=(",", ":")))  # EMF goes to stdout, as Powertools writes it
    extra = {**record.keys, **record.fields, "events": record.events}
    if record.level >= logging.WARNING:
        logger.warning(REQUEST_MESSAGE, extra=extra)
    else:
        logger.info(REQUEST_MESSAGE, extra=extra)


def merge(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """EMF documents of single data points as few documents as possible (one, unless two points give
    one dimension different values): a directive per dimension set, a metric's values side by side."""
    merged: list[dict[str, Any]] = []
    for document in documents:
        if not any(_absorb(into, document) for into in merged):
            merged.append(document)  # each point's document is new: later points may be added to it
    return merged


def _absorb(into: dict[str, Any], document: dict[str, Any]) -> bool:
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    names = [m["Name"] for m in directive["Metrics"]]
    directives: list[dict[str, Any]] = into["_aws"]["CloudWatchMetrics"]
    same_dimensions = next((d for d in directives if d["Dimensions"] == directive["Dimensions"]), None)
    for key, value in document.items():
        if key == "_aws" or key in names:
            continue
        if key in into and into[key] != value:
            return False  # a dimension with another value: its own document
    for name in names:
        if name in into and (same_dimensions is None or name not in _names(same_dimensions)):
            return False  # the metric under another dimension set: its own document
    for name in names:
        into[name] = [*into.get(name, []), *document[name]]
    if same_dimensions is None:
        directives.append(directive)
    else:
        new = [m for m in directive["Metrics"] if m["Name"] not in _names(same_dimensions)]
        same_dimensions["Metrics"].extend(new)
    into.update((k, v) for k, v in document.items() if k != "_aws" and k not in names)
    return True


def _names(directive: dict[str, Any]) -> set[str]:
    return {m["Name"] for m in directive["Metrics"]}
