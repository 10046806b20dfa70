"""A pytest plugin (`-p tests.tally`): the counting tests report what they tried and what was lost.

`record("webhook forgeries", tried=23, upstream_calls_on_invalid=0)` adds up per name; the totals are
printed after the run whatever the capture settings, so CI logs always show them.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

_lock = threading.Lock()
_totals: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
_notes: dict[str, str] = {}


def record(name: str, note: str = "", **counts: float) -> None:
    """Add counts under `name` (tried=1, errors=0, ...); `note` replaces its free-text line (latencies)."""
    with _lock:
        for key, value in counts.items():
            _totals[name][key] += value
        if note:
            _notes[name] = note


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _totals and not _notes:
        return
    terminalreporter.section("what the counting tests tried")
    for name in sorted(set(_totals) | set(_notes)):
        counts = ", ".join(f"{key}={value:g}" for key, value in _totals.get(name, {}).items())
        line = f"{name}: {counts}"
        if name in _notes:
            line += f"  [{_notes[name]}]"
        terminalreporter.write_line(line)
