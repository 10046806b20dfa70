"""A strict structural checker for JSON data against the OpenAI SDK's types (test-only).

The SDK's pydantic models accept unknown keys and its TypedDict params are not checked at runtime,
so "it validates" proves little about a fixture or a fake. This walks the type instead: every key
must be a field of the model or TypedDict (by its wire name), every required field must be there,
and literals, strings, numbers, booleans, lists and nulls must be what the annotation says.
Unions pass when one alternative passes; the reported issues are those of the best alternative (the
one whose ``type`` literal matches, else the one with the fewest issues).

    assert_strict(ConnectServerEvent, event)              # pydantic models, unions, Annotated
    issues = strict_issues(SessionAcceptParams, body)     # TypedDict params; [] when strict-valid

``Issue.code`` uses OpenAI's error codes (``unknown_parameter``, ``missing_required_parameter``,
``invalid_type``, ``invalid_value``) so a fake can turn the first issue into an OpenAI-shaped error.
"""

from __future__ import annotations

import collections.abc
import functools
import inspect
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, NotRequired, Required, Union, get_args, get_origin

import pydantic
import typing_extensions

__all__ = ["Issue", "allowed_keys", "assert_strict", "check", "strict_issues"]

_MAX_ISSUES_SHOWN = 20
# ``type X = ...`` aliases: typing's (3.12+) and typing_extensions' own class.
_ALIAS_TYPES = tuple(
    {getattr(typing, "TypeAliasType", typing_extensions.TypeAliasType), typing_extensions.TypeAliasType}
)


@dataclass(frozen=True)
class Issue:
    """One way the data does not fit the type; ``path`` is like ``session.audio.output.voice``."""

    code: Literal["unknown_parameter", "missing_required_parameter", "invalid_type", "invalid_value"]
    path: str
    message: str


def assert_strict(tp: Any, data: Any, *, path: str = "") -> None:
    """Raise AssertionError listing every issue unless ``data`` fits ``tp`` strictly."""
    issues = strict_issues(tp, data, path=path)
    if issues:
        shown = "\n".join(
            f"  {issue.path or '<root>'}: {issue.message}" for issue in issues[:_MAX_ISSUES_SHOWN]
        )
        raise AssertionError(f"{len(issues)} strict issue(s) against {_name(tp)}:\n{shown}")


def strict_issues(tp: Any, data: Any, *, path: str = "") -> list[Issue]:
    """Every issue of ``data`` against ``tp`` ([] when it fits strictly)."""
    return _check(tp, data, path)


def check(tp: Any, data: Any, *, path: str = "") -> list[str]:
    """pydantic validation as the SDK does it, then the strict walk: each problem as ``path: message``
    ([] when ``data`` fits ``tp`` strictly)."""
    try:
        pydantic.TypeAdapter(tp).validate_python(data)
    except pydantic.ValidationError as exc:
        return [f"{path or '<root>'}: pydantic: {error['loc']} {error['msg']}" for error in exc.errors()]
    return [f"{issue.path or '<root>'}: {issue.message}" for issue in strict_issues(tp, data, path=path)]


def allowed_keys(tp: Any) -> frozenset[str]:
    """The wire keys an SDK model or TypedDict param knows."""
    is_model = isinstance(tp, type) and issubclass(tp, pydantic.BaseModel)
    return frozenset(_model_fields(tp) if is_model else _typeddict_fields(tp))


# --------------------------------------------------------------------------- the walk


def _check(tp: Any, data: Any, path: str) -> list[Issue]:
    tp = _unwrap(tp)
    origin = get_origin(tp)
    if tp is Any or tp is object:
        return []
    if tp is None or tp is type(None):
        return [] if data is None else [_invalid_type(path, "null", data)]
    if origin is Union or origin is types.UnionType:
        return _check_union(get_args(tp), data, path)
    if origin is Literal:
        allowed = get_args(tp)
        if any(data == value and type(data) is type(value) for value in allowed):
            return []
        supported = ", ".join(repr(value) for value in allowed)
        return [Issue("invalid_value", path, f"Invalid value: {data!r}. Supported values are: {supported}.")]
    if isinstance(tp, type) and issubclass(tp, pydantic.BaseModel):
        return _check_fields(_model_fields(tp), data, path)
    if _is_typeddict(tp):
        return _check_fields(_typeddict_fields(tp), data, path)
    if tp is str:
        return [] if isinstance(data, str) else [_invalid_type(path, "a string", data)]
    if tp is bool:
        return [] if isinstance(data, bool) else [_invalid_type(path, "a boolean", data)]
    if tp is int:
        ok = isinstance(data, int) and not isinstance(data, bool)
        return [] if ok else [_invalid_type(path, "an integer", data)]
    if tp is float:
        ok = isinstance(data, (int, float)) and not isinstance(data, bool)
        return [] if ok else [_invalid_type(path, "a number", data)]
    if origin in (dict, collections.abc.Mapping) or tp is dict:
        if not isinstance(data, dict):
            return [_invalid_type(path, "an object", data)]
        value_tp = get_args(tp)[1] if get_args(tp) else Any
        return [issue for key, value in data.items() for issue in _check(value_tp, value, f"{path}.{key}")]
    if _is_sequence(tp):
        if not isinstance(data, list):
            return [_invalid_type(path, "an array", data)]
        item_tp = get_args(tp)[0] if get_args(tp) else Any
        return [issue for i, item in enumerate(data) for issue in _check(item_tp, item, f"{path}[{i}]")]
    raise TypeError(f"sdk_strict: unsupported annotation {tp!r} at {path or '<root>'}")


