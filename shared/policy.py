"""Who may call: allow and deny lists matched against the caller's number from the SIP `From` header.

The SIP headers are untrusted caller metadata (a caller can put anything in `From`), so this is a
convenience filter, not authentication. Numbers are compared as `+digits`; a list entry ending in
`*` matches every number starting with it (`+1555*`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.settings import Settings

DECLINE = 603  # SIP 603 Decline: the callee does not want this call
BUSY = 486  # SIP 486 Busy Here: the concurrent-call cap is reached

# The user part of a sip:/sips:/tel: URI, e.g. `"Bob" <sip:+1555...@host>;tag=x` -> `+1555...`.
_URI_USER = re.compile(r"(?:sips?|tel):([^@;>]+)", re.IGNORECASE)
_SEPARATORS = re.compile(r"[\s().\-]")
_NUMBER = re.compile(r"\+?\d{2,20}")


def caller_number(header_value: str) -> str:
    """`+digits` from a From/To header value, or "" when it holds no number (anonymous, names)."""
    match = _URI_USER.search(header_value)
    user = match.group(1) if match else header_value
    digits = _SEPARATORS.sub("", user)
    if not _NUMBER.fullmatch(digits):
        return ""
    return digits if digits.startswith("+") else f"+{digits}"


def mask_number(number: str) -> str:
    """What records and logs may keep of a phone number: `+` and its first 4 digits, and its last 4
    (`+15551230123` -> `+1555***0123`); a number of 9 characters or fewer keeps only its last 2.
    "" stays ""."""
    if not number:
        return ""
    if len(number) <= 9:
        return "***" + number[-2:]
    return f"{number[:5]}***{number[-4:]}"


def _entries(raw: str) -> tuple[str, ...]:
    out = []
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        prefix = item.endswith("*")
        number = caller_number(item.rstrip("*")) or item.rstrip("*")
        out.append(number + ("*" if prefix else ""))
    return tuple(out)


def _listed(number: str, entries: tuple[str, ...]) -> bool:
    return bool(number) and any(
        number.startswith(entry[:-1]) if entry.endswith("*") else number == entry for entry in entries
    )


@dataclass(frozen=True)
class Decision:
    allowed: bool
    status_code: int = 0  # the SIP status to reject with
    reason: str = ""


ALLOW = Decision(True)


@dataclass(frozen=True)
class CallerPolicy:
    allowed: tuple[str, ...] = ()
    denied: tuple[str, ...] = ()
    max_concurrent_calls: int = 0  # 0 = no cap (enforced with the call store, see sip_app)

    @classmethod
    def from_settings(cls, settings: Settings) -> CallerPolicy:
        return cls(
            allowed=_entries(settings.allowed_callers),
            denied=_entries(settings.denied_callers),
            max_concurrent_calls=settings.max_concurrent_calls,
        )

    def check(self, from_header: str) -> Decision:
        number = caller_number(from_header)
        if _listed(number, self.denied):
            return Decision(False, DECLINE, "caller is on the deny list")
        if self.allowed and not _listed(number, self.allowed):
            return Decision(False, DECLINE, "caller is not on the allow list")
        return ALLOW
