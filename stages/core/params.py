"""Typed, validated access to one section of params.yaml.

Each params class is a frozen dataclass; a field's range is declared once, beside it, as
pydantic constraints: `Annotated[int, Field(ge=1)]`. Loading checks everything (keys, types,
ranges; every float must be finite) and a class can check relations between its fields in
`__post_init__` by raising ParamError: a stage never checks a param again afterwards.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import math
import types
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import yaml
from pydantic import TypeAdapter, ValidationError

from stages.core.cli import UserError, read_input

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")
V = TypeVar("V")

DEFAULT_PARAMS = "params.yaml"


class ParamError(ValueError):
    """Raised by a params class's __post_init__ for a relation between fields; `key` is the
    field the message is about (the loader prefixes file and section)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def read_yaml(path: Path) -> dict[str, Any]:
    raw = read_input(path, "a params file", "file not found; run from the repository root")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(
            f"{path}: not valid UTF-8 at byte offset {exc.start}; save it as UTF-8"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UserError(f"{path}: not valid YAML{where}; fix the syntax") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of sections at the top level")
    return data


def load_section(cls: type[T], section: str, path: Path | str = DEFAULT_PARAMS) -> T:
    """Read `section` of params.yaml into the frozen dataclass `cls`, checking keys, types
    and the ranges declared on its fields."""
    path = Path(path)
    data = read_yaml(path)
    raw = data.get(section)
    if not isinstance(raw, dict):
        raise UserError(f"{path}: section '{section}' is missing or not a mapping; add it")
    return from_mapping(cls, raw, f"{path}: key '{section}", str(path))


def load_key(kind: Any, section: str, key: str, path: Path | str = DEFAULT_PARAMS) -> Any:
    """One value of another stage's section (e.g. prepare reads collect.release_date_lte, the
    snapshot date, which is declared once), checked like a section's field. `kind` is a type,
    or the section's params class: then the field's own declaration (range included) applies."""
    path = Path(path)
    raw = read_yaml(path).get(section)
    if not isinstance(raw, dict) or key not in raw:
        raise UserError(f"{path}: key '{section}.{key}' is missing; add it")
    hint = _hints(kind)[key] if isinstance(kind, type) and dataclasses.is_dataclass(kind) else kind
    return _check(raw[key], hint, f"{path}: key '{section}.{key}'")


@functools.cache
def _hints(cls: Any) -> dict[str, Any]:
    return typing.get_type_hints(cls, include_extras=True)


def from_mapping(cls: type[T], raw: dict[str, Any], where: str, path: str) -> T:
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise UserError(
            f"{where}.{unknown[0]}' is not a known parameter; "
            f"remove it or use one of: {', '.join(sorted(fields))}"
        )
    values: dict[str, Any] = {}
    for name, field in fields.items():
        if name not in raw:
            has_default = (
                field.default is not dataclasses.MISSING
                or field.default_factory is not dataclasses.MISSING
            )
            if has_default:
                continue
            raise UserError(f"{where}.{name}' is missing; add it to {path}")
        values[name] = _check(raw[name], hints[name], f"{where}.{name}'")
    try:
        return cls(**values)
    except ParamError as exc:
        raise UserError(f"{where}.{exc.key}' {exc}; fix it") from None


def _check(value: Any, hint: Any, where: str) -> Any:
    """The value coerced to the field's type, then checked against its declared range."""
    if typing.get_origin(hint) is Annotated:
        coerced = _coerce(value, hint.__origin__, where)
        try:
            _adapter(hint).validate_python(coerced)
        except ValidationError as exc:
            msg = exc.errors(include_url=False)[0]["msg"]
            msg = msg.replace("Input should be", "must be").replace("Value error, ", "")
            raise UserError(f"{where} {msg}, got {coerced!r}; fix it") from None
        return coerced
    return _coerce(value, hint, where)


@functools.cache
def _adapter(hint: Any) -> TypeAdapter[Any]:
    return TypeAdapter(hint)


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is Annotated:
        return _check(value, hint, where)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], where)
    if origin is typing.Literal:
        if value not in args:
            allowed = ", ".join(repr(a) for a in args)
            raise UserError(f"{where} is {value!r}; use one of {allowed}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, list):
            raise UserError(f"{where} must be a list, got {value!r}")
        return tuple(_coerce(v, args[0], where) for v in value)
    if hint is bool:
        if not isinstance(value, bool):
            raise UserError(f"{where} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise UserError(f"{where} must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise UserError(f"{where} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise UserError(f"{where} must be a finite number, got {value!r}; fix it")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise UserError(f"{where} must be a string, got {value!r}")
        return value
    if hint is dt.date:
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                pass
        raise UserError(f"{where} must be a date YYYY-MM-DD, got {value!r}")
    raise TypeError(f"unsupported parameter type {hint!r}")  # a programming error, not a user's
