"""One structured JSON logger (Powertools) for every function.

Keys a request adds (`call_id`, ...) are its own: `append_keys` keeps them in the request's context
(contextvars), never on the process-wide logger, so concurrent requests in one process (`make dev`,
local_api) never log each other's keys. shared/web.py gives each invocation a fresh context.

Inside a request, lines are gathered into the request's audit record (shared/audit.py) rather than
written one by one; `gathering` is where that record is found.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextvars import ContextVar, Token
from typing import Any, Protocol

from aws_lambda_powertools import Logger as PowertoolsLogger


class Gatherer(Protocol):
    """What gathers a request's lines (shared/audit.py's RequestRecord)."""

    def gather(self, message: str, fields: Mapping[str, Any], level: int, keys: Mapping[str, Any]) -> bool:
        """Take the line; False when it is no longer gathering (its request has ended)."""


_gatherer: ContextVar[Gatherer | None] = ContextVar("log_gatherer", default=None)


def gathering(gatherer: Gatherer | None) -> Token[Gatherer | None]:
    """Send this context's lines below ERROR to `gatherer` (None: write them one by one again);
    `stop_gathering(token)` undoes it."""
    return _gatherer.set(gatherer)


def stop_gathering(token: Token[Gatherer | None]) -> None:
    _gatherer.reset(token)


def current_gatherer() -> Gatherer | None:
    return _gatherer.get()


class Logger(PowertoolsLogger):
    """Powertools' Logger, with one shortcut: inside a request, a plain info line goes straight to the
    request's record. It is written only as one of the request line's `events`, so the LogRecord that
    `logging` would build for it first (its caller's frame, the thread and process, the time) would be
    thrown away: skipping it is about a fifth of a warm /sip request's own time (docs/PERFORMANCE.md).
    Lines with %-arguments, an exception or a stack still take the standard path (and its filter)."""

    def info(
        self,
        msg: object,
        *args: object,
        exc_info: Any = None,
        stack_info: bool = False,
        stacklevel: int = 2,
        extra: Mapping[str, object] | None = None,
        **kwargs: object,
    ) -> None:
        gatherer = _gatherer.get()
        if (
            gatherer is not None
            and not (args or exc_info or stack_info)
            and self._logger.isEnabledFor(logging.INFO)
        ):
            fields = {**extra, **kwargs} if extra else kwargs
            if gatherer.gather(str(msg), fields, logging.INFO, self.thread_safe_get_current_keys()):
                return
        super().info(
            msg,
            *args,
            exc_info=exc_info,
            stack_info=stack_info,
            stacklevel=stacklevel + 1,
            extra=extra,
            **kwargs,
        )


logger = Logger(service="hello-realtime")  # POWERTOOLS_SERVICE_NAME overrides the service name


def append_keys(**keys: object) -> None:
    """Put `keys` on every later line of this request (and of the threads it starts with its context)."""
    logger.thread_safe_append_keys(**keys)
