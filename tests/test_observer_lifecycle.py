"""One observer per call, for the call's whole length: leases, hand-off to a successor, call limit."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

import observer_app
from shared import deps
from shared.launcher import LocalObserverLauncher
from tests.conftest import API_KEY, FakeContext, RecordingLauncher, load_event
from tests.fake_openai import FakeOpenAI, SidebandSession

CALL_ID = "rtc_life0123456789abcdef"


def worker_event(source: str = "sip", started: float | None = None) -> dict[str, Any]:
    event = load_event("observer_async")
    now = time.time()
    event.update(call_id=CALL_ID, source=source, requested_at=now, call_started_at=started or now)
    return event


def hang_up(fake: FakeOpenAI, call_id: str = CALL_ID) -> None:
    response = httpx.post(
        f"{fake.base_url}/realtime/calls/{call_id}/hangup", headers={"Authorization": f"Bearer {API_KEY}"}
    )
    assert response.status_code == 200


def greetings(sideband: SidebandSession) -> list[dict[str, Any]]:
    """`response.create` events without instructions: the "speak first" greeting."""
    return [
        e for _, e in sideband.client_events if e.get("type") == "response.create" and "response" not in e
    ]


def wrap_ups(sideband: SidebandSession) -> list[dict[str, Any]]:
    return [e for _, e in sideband.client_events if e.get("type") == "response.create" and "response" in e]


def in_thread(target: Callable[[], dict[str, Any]]) -> tuple[threading.Thread, list[dict[str, Any]]]:
    results: list[dict[str, Any]] = []
    thread = threading.Thread(target=lambda: results.append(target()), daemon=True)
    thread.start()
    return thread, results


def test_a_second_observer_of_a_live_call_opens_no_sideband(
    fake: FakeOpenAI, launcher: RecordingLauncher
) -> None:
    fake.register_call(CALL_ID)
    fake.sideband_hold_seconds = -1
    first, results = in_thread(
        lambda: observer_app.handler(worker_event(), FakeContext(remaining_seconds=60))
    )
    assert fake.wait_for(lambda: len(fake.sidebands) == 1 and len(fake.sidebands[0].client_events) == 1)

    # A retried async event, a duplicate webhook's launch, and the HTTP entry's worker: all refused.
    for source in ("sip", "sip", "api"):
        assert observer_app.handler(worker_event(source), FakeContext())["outcome"] == "duplicate"
    assert len(fake.sidebands) == 1

    hang_up(fake)
    first.join(timeout=5)
    assert results[0]["outcome"] == "closed"
    # Once the call is over, a late duplicate does not reattach either.
    fake.register_call(CALL_ID)
    assert observer_app.handler(worker_event(), FakeContext())["outcome"] == "duplicate"
    assert len(fake.sidebands) == 1
    assert len(greetings(fake.sidebands[0])) == 1


def test_long_calls_are_handed_to_successors_and_greeted_once(
    fake: FakeOpenAI, env: pytest.MonkeyPatch
) -> None:
    env.setenv("OBSERVER_STOP_MARGIN_SECONDS", "2")
    env.setenv("MAX_CALL_SECONDS", "0")  # no limit: the call lasts until it is hung up
    deps.reset()
    fake.register_call(CALL_ID)
    fake.sideband_hold_seconds = -1
    successors: list[dict[str, Any]] = []
    outcomes: list[dict[str, Any]] = []

    def successor(event: dict[str, Any]) -> None:
        successors.append(event)
        # Each invocation has 4 s; minus the 2 s margin it hands off after ~2 s.
        outcomes.append(observer_app.handler(event, FakeContext(remaining_seconds=4)))

    launcher = LocalObserverLauncher(successor)
    deps.install_local_launcher(launcher)
    started = time.time() - 30  # the call began a while ago; the start time travels with the lease
    first = observer_app.handler(worker_event("webrtc", started), FakeContext(remaining_seconds=4))
    assert first["outcome"] == "handed_off"
    assert fake.wait_for(lambda: len(fake.sidebands) == 3, timeout=6)  # generation 2 has taken over
    hang_up(fake)
    for thread in launcher.threads:
        thread.join(timeout=10)

    assert [(e["generation"], e["call_start"]) for e in [_gen(s) for s in successors]] == [
        (1, started),
        (2, started),
    ]
    assert sorted(o["outcome"] for o in outcomes) == ["closed", "handed_off"]
    first_sb, second_sb, third_sb = fake.sidebands
    # Each successor was connected before its predecessor let go: no gap in the observation.
    assert second_sb.opened_at < (first_sb.closed_at or 0)
    assert third_sb.opened_at < (second_sb.closed_at or 0)
    # The caller hears the greeting once; successors only listen.
    assert [len(greetings(s)) for s in fake.sidebands] == [1, 0, 0]
    assert all(s.client_event_types() == [] for s in (second_sb, third_sb))


def _gen(event: dict[str, Any]) -> dict[str, Any]:
    return {"generation": event["generation"], "call_start": event["call_started_at"]}


def test_a_successor_event_delivered_twice_observes_once(fake: FakeOpenAI, env: pytest.MonkeyPatch) -> None:
    env.setenv("OBSERVER_STOP_MARGIN_SECONDS", "2")
    deps.reset()
    fake.register_call(CALL_ID)
    fake.sideband_hold_seconds = -1
    outcomes: list[str] = []

    def twice(event: dict[str, Any]) -> None:  # at-least-once delivery of the async invoke
        pair = [
            threading.Thread(
                target=lambda: outcomes.append(observer_app.handler(event, FakeContext(60))["outcome"])
            )
            for _ in range(2)
        ]
        for thread in pair:
            thread.start()
        for thread in pair:
            thread.join()

    launcher = LocalObserverLauncher(twice)
    deps.install_local_launcher(launcher)
    assert observer_app.handler(worker_event(), FakeContext(remaining_seconds=3))["outcome"] == "handed_off"
    assert fake.wait_for(lambda: "duplicate" in outcomes, timeout=5)
    hang_up(fake)
    launcher.threads[0].join(timeout=10)
    assert sorted(outcomes) == ["closed", "duplicate"]
    assert len(fake.sidebands) == 2


def test_an_unclaimed_hand_off_ends_at_the_deadline(
    fake: FakeOpenAI, launcher: RecordingLauncher, env: pytest.MonkeyPatch
) -> None:
    env.setenv("OBSERVER_STOP_MARGIN_SECONDS", "2")
    deps.reset()
    fake.register_call(CALL_ID)
    fake.sideband_hold_seconds = -1
    started = time.monotonic()
    result = observer_app.handler(worker_event(), FakeContext(remaining_seconds=3))
    assert result["outcome"] == "deadline"  # the successor never came (the launcher only records)
    assert 1.5 < time.monotonic() - started < 4
    (successor,) = launcher.requests
    assert (successor.call_id, successor.generation) == (CALL_ID, 1)


@pytest.mark.parametrize("source", ["sip", "webrtc"])
def test_the_call_limit_wraps_up_then_hangs_up_once(
    fake: FakeOpenAI, launcher: RecordingLauncher, env: pytest.MonkeyPatch, source: str
) -> None:
    env.setenv("MAX_CALL_SECONDS", "2")
    env.setenv("WRAP_UP_SECONDS", "1")
    deps.reset()
    fake.register_call(CALL_ID)
    fake.sideband_hold_seconds = -1
    started = time.monotonic()
    result = observer_app.handler(worker_event(source), FakeContext(remaining_seconds=60))
    assert result["outcome"] == "max_duration"
    assert 1.8 < time.monotonic() - started < 4
    assert len(fake.requests_to(f"/realtime/calls/{CALL_ID}/hangup")) == 1
    (sideband,) = fake.sidebands
    (wrap_up,) = wrap_ups(sideband)
    assert "time" in wrap_up["response"]["instructions"]
    assert len(greetings(sideband)) == 1
    hangup_at = fake.requests_to("/hangup")[0].received_at
    assert 0.7 < hangup_at - sideband.client_events[-1][0] < 1.5  # wrap-up ~1 s before the hangup
    assert launcher.requests == []  # no successor for a call that ends in time


@pytest.mark.parametrize(
    ("limit", "wrap_up", "sender"),
    [
        ("4", "1", "successor"),  # wrap-up due at 3 s: the successor's (hand-off at 2 s)
        ("4", "2.5", "first"),  # due at 1.5 s: before the hand-off, the first observer's
        ("3", "0.8", "successor"),  # due at 2.2 s: while the two overlap, still sent exactly once
    ],
)
def test_the_call_limit_holds_across_a_hand_off(
    fake: FakeOpenAI, env: pytest.MonkeyPatch, limit: str, wrap_up: str, sender: str
) -> None:
    env.setenv("OBSERVER_STOP_MARGIN_SECONDS", "2")
    env.setenv("MAX_CALL_SECONDS", limit)
    env.setenv("WRAP_UP_SECONDS", wrap_up)
    deps.reset()
    fake.register_call(CALL_ID)
    fake.sideband_hold_seconds = -1
    outcomes: list[str] = []
    launcher = LocalObserverLauncher(
        lambda event: outcomes.append(observer_app.handler(event, FakeContext(60))["outcome"])
    )
    deps.install_local_launcher(launcher)
    started = time.monotonic()
    assert observer_app.handler(worker_event(), FakeContext(remaining_seconds=4))["outcome"] == "handed_off"
    launcher.threads[0].join(timeout=10)
    assert outcomes == ["max_duration"]
    assert int(limit) - 0.2 < time.monotonic() - started < int(limit) + 2.5
    assert len(fake.requests_to("/hangup")) == 1
    first, second = fake.sidebands
    assert (len(greetings(first)), len(greetings(second))) == (1, 0)
    expected = (0, 1) if sender == "successor" else (1, 0)
    assert (len(wrap_ups(first)), len(wrap_ups(second))) == expected


def test_a_sideband_404_ends_the_lease(fake: FakeOpenAI, env: pytest.MonkeyPatch) -> None:
    assert observer_app.handler(worker_event(), FakeContext())["outcome"] == "not_found"
    fake.register_call(CALL_ID)  # even if the id came back, the call it named is over
    assert observer_app.handler(worker_event(), FakeContext())["outcome"] == "duplicate"
    assert fake.sidebands == []


def test_a_failed_hangup_is_retried_once(
    fake: FakeOpenAI, launcher: RecordingLauncher, env: pytest.MonkeyPatch
) -> None:
    env.setenv("MAX_CALL_SECONDS", "1")
    env.setenv("WRAP_UP_SECONDS", "0")  # no wrap-up
    deps.reset()
    fake.register_call(CALL_ID)
    fake.sideband_hold_seconds = -1
    fake.fail_next("/hangup", 500)
    result = observer_app.handler(worker_event(), FakeContext(remaining_seconds=60))
    assert result["outcome"] == "max_duration"
    assert len(fake.requests_to("/hangup")) == 2
    (sideband,) = fake.sidebands
    assert wrap_ups(sideband) == []
    assert sideband.closed_at is not None
