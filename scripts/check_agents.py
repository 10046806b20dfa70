"""Check the agent profiles file and its JSON schema for editors.

Usage: python scripts/check_agents.py [FILE ...] [--write-schema]

- every FILE (default: shared/agents.yaml, the file the layer ships) is parsed and checked as the
  functions check it (shared/agents.py), with the tools this tree defines; exit 1 naming the file,
  the profile and the field when one is invalid;
- shared/agents.schema.json (which the YAML file names for editors with a yaml-language-server
  comment) must equal the schema generated from the pydantic models: exit 1 while it is stale,
  `--write-schema` rewrites it.

- the template's model defaults (ModelName, TranscriptionModel) and every profile's models pass the
  lifecycle guard (shared/lifecycle.py): a model past OpenAI's shutdown date fails, one within 60 days
  of it is a warning;

`make lint` runs it; the layer build runs the file check itself (`python -m shared.agents`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared import agents, lifecycle  # noqa: E402 - after the path is set

SCHEMA_FILE = ROOT / "shared" / "agents.schema.json"
TEMPLATE_FILE = ROOT / "template.yaml"
MODEL_PARAMETERS = ("ModelName", "TranscriptionModel", "LiveModelName", "LiveBackendModel")


def template_model_notices(template: Path = TEMPLATE_FILE) -> list[lifecycle.Notice]:
    """The lifecycle guard on the template's model parameter defaults."""
    from local_api.routes import load_template

    parameters = load_template(template)["Parameters"]
    found = [
        lifecycle.notice(str(parameters[name]["Default"]), f"{template.name}: parameter {name} default")
        for name in MODEL_PARAMETERS
    ]
    return [notice for notice in found if notice is not None]


def render_schema() -> str:
    schema = agents.AgentsFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("files", nargs="*", type=Path, default=[agents.DEFAULT_FILE])
    parser.add_argument("--write-schema", action="store_true", help=f"rewrite {SCHEMA_FILE.name}")
    args = parser.parse_args(argv)
    failed = any(agents.main([str(path)]) != 0 for path in args.files)
    for notice in template_model_notices():
        print(f"{'retired model' if notice.retired else 'warning'}: {notice.line}", file=sys.stderr)
        failed = failed or notice.retired
    text = render_schema()
    if args.write_schema:
        SCHEMA_FILE.write_text(text, encoding="utf-8")
        print(f"wrote {SCHEMA_FILE}")
    elif not SCHEMA_FILE.exists() or SCHEMA_FILE.read_text(encoding="utf-8") != text:
        print(
            f"{SCHEMA_FILE} is out of date: run python scripts/check_agents.py --write-schema",
            file=sys.stderr,
        )
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
