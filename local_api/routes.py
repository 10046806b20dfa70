"""The route table, read from template.yaml so local and deployed routing cannot drift."""

from __future__ import annotations

import importlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = REPO_ROOT / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that reads CloudFormation short-form tags (!Ref, !Sub, ...) as plain values."""


def _any_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)  # type: ignore[arg-type]


_CfnLoader.add_multi_constructor("!", _any_tag)


@dataclass(frozen=True)
class Function:
    logical_id: str
    code_uri: str
    handler: str  # "module.attribute"
    timeout: int
    memory: int


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # API Gateway template, e.g. /observer/{call_id}
    function: Function
    # `Auth: Authorizer: AWS_IAM`: API Gateway takes only SigV4-signed requests; locally, loopback only.
    iam: bool = False

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if method != self.method:
            return None
        found = _path_regex(self.path).fullmatch(path)
        return None if found is None else found.groupdict()


def _path_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[A-Za-z0-9_]+\})", template)
    pattern = "".join(f"(?P<{p[1:-1]}>[^/]+)" if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile(pattern)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    with path.open(encoding="utf-8") as file:
        data = yaml.load(file, Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass
    return data if isinstance(data, dict) else {}


def read_functions(template: dict[str, Any]) -> dict[str, Function]:
    defaults = (template.get("Globals") or {}).get("Function") or {}
    functions = {}
    for logical_id, resource in (template.get("Resources") or {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource.get("Properties") or {}
        functions[logical_id] = Function(
            logical_id=logical_id,
            code_uri=str(props["CodeUri"]),
            handler=str(props["Handler"]),
            timeout=int(props.get("Timeout", defaults.get("Timeout", 3))),
            memory=int(props.get("MemorySize", defaults.get("MemorySize", 128))),
        )
    return functions


def read_routes(template: dict[str, Any]) -> list[Route]:
    functions = read_functions(template)
    routes = []
    for logical_id, resource in (template.get("Resources") or {}).items():
        if logical_id not in functions:
            continue
        for event in ((resource.get("Properties") or {}).get("Events") or {}).values():
            if event.get("Type") == "HttpApi":
                props = event["Properties"]
                iam = (props.get("Auth") or {}).get("Authorizer") == "AWS_IAM"
                method, path = str(props["Method"]).upper(), str(props["Path"])
                routes.append(Route(method, path, functions[logical_id], iam=iam))
    return routes


def load_handler(function: Function) -> Any:
    """Import the function's handler the way Lambda does: its CodeUri on sys.path, then module.attr."""
    code_dir = str((REPO_ROOT / function.code_uri).resolve())
    for entry in (str(REPO_ROOT), code_dir):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    module_name, attribute = function.handler.rsplit(".", 1)
    return getattr(importlib.import_module(module_name), attribute)
