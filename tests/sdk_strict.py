"""Strict checks of JSON against the `openai` SDK's types (test-only: the code never imports `openai`).

The SDK's request params are TypedDicts (pydantic validates their values but ignores unknown keys)
and its events are pydantic models that allow extra fields, so validation alone would pass a body
with a misspelt key. `assert_strict` walks the data against the type's annotations, refusing any
key the type does not declare and any required key that is missing, then validates with pydantic.
"""

from __future__ import annotations

import collections.abc
import functools
import types
import typing
from typing import Any, Literal, NotRequired, Required, get_args, get_origin

from pydantic import BaseModel, TypeAdapter
from typing_extensions import is_typeddict

_SEQUENCES = (list, tuple, collections.abc.Iterable, collections.abc.Sequence)


def assert_strict(type_: Any, data: Any) -> None:
    """`data` has exactly the keys `type_` allows, recursively, and validates as `type_`."""
    problems = strict_problems(type_, data, "$")
    assert not problems, "; ".join(problems[:5])
    TypeAdapter(type_).validate_python(data)


def strict_problems(type_: Any, data: Any, path: str) -> list[str]:
    type_ = _unwrap(type_)
    origin = get_origin(type_)
    if type_ is Any or type_ is object:
        return []
    if origin is typing.Union or origin is types.UnionType:
        best: list[str] | None = None
        for member in get_args(type_):
            found = strict_problems(member, data, path)
            if not found:
                return []
            if best is None or len(found) < len(best):
                best = found
        return best or [f"{path}: matches no member of {type_}"]
    if origin is Literal:
        return [] if data in get_args(type_) else [f"{path}: {data!r} not in {get_args(type_)}"]
    if type_ is type(None):
        return [] if data is None else [f"{path}: expected null"]
    if is_typeddict(type_):
        return _mapping_problems(type_, data, path)
    if isinstance(type_, type) and issubclass(type_, BaseModel):
        return _model_problems(type_, data, path)
    if origin in _SEQUENCES or getattr(origin, "__name__", "") == "SequenceNotStr":
        if not isinstance(data, list | tuple):
            return [f"{path}: expected a list"]
        (item,) = get_args(type_)[:1] or (Any,)
        return [p for i, value in enumerate(data) for p in strict_problems(item, value, f"{path}[{i}]")]
    if origin in (dict, collections.abc.Mapping):
        if not isinstance(data, dict):
            return [f"{path}: expected an object"]
        value_type = get_args(type_)[1] if get_args(type_) else Any
        return [p for k, v in data.items() for p in strict_problems(value_type, v, f"{path}.{k}")]
    return _scalar_problems(type_, data, path)


def _unwrap(type_: Any) -> Any:
    while get_origin(type_) in (typing.Annotated, Required, NotRequired):
        type_ = get_args(type_)[0]
    return type_


def _mapping_problems(type_: Any, data: Any, path: str) -> list[str]:
    if not isinstance(data, dict):
        return [f"{path}: expected an object for {type_.__name__}"]
    hints = _hints(type_)
    problems = [f"{path}.{key}: not a field of {type_.__name__}" for key in data if key not in hints]
    problems += [
        f"{path}.{key}: required by {type_.__name__}" for key in _required(type_, hints) if key not in data
    ]
    for key, value in data.items():
        if key in hints:
            problems += strict_problems(hints[key], value, f"{path}.{key}")
    return problems


@functools.cache
def _hints(type_: Any) -> dict[str, Any]:
    return typing.get_type_hints(type_, include_extras=True)


def _required(type_: Any, hints: dict[str, Any]) -> list[str]:
    """Required keys, from the `Required[...]` / `NotRequired[...]` marks (the SDK's modules postpone
    annotations, which leaves `__required_keys__` unreliable) and the TypedDict's totality."""
    total = getattr(type_, "__total__", True)
    required = []
    for key, hint in hints.items():
        origin = get_origin(hint)
        if origin is Required or (total and origin is not NotRequired):
            required.append(key)
    return required


def _model_problems(type_: type[BaseModel], data: Any, path: str) -> list[str]:
    if not isinstance(data, dict):
        return [f"{path}: expected an object for {type_.__name__}"]
    fields = {field.alias or name: field for name, field in type_.model_fields.items()}
    problems = [f"{path}.{key}: not a field of {type_.__name__}" for key in data if key not in fields]
    problems += [
        f"{path}.{key}: required by {type_.__name__}"
        for key, field in fields.items()
        if field.is_required() and key not in data
    ]
    for key, value in data.items():
        if key in fields:
            problems += strict_problems(fields[key].annotation, value, f"{path}.{key}")
    return problems


def _scalar_problems(type_: Any, data: Any, path: str) -> list[str]:
    if type_ is bool:
        ok = isinstance(data, bool)
    elif type_ is int:
        ok = isinstance(data, int) and not isinstance(data, bool)
    elif type_ is float:
        ok = isinstance(data, int | float) and not isinstance(data, bool)
    elif type_ is str:
        ok = isinstance(data, str)
    else:
        return []  # anything else (a Protocol, a class the SDK leaves open): pydantic's to judge
    return [] if ok else [f"{path}: {data!r} is not {type_.__name__}"]
