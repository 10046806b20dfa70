"""GET / tells the page the server's default voice API (the choice it starts with)."""

from __future__ import annotations

from pathlib import Path

import pytest

import page_app
from shared import deps
from tests.conftest import FakeContext, load_event


def page_html() -> str:
    result = page_app.handler(load_event("page"), FakeContext())
    assert result["statusCode"] == 200
    return str(result["body"])


def test_the_page_starts_with_realtime_by_default(env: pytest.MonkeyPatch) -> None:
    html = page_html()
    assert '<html lang="en" data-default-api="realtime">' in html
    assert 'name="api" value="live"' in html  # the person can still choose GPT-Live


def test_a_live_server_renders_a_live_page_with_the_same_policy(env: pytest.MonkeyPatch) -> None:
    realtime = page_app.handler(load_event("page"), FakeContext())
    env.setenv("VOICE_API", "live")
    deps.reset()
    live = page_app.handler(load_event("page"), FakeContext())
    assert '<html lang="en" data-default-api="live">' in live["body"]
    assert 'data-default-api="realtime"' not in live["body"]
    # Only an attribute differs: the inline script and style (and so the CSP hashes) are the same.
    assert live["headers"]["content-security-policy"] == realtime["headers"]["content-security-policy"]
    assert len(live["body"]) == len(realtime["body"]) - len("realtime") + len("live")


def test_a_live_default_profile_in_agents_yaml_is_what_the_page_shows(
    env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    agents = tmp_path / "agents.yaml"
    agents.write_text("agents:\n  default:\n    api: live\n")
    env.setenv("AGENTS_FILE", str(agents))
    deps.reset()
    assert 'data-default-api="live"' in page_html()
