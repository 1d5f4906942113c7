"""PyTorch networks written as Python source: the standard ones shipped as files, and people's own edits.

A network file defines `build_model(*, num_classes, channels, height, width)` and, optionally, the settings
BATCH_SIZE, INPUT_SCALE and CROP_SIZE. `check_syntax` is for the web process: it only compiles (no torch,
nothing executed). `load_network_source` and `build_from_source` run the text and belong in the worker.
"""

from __future__ import annotations

import itertools
import linecache
import os
import sys
import traceback
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

STANDARD_TORCH_NETWORKS = ("lenet", "alexnet", "googlenet", "resnet18", "resnet50")
NETWORKS_DIR = os.path.join(os.path.dirname(__file__), "networks", "torch")
BUILDER = "build_model"
_module_ids = itertools.count(1)


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


def standard_network_path(name: str) -> str:
    """The path of a standard network's source file (lenet, alexnet, googlenet, resnet18, resnet50)."""
    if name not in STANDARD_TORCH_NETWORKS:
        raise ValueError(f"no standard PyTorch network {name!r} (known: {', '.join(STANDARD_TORCH_NETWORKS)})")
    return os.path.join(NETWORKS_DIR, f"{name}.py")


def check_syntax(text: str, filename: str = "network.py") -> NetworkSourceError | None:
    """The first syntax error in `text`, or a missing build_model, without importing torch or running anything."""
    try:
        tree = compile(text, filename, "exec", flags=_ONLY_AST, dont_inherit=True)
        # Some errors ('return' outside a function, misplaced nonlocal) only the bytecode compiler finds.
        compile(tree, filename, "exec", dont_inherit=True)
    except SyntaxError as e:
        return _syntax_error(e)
    except (ValueError, RecursionError, MemoryError) as e:  # null bytes (Python 3.11), absurd nesting
        return NetworkSourceError(f"the source cannot be compiled: {e}")
    if not _defines_builder(tree.body):
        return _missing_builder()
    return None


def load_network_source(text: str, filename: str = "network.py") -> types.ModuleType:
    """Compile and run `text` as a fresh module; problems become NetworkSourceError with the line they are on."""
    try:
        code = compile(text, filename, "exec", dont_inherit=True)
    except SyntaxError as e:
        raise _syntax_error(e) from None
    except (ValueError, RecursionError, MemoryError) as e:
        raise NetworkSourceError(f"the source cannot be compiled: {e}") from None
    # Tracebacks from the worker then show the person's own lines.
    linecache.cache[filename] = (len(text), None, text.splitlines(keepends=True), filename)
    name = f"digits_network_{next(_module_ids)}"
    module = types.ModuleType(name)
    module.__file__ = filename
    # Registered only while it runs: dataclasses and typing look their module up in sys.modules.
    sys.modules[name] = module
    try:
        exec(code, module.__dict__)
    except Exception as e:
        raise _runtime_error(e, filename) from e
    finally:
        sys.modules.pop(name, None)
    if not callable(getattr(module, BUILDER, None)):
        raise _missing_builder()
    return module


def build_from_source(
    text: str, *, num_classes: int, channels: int, height: int, width: int, filename: str = "network.py"
) -> tuple[nn.Module, dict[str, Any]]:
    """Run a network's source and build it; returns (model, {"batch_size", "input_scale", "crop_size"})."""
    from torch import nn

    module = load_network_source(text, filename)
    try:
        model = module.build_model(num_classes=num_classes, channels=channels, height=height, width=width)
    except Exception as e:
        raise _runtime_error(e, filename) from e
    if not isinstance(model, nn.Module):
        raise NetworkSourceError(f"{BUILDER}() must return a torch.nn.Module (it returned {type(model).__name__})")
    return model, network_settings(module)


def network_settings(module: types.ModuleType) -> dict[str, Any]:
    """BATCH_SIZE, INPUT_SCALE and CROP_SIZE of a loaded network, checked, with defaults None / 1.0 / None."""
    batch_size = getattr(module, "BATCH_SIZE", None)
    input_scale = getattr(module, "INPUT_SCALE", 1.0)
    crop_size = getattr(module, "CROP_SIZE", None)
    for name, value in (("BATCH_SIZE", batch_size), ("CROP_SIZE", crop_size)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise NetworkSourceError(f"{name} must be a positive integer or None (got {value!r})")
    if isinstance(input_scale, bool) or not isinstance(input_scale, int | float) or not input_scale > 0:
        raise NetworkSourceError(f"INPUT_SCALE must be a positive number (got {input_scale!r})")
    return {"batch_size": batch_size, "input_scale": float(input_scale), "crop_size": crop_size}


# ast.PyCF_ONLY_AST, spelled out so this module does not import ast for one constant.
_ONLY_AST = 0x400


def _syntax_error(e: SyntaxError) -> NetworkSourceError:
    return NetworkSourceError(e.msg, e.lineno, e.offset)


def _missing_builder() -> NetworkSourceError:
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


def _runtime_error(e: Exception, filename: str) -> NetworkSourceError:
    if isinstance(e, NetworkSourceError):
        return e
    line = None
    for frame in traceback.extract_tb(e.__traceback__):
        if frame.filename == filename:
            line = frame.lineno  # the innermost line of the person's own file
    return NetworkSourceError(f"{type(e).__name__}: {e}", line)
