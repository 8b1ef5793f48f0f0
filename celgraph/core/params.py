"""Typed node parameters: default, range, choices, help — and how a raw scene value is checked.

A param's `check` turns a raw JSON value into its normalised form or raises `ParamError` with a
stable code (`param_type` or `param_out_of_range`). Normalised values enter the cache key.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


class ParamError(ValueError):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Param:
    name: str
    default: Any = None
    help: str = ""
    # False for params that do not change the result (a file path whose content is fingerprinted,
    # a worker count): they are left out of the cache key.
    hashed: bool = True
    kind: str = field(default="any", init=False)

    def check(self, value: Any) -> Any:
        return value

    def describe(self) -> dict:
        d = {"name": self.name, "kind": self.kind, "default": self.default, "help": self.help}
        for extra in ("min", "max", "choices", "file"):
            if hasattr(self, extra) and getattr(self, extra) is not None:
                v = getattr(self, extra)
                d[extra] = list(v) if isinstance(v, tuple) else v
        return d


def _range(p, v):
    if p.min is not None and v < p.min:
        raise ParamError("param_out_of_range", f"{p.name}={v} is below the minimum {p.min}")
    if p.max is not None and v > p.max:
        raise ParamError("param_out_of_range", f"{p.name}={v} is above the maximum {p.max}")
    return v


@dataclass(frozen=True)
class Int(Param):
    min: int | None = None
    max: int | None = None
    kind: str = field(default="int", init=False)

    def check(self, value):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                isinstance(value, float) and not value.is_integer()):
            raise ParamError("param_type", f"{self.name} must be an integer, got {value!r}")
        return _range(self, int(value))


@dataclass(frozen=True)
class Float(Param):
    min: float | None = None
    max: float | None = None
    kind: str = field(default="float", init=False)

    def check(self, value):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ParamError("param_type", f"{self.name} must be a finite number, got {value!r}")
        return _range(self, float(value))


@dataclass(frozen=True)
class Bool(Param):
    kind: str = field(default="bool", init=False)

    def check(self, value):
        if not isinstance(value, bool):
            raise ParamError("param_type", f"{self.name} must be true or false, got {value!r}")
        return value


@dataclass(frozen=True)
class String(Param):
    kind: str = field(default="string", init=False)

    def check(self, value):
        if not isinstance(value, str):
            raise ParamError("param_type", f"{self.name} must be a string, got {value!r}")
        return value


@dataclass(frozen=True)
class PathParam(String):
    """A file path (or frame pattern), resolved against the scene file's folder.

    file: "in" for files the node reads (checked for existence by the node's validate hook),
    "out" for files it writes.
    """
    file: str = "in"
    kind: str = field(default="path", init=False)


@dataclass(frozen=True)
class Choice(Param):
    choices: tuple = ()
    kind: str = field(default="choice", init=False)

    def check(self, value):
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            raise ParamError("param_type", f"{self.name} must be one of {list(self.choices)}, got {value!r}")
        if value not in self.choices:
            raise ParamError("param_out_of_range",
                             f"{self.name}={value!r} is not one of {list(self.choices)}")
        return value


@dataclass(frozen=True)
class IntList(Param):
    """A list of integers, e.g. frame offsets."""
    min: int | None = None
    max: int | None = None
    kind: str = field(default="int_list", init=False)

    def check(self, value):
        if not isinstance(value, (list, tuple)) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise ParamError("param_type", f"{self.name} must be a list of integers, got {value!r}")
        return [_range(self, v) for v in value]
