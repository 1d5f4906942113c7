"""Reading a generic dataset's source: a CSV with a header row, or NumPy's .npy / .npz (torch-free).

Every problem is a GenericSourceError whose message names the file, and for a CSV the line and column, so a
person can find the cell.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass

import numpy as np

# .npz array names tried in order for the features and the labels (or targets) when the form names none.
FEATURE_KEYS = ("features", "x", "X", "data")
LABEL_KEYS = ("labels", "targets", "y", "Y", "target", "label")
MAX_CLASSES = 10_000


class GenericSourceError(ValueError):
    """A source file that cannot be read as a generic dataset; the message names the file, line and column."""


@dataclass
class Table:
    """A source read: float32 features, the target column's raw values (strings or numbers), and names."""

    features: np.ndarray
    targets: list | np.ndarray
    feature_names: list[str]
    target_name: str
    lines: list[int] | None = None  # a CSV's line number of each row

    def where(self, row: int) -> str:
        """How a message names a row: its line in a CSV, its index in a NumPy array."""
        return f"line {self.lines[row]}" if self.lines is not None else f"row {row}"


def _number(cell: str) -> float | None:
    try:
        value = float(cell)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def read_csv(path: str, target: str | None, shown: str) -> Table:
    """A CSV with a header row: `target` names the label/target column (None: the last one), every other column
    is a numeric feature. `shown` is the file's name in messages."""
    try:
        fh = open(path, newline="", encoding="utf-8-sig")
    except OSError as e:
        raise GenericSourceError(f"{shown}: cannot be read ({e.strerror or e})") from None
    with fh:
        reader = csv.reader(fh)
        try:
            header = next(reader, None)
            if header is None or not any(h.strip() for h in header):
                raise GenericSourceError(f"{shown}: the file is empty; line 1 must name the columns")
            names = [h.strip() for h in header]
            blank = [i + 1 for i, n in enumerate(names) if not n]
            if blank:
                raise GenericSourceError(f"{shown}, line 1: column {blank[0]} has no name")
            if len(set(names)) != len(names):
                twice = next(n for n in names if names.count(n) > 1)
                raise GenericSourceError(f"{shown}, line 1: column {twice!r} is named twice")
            if len(names) < 2:
                raise GenericSourceError(
                    f"{shown}, line 1: a generic dataset needs a target column and at least one feature column"
                )
            wanted = target or names[-1]
            if wanted not in names:
                raise GenericSourceError(
                    f"{shown}, line 1: no column named {wanted!r} (columns: {', '.join(names[:20])}"
                    f"{', ...' if len(names) > 20 else ''})"
                )
            t = names.index(wanted)
            rows: list[list[float]] = []
            targets: list[str] = []
            lines: list[int] = []
            for row in reader:
                line = reader.line_num
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) != len(names):
                    raise GenericSourceError(
                        f"{shown}, line {line}: {len(row)} cells, but the header names {len(names)} columns"
                    )
                values = []
                for i, cell in enumerate(row):
                    if i == t:
                        continue
                    value = _number(cell.strip())
                    if value is None:
                        raise GenericSourceError(
                            f"{shown}, line {line}, column {names[i]!r}: {cell.strip()[:40]!r} is not a number"
                        )
                    values.append(value)
                rows.append(values)
                targets.append(row[t].strip())
                lines.append(line)
        except csv.Error as e:
            raise GenericSourceError(f"{shown}, line {reader.line_num}: not a readable CSV ({e})") from None
        except UnicodeDecodeError:
            raise GenericSourceError(f"{shown}: not a UTF-8 text file") from None
    if not rows:
        raise GenericSourceError(f"{shown}: no rows after the header")
    features = np.asarray(rows, dtype=np.float32)
    return Table(features, targets, [n for i, n in enumerate(names) if i != t], wanted, lines)


def _npz_array(archive, names: list[str], wanted: str | None, keys: tuple[str, ...], what: str, shown: str):
    if wanted:
        if wanted not in names:
            raise GenericSourceError(f"{shown}: no array named {wanted!r} (arrays: {', '.join(names)})")
        return wanted
    for key in keys:
        if key in names:
            return key
    raise GenericSourceError(
        f"{shown}: which array holds the {what}? Name it {' or '.join(repr(k) for k in keys[:2])} "
        f"(arrays: {', '.join(names) or 'none'})"
    )


