"""The layer is built from the repo's single copies of `shared/` and `requirements.txt` (layer/Makefile)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", ["shared", "requirements.txt"])
def test_layer_inputs_are_symlinks_to_the_repo_copies(name: str) -> None:
    # An in-place edit (sed -i) replaces a symlink with a file that then silently goes stale.
    link = ROOT / "layer" / name
    assert link.is_symlink(), f"layer/{name} must stay a symlink to ../{name}"
    assert link.resolve() == (ROOT / name).resolve()
