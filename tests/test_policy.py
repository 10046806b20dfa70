"""Caller policy: numbers from untrusted SIP headers against allow and deny lists."""

from __future__ import annotations

import pytest

from shared.policy import BUSY, DECLINE, CallerPolicy, caller_number
from shared.settings import Settings


@pytest.mark.parametrize(
    ("header", "number"),
    [
        ('"Caller" <sip:+15551230000@sip.example.com>;tag=9fxced76sl', "+15551230000"),
        ("sip:+15551230000@example.com", "+15551230000"),
        ("<sips:15551230000@example.com>", "+15551230000"),
        ("tel:+1-555-123-0000", "+15551230000"),
        ("<tel:+44 20 7946 0958>", "+442079460958"),
        ("sip:anonymous@anonymous.invalid", ""),
        ('"Bob" <sip:bob@example.com>', ""),
        ("", ""),
    ],
)
def test_caller_number(header: str, number: str) -> None:
    assert caller_number(header) == number


def policy(**env: str) -> CallerPolicy:
    return CallerPolicy.from_settings(Settings(**env))  # type: ignore[arg-type]


def test_no_lists_allow_everyone() -> None:
    assert policy().check("sip:+15551230000@x").allowed
    assert policy().check("sip:anonymous@anonymous.invalid").allowed


def test_deny_list_declines_with_603() -> None:
    rules = policy(denied_callers="+15551230000, +1 (555) 999-0000")
    decision = rules.check('"X" <sip:+15551230000@x>')
    assert (decision.allowed, decision.status_code) == (False, DECLINE)
    assert "deny" in decision.reason
    assert not rules.check("tel:+15559990000").allowed  # entries are normalised like headers
    assert rules.check("sip:+15551230001@x").allowed


def test_allow_list_declines_everyone_else_including_anonymous() -> None:
    rules = policy(allowed_callers="+15551230000,+4420*")
    assert rules.check("sip:+15551230000@x").allowed
    assert rules.check("sip:+442079460958@x").allowed  # prefix entry
    for other in ("sip:+15551230001@x", "sip:anonymous@anonymous.invalid", ""):
        decision = rules.check(other)
        assert (decision.allowed, decision.status_code) == (False, DECLINE)
        assert "allow" in decision.reason


def test_deny_wins_over_allow() -> None:
    rules = policy(allowed_callers="+1555*", denied_callers="+15551230000")
    assert not rules.check("sip:+15551230000@x").allowed
    assert rules.check("sip:+15551230001@x").allowed


def test_busy_status_and_cap_come_from_settings() -> None:
    assert BUSY == 486
    assert policy(max_concurrent_calls="2").max_concurrent_calls == 2
