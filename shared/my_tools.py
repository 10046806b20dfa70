"""YOUR tools: add one here, then name it in a profile's `tools` (shared/agents.yaml) or in `TOOLS`
(template parameter `Tools`). The built-ins (end_call, transfer_call) need no naming.

A tool is an `async def` taking one pydantic model (its arguments: field types, `Field(description=...)`
become the JSON schema the model sees) with a docstring (the model's description of when to use it).
Return a string or anything JSON-serialisable; raise to report a failure. It runs in the observer
with a timeout (`TOOL_TIMEOUT_SECONDS`); the model hears errors as `{"error": "..."}`. Example::

    class OrderArgs(BaseModel):
        order_id: str = Field(description="The order number the caller reads out")

    async def order_status(args: OrderArgs) -> dict[str, str]:
        \"\"\"Look up the delivery status of an order.\"\"\"
        return {"status": "shipped"}

`on_dtmf` (below) decides what a keypad press on a phone call does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field


class TimeArgs(BaseModel):
    timezone: str = Field(
        default="UTC", max_length=64, description="IANA time zone name, e.g. Europe/Paris or America/New_York"
    )


async def get_current_time(args: TimeArgs) -> dict[str, str]:
    """Tell the current date and time in a time zone. Use it when the caller asks what time or day
    it is somewhere."""
    try:
        zone = ZoneInfo(args.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {args.timezone!r}; use an IANA name like Europe/Paris") from None
    now = datetime.now(zone)
    return {
        "timezone": args.timezone,
        "local_time": now.strftime("%Y-%m-%d %H:%M"),
        "weekday": now.strftime("%A"),
    }


@dataclass(frozen=True)
class KeypadCall:
    """What `on_dtmf` knows of the call."""

    call_id: str
    can_transfer: bool  # a SIP call with TRANSFER_TARGET set


def on_dtmf(digit: str, call: KeypadCall) -> Literal["end_call", "transfer_call"] | None:
    """A key pressed on a phone call (`0-9`, `*`, `#`, `A-D`): return `"transfer_call"` or `"end_call"`
    to have the observer do that, or None to do nothing (the press is logged either way)."""
    if digit == "0" and call.can_transfer:
        return "transfer_call"
    return None
