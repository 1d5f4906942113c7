"""Protobuf text format (the .prototxt syntax) reader and writer, without protoc or a schema.

`parse` turns text into nested `Message`s: ordered `dict[str, list[value]]` where every field is a list
(so repeated fields need no schema) and values are str, int, float, bool, `Identifier` (an enum name such
as MAX, kept as a str subclass so a schema can tell it from a quoted string) or a nested Message.
Messages remember where each value came from, so later stages can report errors by line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Union

from digits.model.caffe.errors import TextFormatError

__all__ = ["Identifier", "Message", "TextFormatError", "format_message", "parse"]


class Identifier(str):
    """A bare word value (an enum name like MAX); compares equal to the plain str."""

    __slots__ = ()


Value = Union[str, int, float, bool, "Message"]


class Message(dict):
    """Fields in source order, each a list of values, plus the (line, column) of every value."""

    def __init__(self, line: int = 1, column: int = 1) -> None:
        super().__init__()
        self.line = line
        self.column = column
        self.positions: dict[str, list[tuple[int, int]]] = {}

    def add(self, name: str, value: Value, line: int = 0, column: int = 0) -> None:
        """Append a value to field `name`, remembering its position (0 for values built in code)."""
        self.setdefault(name, []).append(value)
        self.positions.setdefault(name, []).append((line, column))

    def first(self, name: str, default: object = None) -> object:
        """The first value of `name`, or `default` when the field is absent."""
        values = self.get(name)
        return values[0] if values else default

    def where(self, name: str, index: int = 0) -> tuple[int, int]:
        """(line, column) of a value, falling back to the message's own position."""
        spots = self.positions.get(name, [])
        if index < len(spots) and spots[index][0]:
            return spots[index]
        return self.line, self.column

    def copy_message(self) -> Message:
        """A deep copy that keeps positions (dict.copy would lose them and share nested messages)."""
        out = Message(self.line, self.column)
        for name, values in self.items():
            spots = self.positions.get(name, [])
            for i, value in enumerate(values):
                line, column = spots[i] if i < len(spots) else (0, 0)
                out.add(name, value.copy_message() if isinstance(value, Message) else value, line, column)
        return out


# --- tokenizer -------------------------------------------------------------------------------------

_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[fF]?")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SYMBOLS = "{}<>[]:;,-"
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}
_ESCAPES.update({c: c for c in "\\'\"?"})


@dataclass(frozen=True)
class _Token:
    kind: str  # "ident", "number", "string", "symbol" or "eof"
    text: str
    line: int
    column: int
    value: object = None


def _describe(token: _Token) -> str:
    if token.kind == "eof":
        return "end of file"
    if token.kind == "string":
        return "a string"
    return f"'{token.text}'"


def _tokens(text: str) -> Iterator[_Token]:
    line, line_start, i, n = 1, 0, 0, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            line, line_start, i = line + 1, i + 1, i + 1
        elif c in " \t\r\f\v":
            i += 1
        elif c == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif c in "\"'":
            value, end = _read_string(text, i, line, i - line_start + 1)
            yield _Token("string", text[i:end], line, i - line_start + 1, value)
            i = end
        elif c in "0123456789" or (c == "." and i + 1 < n and text[i + 1] in "0123456789"):
            match = _NUMBER.match(text, i)
            end = match.end()
            if end < n and (text[end].isalnum() or text[end] in "_."):
                bad = _IDENT.match(text, end)
                end = bad.end() if bad else end + 1
                raise TextFormatError(f"invalid number '{text[i:end]}'", line, i - line_start + 1)
            yield _Token("number", text[i:end], line, i - line_start + 1, _number(text[i:end]))
            i = end
        elif (c.isascii() and c.isalpha()) or c == "_":  # identifiers are ASCII, as in protobuf
            end = _IDENT.match(text, i).end()
            yield _Token("ident", text[i:end], line, i - line_start + 1)
            i = end
        elif c in _SYMBOLS:
            yield _Token("symbol", c, line, i - line_start + 1)
            i += 1
        else:
            raise TextFormatError(f"unexpected character {c!r}", line, i - line_start + 1)
    yield _Token("eof", "", line, n - line_start + 1)


def _number(text: str) -> int | float:
    if text[:2] in ("0x", "0X"):
        return int(text, 16)
    if text[-1] in "fF":
        return float(text[:-1])
    if any(c in text for c in ".eE"):
        return float(text)
    return int(text)


def _read_string(text: str, start: int, line: int, column: int) -> tuple[str, int]:
    """Decode a quoted string with C escapes; returns (value, index after the closing quote)."""
    quote, out, i = text[start], [], start + 1
    while i < len(text):
        c = text[i]
        if c == quote:
            return "".join(out), i + 1
        if c == "\n":
            break
        if c != "\\":
            out.append(c)
            i += 1
            continue
        esc = text[i + 1 : i + 2]
        if esc in _ESCAPES:
            out.append(_ESCAPES[esc])
            i += 2
        elif esc in ("x", "X") and re.match(r"[0-9a-fA-F]{1,2}", text[i + 2 : i + 4]):
            digits = re.match(r"[0-9a-fA-F]{1,2}", text[i + 2 : i + 4]).group()
            out.append(chr(int(digits, 16)))
            i += 2 + len(digits)
        elif esc.isdigit() and esc < "8":
            digits = re.match(r"[0-7]{1,3}", text[i + 1 : i + 4]).group()
            out.append(chr(int(digits, 8)))
            i += 1 + len(digits)
        else:
            raise TextFormatError(f"invalid escape '\\{esc}' in string", line, column + (i - start))
    raise TextFormatError("unterminated string", line, column)


