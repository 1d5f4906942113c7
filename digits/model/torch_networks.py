"""PyTorch networks written as Python source, checked without running them (torch-free, for the web process).

A network file defines `build_model(*, num_classes, channels, height, width)` and, optionally, the settings
BATCH_SIZE, INPUT_SCALE and CROP_SIZE. `check_syntax` only compiles it; running it (and checking what it
builds) is the training and inference workers' job: digits.engine.networks.
"""

from __future__ import annotations

from typing import Any

BUILDER = "build_model"


class NetworkSourceError(Exception):
    """A problem in network source, with a 1-based line and column where one is known."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message, line, column)
        self.message = message
        self.line = line
        self.column = column

    def __str__(self) -> str:
        if self.line is None:
            return self.message
        where = f"line {self.line}" + (f", column {self.column}" if self.column is not None else "")
        return f"{where}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"message": self.message, "line": self.line, "column": self.column}


def check_syntax(text: str, filename: str = "network.py") -> NetworkSourceError | None:
    """The first syntax error in `text`, or a missing build_model, without importing torch or running anything."""
    try:
        tree = compile(text, filename, "exec", flags=_ONLY_AST, dont_inherit=True)
        # Some errors ('return' outside a function, misplaced nonlocal) only the bytecode compiler finds.
        compile(tree, filename, "exec", dont_inherit=True)
    except SyntaxError as e:
        return syntax_error(e)
    except (ValueError, RecursionError, MemoryError) as e:  # null bytes (Python 3.11), absurd nesting
        return NetworkSourceError(f"the source cannot be compiled: {e}")
    if not _defines_builder(tree.body):
        return missing_builder()
    return None


# ast.PyCF_ONLY_AST, spelled out so this module does not import ast for one constant.
_ONLY_AST = 0x400


def syntax_error(e: SyntaxError) -> NetworkSourceError:
    return NetworkSourceError(e.msg, e.lineno, e.offset)


def missing_builder() -> NetworkSourceError:
    return NetworkSourceError(
        f"the network must define {BUILDER}(*, num_classes, channels, height, width) returning a torch.nn.Module"
    )


def _defines_builder(statements: list[Any]) -> bool:
    # Top-level statements only, looking into if/try/with blocks, since the worker calls module.build_model.
    for node in statements:
        kind = type(node).__name__
        if kind in ("FunctionDef", "AsyncFunctionDef", "ClassDef") and node.name == BUILDER:
            return True
        if kind in ("Import", "ImportFrom") and any((a.asname or a.name) == BUILDER for a in node.names):
            return True
        if kind in ("Assign", "AnnAssign", "AugAssign"):
            targets = node.targets if kind == "Assign" else [node.target]
            if any(type(t).__name__ == "Name" and t.id == BUILDER for t in targets):
                return True
        for block in ("body", "orelse", "finalbody", "handlers"):
            if kind not in ("FunctionDef", "AsyncFunctionDef", "ClassDef") and _defines_builder(
                getattr(node, block, [])
            ):
                return True
    return False