def _check_union(alternatives: tuple[Any, ...], data: Any, path: str) -> list[Issue]:
    tagged = _type_literals(alternatives)
    if tagged and isinstance(data, dict) and data.get("type") not in tagged:
        # A tagged union (events, items, tools): name the tag, not the first alternative's issues.
        supported = ", ".join(repr(value) for value in tagged)
        type_path = _join(path, "type")
        return [
            Issue(
                "invalid_value",
                type_path,
                f"Invalid value: {data.get('type')!r}. Supported values are: {supported}.",
            )
        ]
    best: tuple[bool, int, list[Issue]] | None = None  # (type literal matches, -issue count, issues)
    for alternative in alternatives:
        issues = _check(alternative, data, path)
        if not issues:
            return []
        rank = (_type_matches(alternative, data), -len(issues), issues)
        if best is None or rank[:2] > best[:2]:
            best = rank
    return best[2] if best is not None else []


def _check_fields(fields: dict[str, tuple[Any, bool]], data: Any, path: str) -> list[Issue]:
    if not isinstance(data, dict):
        return [_invalid_type(path, "an object", data)]
    issues: list[Issue] = []
    for key, value in data.items():
        key_path = _join(path, key)
        if key not in fields:
            issues.append(Issue("unknown_parameter", key_path, f"Unknown parameter: '{key_path}'."))
            continue
        issues += _check(fields[key][0], value, key_path)
    for key, (_, required) in fields.items():
        if required and key not in data:
            key_path = _join(path, key)
            issues.append(
                Issue("missing_required_parameter", key_path, f"Missing required parameter: '{key_path}'.")
            )
    return issues


# --------------------------------------------------------------------------- type introspection


@functools.cache
def _model_fields(model: type[pydantic.BaseModel]) -> dict[str, tuple[Any, bool]]:
    """Wire name -> (annotation, required) of a pydantic model."""
    # field.annotation is already resolved by pydantic (get_type_hints trips on BaseModel's ClassVars).
    return {
        (field.alias or name): (field.annotation, field.is_required())
        for name, field in model.model_fields.items()
    }


@functools.cache
def _typeddict_fields(td: type) -> dict[str, tuple[Any, bool]]:
    """Wire name -> (annotation, required) of a TypedDict (``Required``/``NotRequired`` and total)."""
    fields: dict[str, tuple[Any, bool]] = {}
    for klass in reversed(td.__mro__):
        if not _is_typeddict(klass):
            continue
        hints = typing.get_type_hints(klass, include_extras=True)
        total = getattr(klass, "__total__", True)
        for name in inspect.get_annotations(klass):
            annotation = hints[name]
            required = total
            wire = name
            while True:
                origin = get_origin(annotation)
                if origin is Required:
                    required = True
                elif origin is NotRequired:
                    required = False
                elif origin is typing.Annotated:
                    wire = _alias(annotation) or wire
                else:
                    break
                annotation = get_args(annotation)[0]
            fields[wire] = (annotation, required)
    return fields


def _alias(annotated: Any) -> str | None:
    for meta in getattr(annotated, "__metadata__", ()):
        alias = getattr(meta, "alias", None)
        if isinstance(alias, str):
            return alias
    return None


def _unwrap(tp: Any) -> Any:
    """Strip Annotated, Required/NotRequired/ReadOnly and ``type X = ...`` aliases."""
    while True:
        origin = get_origin(tp)
        if origin is typing.Annotated or origin in (Required, NotRequired, typing_extensions.ReadOnly):
            tp = get_args(tp)[0]
        elif isinstance(tp, _ALIAS_TYPES):
            tp = tp.__value__
        else:
            return tp


def _is_typeddict(tp: Any) -> bool:
    # The SDK's params use typing_extensions.TypedDict, which typing.is_typeddict does not know.
    return isinstance(tp, type) and typing_extensions.is_typeddict(tp)


def _is_sequence(tp: Any) -> bool:
    origin = get_origin(tp) or tp
    if origin in (list, tuple, collections.abc.Sequence, collections.abc.Iterable, typing.Iterable):
        return True
    # openai._types.SequenceNotStr: a Protocol standing for "a list, not a str".
    return getattr(origin, "__name__", "") == "SequenceNotStr"


def _type_matches(alternative: Any, data: Any) -> bool:
    """Whether ``data['type']`` is the literal ``type`` of this model/TypedDict alternative."""
    alternative = _unwrap(alternative)
    if not isinstance(data, dict) or "type" not in data:
        return False
    if isinstance(alternative, type) and issubclass(alternative, pydantic.BaseModel):
        fields = _model_fields(alternative)
    elif _is_typeddict(alternative):
        fields = _typeddict_fields(alternative)
    else:
        return False
    type_tp = _unwrap(fields.get("type", (None, False))[0])
    return get_origin(type_tp) is Literal and data["type"] in get_args(type_tp)


def _type_literals(alternatives: tuple[Any, ...]) -> list[Any]:
    """Every ``type`` literal of a union whose alternatives are all models/TypedDicts with one; else []."""
    literals: list[Any] = []
    for alternative in alternatives:
        alternative = _unwrap(alternative)
        if isinstance(alternative, type) and issubclass(alternative, pydantic.BaseModel):
            fields = _model_fields(alternative)
        elif _is_typeddict(alternative):
            fields = _typeddict_fields(alternative)
        else:
            return []
        type_tp = _unwrap(fields.get("type", (None, False))[0])
        if get_origin(type_tp) is not Literal:
            return []
        literals += get_args(type_tp)
    return literals


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _invalid_type(path: str, expected: str, data: Any) -> Issue:
    got = {
        type(None): "null",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
    }.get(type(data), type(data).__name__)
    return Issue(
        "invalid_type", path, f"Invalid type for '{path}': expected {expected}, but got {got} instead."
    )


def _name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or repr(tp)