# --- parser ----------------------------------------------------------------------------------------

_CLOSING = {"{": "}", "<": ">"}
# Real networks nest a handful of levels; protobuf itself stops at 100. The parser recurses per level, so an
# unbounded depth would end in RecursionError (a 500) instead of an error that names the line.
MAX_DEPTH = 100
_SPECIAL_FLOATS = {"inf": math.inf, "infinity": math.inf, "nan": math.nan}


class _Parser:
    def __init__(self, text: str) -> None:
        self._tokens = _tokens(text)
        self.token = next(self._tokens)
        self.depth = 0

    def advance(self) -> _Token:
        """The current token; the parser then moves on, except past the end (which stays the current token)."""
        token = self.token
        if token.kind != "eof":
            self.token = next(self._tokens)
        return token

    def fail(self, expected: str) -> TextFormatError:
        return TextFormatError(
            f"expected {expected} but found {_describe(self.token)}", self.token.line, self.token.column
        )

    def accept(self, symbol: str) -> bool:
        if self.token.kind == "symbol" and self.token.text == symbol:
            self.advance()
            return True
        return False

    def message(self, closing: str | None, line: int, column: int) -> Message:
        msg = Message(line, column)
        while not (self.token.kind == "eof" if closing is None else self.accept(closing)):
            if self.token.kind == "eof":
                raise self.fail(f"'{closing}'")
            if self.token.kind != "ident":
                raise self.fail("a field name" if closing is None else f"a field name or '{closing}'")
            self.field(msg)
        return msg

    def field(self, msg: Message) -> None:
        name = self.advance()
        if self.accept(":"):
            if self.accept("["):
                self.list_values(msg, name.text)
            else:
                self.value_or_message(msg, name)
        elif self.token.kind == "symbol" and self.token.text in _CLOSING:
            self.value_or_message(msg, name)
        else:
            raise self.fail(f"':' or '{{' after field '{name.text}'")
        if not self.accept(";"):
            self.accept(",")

    def list_values(self, msg: Message, name: str) -> None:
        if self.accept("]"):
            return
        while True:
            # Inside a list each element is its own position (the field name is shared).
            self.value_or_message(msg, _Token("ident", name, self.token.line, self.token.column))
            if self.accept("]"):
                return
            if not self.accept(","):
                raise self.fail("',' or ']'")

    def value_or_message(self, msg: Message, name: _Token) -> None:
        """Read a value or a nested message; both are recorded at the field name's position."""
        token = self.token
        if token.kind == "symbol" and token.text in _CLOSING:
            if self.depth >= MAX_DEPTH:
                raise TextFormatError(
                    f"'{name.text}' is nested more than {MAX_DEPTH} messages deep", token.line, token.column
                )
            self.advance()
            self.depth += 1
            msg.add(name.text, self.message(_CLOSING[token.text], name.line, name.column), name.line, name.column)
            self.depth -= 1
        else:
            msg.add(name.text, self.scalar(), name.line, name.column)

    def scalar(self) -> Value:
        token = self.advance()
        if token.kind == "string":
            parts = [token.value]
            while self.token.kind == "string":  # adjacent literals concatenate, as in C
                parts.append(self.advance().value)
            return "".join(parts)
        if token.kind == "number":
            return token.value
        if token.kind == "symbol" and token.text == "-":
            nxt = self.advance()
            if nxt.kind == "number":
                return -nxt.value
            if nxt.kind == "ident" and nxt.text.lower() in _SPECIAL_FLOATS:
                return -_SPECIAL_FLOATS[nxt.text.lower()]
            raise TextFormatError(f"expected a number after '-' but found {_describe(nxt)}", nxt.line, nxt.column)
        if token.kind == "ident":
            if token.text in ("true", "True"):
                return True
            if token.text in ("false", "False"):
                return False
            if token.text.lower() in _SPECIAL_FLOATS:
                return _SPECIAL_FLOATS[token.text.lower()]
            return Identifier(token.text)
        raise TextFormatError(f"expected a value but found {_describe(token)}", token.line, token.column)


def parse(text: str) -> Message:
    """Parse protobuf text format into a Message; raises TextFormatError with a 1-based line and column."""
    parser = _Parser(text)
    return parser.message(None, 1, 1)


# --- writer ----------------------------------------------------------------------------------------


def _format_scalar(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Identifier):
        return str(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
        escaped = "".join(c if c.isprintable() else f"\\{ord(c):03o}" for c in escaped)
        return f'"{escaped}"'
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    return str(value)


def format_message(msg: Message, indent: int = 0) -> str:
    """Write a Message back as text format, one field per line (the inverse of `parse`, minus comments)."""
    pad = "  " * indent
    lines = []
    for name, values in msg.items():
        for value in values:
            if isinstance(value, Message):
                lines.append(f"{pad}{name} {{\n{format_message(value, indent + 1)}{pad}}}\n")
            else:
                lines.append(f"{pad}{name}: {_format_scalar(value)}\n")
    return "".join(lines)
