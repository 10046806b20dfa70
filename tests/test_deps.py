"""The process singletons: built once per container, thread-safe, overridable in a `with` block."""

from __future__ import annotations

import ast
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from shared import deps
from shared.deps import Singleton
from shared.launcher import DisabledObserverLauncher

ROOT = Path(__file__).resolve().parent.parent


def test_a_singleton_builds_once_even_when_threads_race() -> None:
    builds: list[int] = []

    def build() -> object:
        builds.append(1)
        time.sleep(0.05)  # wide window for a second thread to slip in
        return object()

    single = Singleton(build)
    seen: list[object] = []
    threads = [threading.Thread(target=lambda: seen.append(single())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(builds) == 1
    assert all(value is seen[0] for value in seen)


def test_override_stands_in_only_inside_the_block_and_reset_rebuilds() -> None:
    counter = iter(range(100))
    single = Singleton(lambda: next(counter))
    assert single() == 0
    with single.override(42) as value:
        assert value == 42
        assert single() == 42
        with single.override(7):
            assert single() == 7
        assert single() == 42
    assert single() == 0
    single.reset()
    assert single() == 1


def test_reset_forgets_every_singleton(env: pytest.MonkeyPatch) -> None:
    client, store = deps.openai_client(), deps.call_store()
    assert deps.openai_client() is client
    deps.reset()
    assert deps.openai_client() is not client
    assert deps.call_store() is not store
    env.setenv("OBSERVER_LAUNCH", "off")
    deps.reset()
    assert isinstance(deps.observer_launcher(), DisabledObserverLauncher)


@pytest.mark.parametrize("module", ["rtc_app", "token_app", "sip_app", "observer_http", "page_app"])
def test_every_http_function_is_a_fastapi_app(module: str) -> None:
    # Our users chose FastAPI: each HTTP function's `app` is a FastAPI app (its generated OpenAPI is the
    # contract), imported in a fresh interpreter as Lambda would.
    folder = {"observer_http": "observer"}.get(module, module.removesuffix("_app"))
    code = (
        f"import fastapi, {module}; "
        f"print(isinstance({module}.app, fastapi.FastAPI), {module}.app.openapi_url, {module}.app.docs_url)"
    )
    out = subprocess.run(  # noqa: S603 - our own interpreter and a fixed module name
        [sys.executable, "-c", code],
        cwd=ROOT / "functions" / folder,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "OPENAI_API_KEY": "sk-test"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    # A FastAPI app, and the deployed app serves neither /openapi.json nor /docs.
    assert out == ["True", "None", "None"]


def _reaches_for_deps(tree: ast.AST) -> list[int]:
    """Lines that import shared.deps (any spelling) or look it up by name (sys.modules["shared.deps"])."""
    return [getattr(node, "lineno", 0) for node in ast.walk(tree) if _is_deps(node)]


def _is_deps(node: ast.AST) -> bool:
    if isinstance(node, ast.ImportFrom):
        return node.module == "shared.deps" or (
            node.module == "shared" and any(a.name == "deps" for a in node.names)
        )
    if isinstance(node, ast.Import):
        return any(a.name == "shared.deps" for a in node.names)
    return isinstance(node, ast.Constant) and node.value == "shared.deps"


def test_only_the_functions_reach_for_deps() -> None:
    # shared/ is what the functions compose: it takes what it needs as arguments (or registers hooks
    # that deps installs), so a remixer can read and reuse any of it without the process singletons.
    offenders = {
        str(path.relative_to(ROOT)): lines
        for path in sorted((ROOT / "shared").rglob("*.py"))
        if path != ROOT / "shared" / "deps.py"
        if (lines := _reaches_for_deps(ast.parse(path.read_text(encoding="utf-8"))))
    }
    assert offenders == {}
    users = [p for p in (ROOT / "functions").rglob("*.py") if _reaches_for_deps(ast.parse(p.read_text()))]
    assert len(users) >= 5  # the scan does see real imports: rtc, token, sip, hangup, calls, observer
