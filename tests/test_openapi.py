"""openapi.yaml is FastAPI's generated contract (scripts/make_openapi.py): up to date, every error
documented as `{"error": str}`, no 422 (the apps answer 400), every reference resolvable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts import make_openapi
from shared.web import ErrorBody
from sip_app import WebhookEvent

DOCUMENT: dict[str, Any] = yaml.safe_load(make_openapi.OPENAPI_FILE.read_text(encoding="utf-8"))
OPERATIONS = [
    (f"{method.upper()} {path}", operation)
    for path, methods in DOCUMENT["paths"].items()
    for method, operation in methods.items()
]


def test_openapi_yaml_is_what_the_apps_generate() -> None:
    assert make_openapi.main(["--check"]) == 0, "run: python scripts/make_openapi.py"


def test_the_check_fails_on_a_stale_or_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    current = tmp_path / "openapi.yaml"
    assert make_openapi.main(["--out", str(current)]) == 0
    assert make_openapi.main(["--check", "--out", str(current)]) == 0
    stale = tmp_path / "stale.yaml"
    stale.write_text(current.read_text().replace("operationId: create_call", "operationId: old_name"))
    assert make_openapi.main(["--check", "--out", str(stale)]) == 1
    assert make_openapi.main(["--check", "--out", str(tmp_path / "missing.yaml")]) == 1
    assert "out of date" in capsys.readouterr().err


def test_no_operation_documents_fastapis_422() -> None:
    for label, operation in OPERATIONS:
        assert "422" not in operation["responses"], label
    assert "HTTPValidationError" not in DOCUMENT["components"]["schemas"]


def test_every_error_response_is_the_error_model() -> None:
    for label, operation in OPERATIONS:
        errors = {code: r for code, r in operation["responses"].items() if int(code) >= 400}
        assert errors, label
        for code, response in errors.items():
            schema = response["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (label, code)
    assert DOCUMENT["components"]["schemas"]["ErrorBody"]["required"] == ["error"]
    assert ErrorBody(error="x").model_dump() == {"error": "x"}


def test_the_parameterised_routes_document_their_400() -> None:
    by_label = dict(OPERATIONS)
    for label in ("POST /rtc", "POST /observer/{call_id}"):
        assert by_label[label]["parameters"], label
        assert "400" in by_label[label]["responses"], label


def test_raw_bodies_are_documented() -> None:
    by_label = dict(OPERATIONS)
    sdp = by_label["POST /rtc"]["requestBody"]["content"]["application/sdp"]["schema"]
    assert sdp == {"type": "string", "pattern": "^v=0", "maxLength": 65536}
    webhook = by_label["POST /sip"]["requestBody"]["content"]["application/json"]["schema"]
    assert webhook == {"$ref": "#/components/schemas/WebhookEvent"}
    assert DOCUMENT["components"]["schemas"]["WebhookEvent"] == WebhookEvent.model_json_schema()
    headers = {p["name"] for p in by_label["POST /sip"]["parameters"] if p["in"] == "header"}
    assert headers == {"webhook-id", "webhook-timestamp", "webhook-signature"}


def test_every_reference_resolves() -> None:
    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            own = [node["$ref"]] if "$ref" in node else []
            return own + [r for v in node.values() for r in refs(v)]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    schemas = DOCUMENT["components"]["schemas"]
    found = refs(DOCUMENT)
    assert found
    for ref in found:
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
