"""Work a request leaves running in background threads (a hard-stop schedule being created), which the
Lambda handler waits for, within a bound, before it returns: Lambda freezes the container then.

Whoever starts such work registers how to wait for it (`on_settle`, shared/deps.py does), so the
handler (shared/web.py) needs to know nothing about it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

_settlers: list[Callable[[float], object]] = []


def on_settle(wait: Callable[[float], object]) -> None:
    """`wait(timeout)` is called at the end of every invocation, with what is left of the bound."""
    if wait not in _settlers:
        _settlers.append(wait)


def settle(timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for wait in list(_settlers):
        wait(max(0.0, deadline - time.monotonic()))
