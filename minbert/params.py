"""Typed, frozen access to `params.yaml`.

`params.yaml` is split by stage (`prepare:`, `balance:`, `augment:`, `train:` ...). Each stage
declares the shape of its own section as a frozen dataclass next to its code and loads it with
`load_section("balance", BalanceParams)`. A key that is missing from the YAML, or present in the
YAML but unknown to the dataclass, is an error that names the key (`balance.max_per_class`).

Nested dataclasses are filled recursively; lists become tuples so the result stays immutable.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")

DEFAULT_PATH = Path("params.yaml")


class ParamsError(ValueError):
    """A params.yaml problem: missing key, unknown key or wrong type."""


def read_yaml(path: str | Path = DEFAULT_PATH) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path}: params file not found (run from the project root)")
    with path.open(encoding="utf-8") as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: expected a mapping of stage sections at the top level")
    return data


def load_section(name: str, cls: type[T], path: str | Path = DEFAULT_PATH) -> T:
    """Load section `name` of params.yaml into the frozen dataclass `cls`."""
    data = read_yaml(path)
    if name not in data:
        raise ParamsError(f"{path}: missing section '{name}'")
    return from_dict(cls, data[name], where=name)


def from_dict(cls: type[T], data: Any, where: str) -> T:
    """Build dataclass `cls` from mapping `data`; `where` is the dotted key path for errors."""
    if not isinstance(data, dict):
        raise ParamsError(f"'{where}' must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ParamsError(f"unknown key '{where}.{unknown[0]}' (known: {', '.join(fields)})")
    values = {}
    for name, field in fields.items():
        key = f"{where}.{name}"
        if name not in data:
            has_default = (
                field.default is not dataclasses.MISSING
                or field.default_factory is not dataclasses.MISSING
            )
            if has_default:
                continue
            raise ParamsError(f"missing key '{key}'")
        values[name] = _coerce(hints[name], data[name], key)
    return cls(**values)


def _coerce(tp: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(arg, value, key)
            except ParamsError as e:
                errors.append(str(e))
        raise ParamsError(errors[0] if errors else f"'{key}': bad value {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise ParamsError(f"'{key}' must be one of {list(args)}, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ParamsError(f"'{key}' must be a list, got {value!r}")
        item = args[0] if args else Any
        return tuple(_coerce(item, v, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ParamsError(f"'{key}' must be a mapping, got {value!r}")
        kt, vt = args if args else (Any, Any)
        return types.MappingProxyType(
            {_coerce(kt, k, key): _coerce(vt, v, f"{key}.{k}") for k, v in value.items()}
        )
    return _scalar(tp, value, key)


def _scalar(tp: Any, value: Any, key: str) -> Any:
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ParamsError(f"'{key}' must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamsError(f"'{key}' must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamsError(f"'{key}' must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ParamsError(f"'{key}' must be a string, got {value!r}")
        return value
    if tp is type(None):
        if value is not None:
            raise ParamsError(f"'{key}' must be null, got {value!r}")
        return None
    return value