def read_numpy(path: str, shown: str, features_key: str | None = None, labels_key: str | None = None) -> Table:
    """A .npz with a features array (rows x features) and a labels/targets array (rows), or a 2-D .npy whose
    last column is the label or target. Never unpickles (allow_pickle=False)."""
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise GenericSourceError(f"{shown}: not a NumPy .npy or .npz file ({e})") from None
    if isinstance(loaded, np.ndarray):
        if loaded.ndim != 2 or loaded.shape[1] < 2:
            raise GenericSourceError(
                f"{shown}: a .npy must be a 2-D array of rows x columns whose last column is the target "
                f"(this one is {'x'.join(map(str, loaded.shape)) or 'a scalar'})"
            )
        x, y = loaded[:, :-1], loaded[:, -1]
        names = [f"f{i}" for i in range(x.shape[1])]
        target_name = "target"
    else:
        with loaded:
            names_in = list(loaded.files)
            fk = _npz_array(loaded, names_in, features_key, FEATURE_KEYS, "features", shown)
            lk = _npz_array(loaded, names_in, labels_key, LABEL_KEYS, "labels or targets", shown)
            try:
                x, y = loaded[fk], loaded[lk]
            except ValueError as e:  # an object array needs pickle: refused
                raise GenericSourceError(f"{shown}: {e}") from None
        if x.ndim == 1:
            x = x[:, None]
        if x.ndim != 2:
            raise GenericSourceError(
                f"{shown}: array {fk!r} must be rows x features (it is {'x'.join(map(str, x.shape))})"
            )
        y = np.squeeze(y)
        if y.ndim != 1 or len(y) != len(x):
            raise GenericSourceError(
                f"{shown}: array {lk!r} must hold one value per row of {fk!r} ({len(x)} rows; it is "
                f"{'x'.join(map(str, y.shape))})"
            )
        names = [f"f{i}" for i in range(x.shape[1])]
        target_name = lk
    if not len(x):
        raise GenericSourceError(f"{shown}: no rows")
    if x.dtype.kind not in "biuf":
        raise GenericSourceError(f"{shown}: the features must be numbers (their dtype is {x.dtype})")
    x = x.astype(np.float32)
    bad = np.argwhere(~np.isfinite(x))
    if len(bad):
        row, col = (int(v) for v in bad[0])
        raise GenericSourceError(f"{shown}: row {row}, column {col} is not a finite number ({x[row, col]})")
    if y.dtype.kind not in "biufUS":
        raise GenericSourceError(f"{shown}: the labels must be numbers or strings (their dtype is {y.dtype})")
    return Table(x, y, names, target_name)


def read_source(path: str, shown: str, target: str | None, features_key: str | None, labels_key: str | None) -> Table:
    """A CSV, .npy or .npz, told apart by the file name's extension."""
    ext = os.path.splitext(shown)[1].lower()
    if ext in (".npy", ".npz"):
        return read_numpy(path, shown, features_key, labels_key)
    return read_csv(path, target, shown)


def _sort_key(name: str):
    number = _number(name)
    return (0, number, "") if number is not None else (1, 0.0, name)


def class_names(values, shown: str) -> list[str]:
    """The classes of a label column, sorted (numerically when every one is a number)."""
    names = sorted({_label_text(v) for v in values}, key=_sort_key)
    if len(names) < 2:
        raise GenericSourceError(f"{shown}: the label column has {len(names)} class; classification needs at least 2")
    if len(names) > MAX_CLASSES:
        raise GenericSourceError(f"{shown}: the label column has {len(names):,} classes (at most {MAX_CLASSES:,})")
    return names


def _label_text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def label_indices(table: Table, names: list[str], shown: str) -> np.ndarray:
    """Each row's class index; a class the training data lacks is refused with its line (or row)."""
    index = {n: i for i, n in enumerate(names)}
    out = np.empty(len(table.targets), dtype=np.int64)
    for row, value in enumerate(table.targets):
        text = _label_text(value)
        if text not in index:
            raise GenericSourceError(
                f"{shown}, {table.where(row)}, column {table.target_name!r}: class {text[:40]!r} is not one of the "
                "training data's classes"
            )
        out[row] = index[text]
    return out


def numeric_targets(table: Table, shown: str) -> np.ndarray:
    """A regression target column as float32; the first cell that is no number is named by line and column."""
    out = np.empty(len(table.targets), dtype=np.float32)
    for row, value in enumerate(table.targets):
        number = _number(value.decode() if isinstance(value, bytes) else str(value))
        if number is None:
            raise GenericSourceError(
                f"{shown}, {table.where(row)}, column {table.target_name!r}: {str(value)[:40]!r} is not a number "
                "(a regression target must be)"
            )
        out[row] = number
    return out
