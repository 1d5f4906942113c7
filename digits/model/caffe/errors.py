"""Errors raised while reading and compiling Caffe networks.

Every error carries the source position it refers to, so the web form can point the user at the
offending line instead of printing a stack trace.
"""

from __future__ import annotations


class CaffeError(ValueError):
    """Base class: a Caffe network text that cannot be used, with where in the text it went wrong."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        self.message = message
        self.line = line
        self.column = column
        super().__init__(self._describe())

    def _where(self) -> str:
        if self.line is None:
            return ""
        if self.column is None:
            return f"line {self.line}: "
        return f"line {self.line}, column {self.column}: "

    def _describe(self) -> str:
        return self._where() + self.message


class TextFormatError(CaffeError):
    """The prototxt is not valid protobuf text format (a syntax error)."""


class NetworkError(CaffeError):
    """The prototxt parses but does not describe a network we can build (schema, graph or shape problem)."""

    def __init__(
        self,
        message: str,
        *,
        layer: str | None = None,
        layer_type: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.layer = layer
        self.layer_type = layer_type
        super().__init__(message, line, column)

    def _describe(self) -> str:
        who = ""
        if self.layer is not None:
            who = f"layer '{self.layer}'" + (f" ({self.layer_type})" if self.layer_type else "") + ": "
        return self._where() + who + self.message


class SchemaError(NetworkError):
    """A field that caffe.proto does not define, or a value of the wrong kind, at `path` (e.g. layer.pooling_param)."""

    def __init__(
        self,
        message: str,
        *,
        field: str,
        path: str,
        layer: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.field = field
        self.path = path
        super().__init__(message, layer=layer, line=line, column=column)
