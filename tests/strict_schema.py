"""Strict checks of JSON values against the official ``openai`` SDK's types (test-only).

The SDK's models allow extra keys and its TypedDict params ignore them under pydantic, so a typo or a
field OpenAI does not know would pass plain validation. ``problems(value, annotation)`` walks the value
and the type together and lists every unknown key, missing required key and wrong type, with a path
(``session.audio.input.foo``). ``check_*`` first validate with pydantic (``TypeAdapter``) as the SDK
would, then strictly. Never imported by functions/ or shared/ (openai is a test-only dependency).
"""

from __future__ import annotations

import collections.abc
import functools
import types
import typing
from typing import Any

import pydantic
import typing_extensions

__all__ = ["allowed_keys", "check", "problems"]

_STR_SEQUENCES = (collections.abc.Sequence, collections.abc.Iterable, list, tuple)
_REQUIRED: tuple[Any, ...] = (typing.Required, typing_extensions.Required)
_NOT_REQUIRED: tuple[Any, ...] = (typing.NotRequired, typing_extensions.NotRequired)


def _is_typeddict(annotation: Any) -> bool:
    return isinstance(annotation, type) and typing_extensions.is_typeddict(annotation)


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel)


@functools.cache
def _fields(annotation: Any) -> tuple[dict[str, Any], frozenset[str]]:
    """(JSON key -> annotation, required JSON keys) of an SDK model or TypedDict param."""
    if _is_model(annotation):
        fields: dict[str, Any] = {}
        required: set[str] = set()
        for name, info in annotation.model_fields.items():
            key = info.alias or name
            fields[key] = info.annotation
            if info.is_required():
                required.add(key)
        return fields, frozenset(required)
    hints = typing_extensions.get_type_hints(annotation, include_extras=True)
    fields, required = {}, set()
    for key, hint in hints.items():
        origin = typing.get_origin(hint)
        if origin in _REQUIRED:
            required.add(key)
            hint = typing.get_args(hint)[0]
        elif origin in _NOT_REQUIRED:
            hint = typing.get_args(hint)[0]
        elif annotation.__total__:
            required.add(key)
        fields[key] = hint
    return fields, frozenset(required)


def allowed_keys(annotation: Any) -> frozenset[str]:
    """The JSON keys an SDK model or TypedDict param knows."""
    return frozenset(_fields(annotation)[0])


def problems(value: Any, annotation: Any, path: str = "") -> list[str]:
    """Every way ``value`` differs from ``annotation``, strictly (no unknown keys); [] when it fits."""
    where = path or "<root>"
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any or annotation is object:
        return []
    if origin is typing.Annotated or origin is typing_extensions.Annotated:
        return problems(value, args[0], path)
    if origin in (typing.Union, types.UnionType):
        return _union_problems(value, args, path)
    if origin is typing.Literal:
        return [] if value in args else [f"{where}: {value!r} is not one of {args!r}"]
    if annotation is type(None):
        return [] if value is None else [f"{where}: expected null"]
    if _is_model(annotation) or _is_typeddict(annotation):
        return _object_problems(value, annotation, path)
    if origin in (dict, collections.abc.Mapping) or annotation is dict:
        if not isinstance(value, dict):
            return [f"{where}: expected an object"]
        item = args[1] if args else Any
        return [p for key, sub in value.items() for p in problems(sub, item, f"{path}.{key}")]
    if origin in _STR_SEQUENCES or annotation in (list, tuple):
        if not isinstance(value, list):
            return [f"{where}: expected an array"]
        item = args[0] if args else Any
        return [p for index, sub in enumerate(value) for p in problems(sub, item, f"{path}[{index}]")]
    if annotation is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif annotation is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(annotation, type):
        ok = isinstance(value, annotation)
    else:
        return [f"{where}: no strict check for {annotation!r}"]
    return [] if ok else [f"{where}: expected {annotation.__name__}, got {type(value).__name__}"]


def _union_problems(value: Any, members: tuple[Any, ...], path: str) -> list[str]:
    # A discriminated union: only the members whose `type` literal matches count (clearer messages);
    # several may (the system, user and assistant `message` items).
    candidates = _members_named(value, members)
    if not candidates:  # Optional[X] with a value: report against X, not "expected null".
        candidates = [m for m in members if value is None or m is not type(None)] or list(members)
    attempts = [problems(value, member, path) for member in candidates]
    if any(not found for found in attempts):
        return []
    return min(attempts, key=len)


def _object_problems(value: Any, annotation: Any, path: str) -> list[str]:
    where = path or "<root>"
    if not isinstance(value, dict):
        return [f"{where}: expected an object ({annotation.__name__})"]
    fields, required = _fields(annotation)
    found = [f"{where}: missing required '{key}'" for key in sorted(required - value.keys())]
    for key, sub in value.items():
        sub_path = f"{path}.{key}" if path else key
        if key not in fields:
            found.append(f"{sub_path}: unknown key for {annotation.__name__}")
        else:
            found += problems(sub, fields[key], sub_path)
    return found


def _members_named(value: Any, members: tuple[Any, ...]) -> list[Any]:
    """The object members of a union whose ``type`` literal is ``value["type"]``."""
    if not isinstance(value, dict):
        return []
    named = []
    for member in members:
        if _is_model(member) or _is_typeddict(member):
            literal = _fields(member)[0].get("type")
            if typing.get_origin(literal) is typing.Literal and value.get("type") in typing.get_args(literal):
                named.append(member)
    return named


def _member(value: Any, annotation: Any) -> Any:
    """The one member of a union (maybe ``Annotated``) that ``value["type"]`` names, else ``annotation``."""
    inner = annotation
    if typing.get_origin(inner) in (typing.Annotated, typing_extensions.Annotated):
        inner = typing.get_args(inner)[0]
    if typing.get_origin(inner) not in (typing.Union, types.UnionType):
        return annotation
    named = _members_named(value, typing.get_args(inner))
    return named[0] if len(named) == 1 else annotation


def check(value: Any, annotation: Any, *, path: str = "") -> list[str]:
    """pydantic validation as the SDK does it, then the strict walk; every problem found.

    A union is first narrowed to the member ``value["type"]`` names, so that a problem is reported
    once, against the type that applies, rather than once per member of the union.
    """
    annotation = _member(value, annotation)
    try:
        pydantic.TypeAdapter(annotation).validate_python(value)
    except pydantic.ValidationError as exc:
        return [f"{path or '<root>'}: pydantic: {error['loc']} {error['msg']}" for error in exc.errors()]
    return problems(value, annotation, path)
