"""The building blocks of the Caffe schema: a field's kind, repetition and default, and shorthands for them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Field:
    """One field of a message: its kind ("int", "float", "bool", "str", "enum", "message"), repetition, default."""

    kind: str
    repeated: bool = False
    default: object = None
    enum: tuple[str, ...] = ()
    message: str = ""


def _int(default: int | None = None) -> Field:
    return Field("int", default=default)


def _float(default: float | None = None) -> Field:
    return Field("float", default=default)


def _bool(default: bool = False) -> Field:
    return Field("bool", default=default)


def _str(default: str | None = None) -> Field:
    return Field("str", default=default)


def _enum(names: str, default: str | None = None) -> Field:
    choices = tuple(names.split())
    return Field("enum", default=choices[0] if default is None else default, enum=choices)


def _enum_from_1(names: str) -> Field:
    """An enum whose values are numbered from 1 (no name has number 0; the first is the default)."""
    choices = tuple(names.split())
    return Field("enum", default=choices[0], enum=("", *choices))


def _msg(name: str) -> Field:
    return Field("message", message=name)


def _many(field: Field) -> Field:
    return Field(field.kind, True, None, field.enum, field.message)


_ENGINE = "DEFAULT CAFFE CUDNN"
_FILLERS = {"weight_filler": _msg("FillerParameter"), "bias_filler": _msg("FillerParameter")}
