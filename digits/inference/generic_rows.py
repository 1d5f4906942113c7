"""Rows of features for a generic model's predict requests, read in the web process (torch-free, Flask-free):
one row from a form (a field per feature) or a pasted CSV line, many from a CSV whose header names the features.
A bad cell is named by line and column; the other rows are still answered."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from typing import Any

MAX_ROWS = 100_000


class RowsRefused(Exception):
    """Input that gives no rows at all (no header, a feature missing from it); the message says why."""


@dataclass
class ReadRows:
    rows: list[list[float]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # the CSV line of each row (the header is line 1)
    errors: list[dict[str, Any]] = field(default_factory=list)  # {"line", "column", "message"}


def number(text: str) -> float | None:
    """A cell as a finite number, or None."""
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_row_text(text: str, features: list[str]) -> tuple[list[float] | None, str | None]:
    """A pasted CSV row of the features in order: (values, None) or (None, why, naming the column)."""
    cells = next(csv.reader([text.strip()]), [])
    if len(cells) != len(features):
        return None, f"expected {len(features)} comma-separated values ({', '.join(features)}), got {len(cells)}"
    values = []
    for name, cell in zip(features, cells, strict=True):
        value = number(cell)
        if value is None:
            return None, f"column {name}: {cell.strip()[:40]!r} is not a number"
        values.append(value)
    return values, None


def read_csv(data: bytes, features: list[str], max_rows: int = MAX_ROWS) -> ReadRows:
    """Rows of a CSV whose header names every feature (in any order; other columns, such as the label, are
    left out). RowsRefused when it cannot be read at all."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise RowsRefused(f"the file is not UTF-8 text ({e.reason} at byte {e.start})") from None
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        raise RowsRefused("the file is empty: it needs a header row naming the features")
    header = [h.strip() for h in header]
    missing = [f for f in features if f not in header]
    if missing:
        raise RowsRefused(
            f"the header has no column {missing[0]!r} (the model's features: {', '.join(features)}; "
            f"the header: {', '.join(header)[:300]})"
        )
    where = [header.index(f) for f in features]
    out = ReadRows()
    for cells in reader:
        line = reader.line_num
        if not cells or all(not c.strip() for c in cells):
            continue
        if len(out.rows) + len(out.errors) >= max_rows:
            raise RowsRefused(f"more than {max_rows:,} rows: split the file")
        if len(cells) != len(header):
            out.errors.append(
                {"line": line, "column": None, "message": f"{len(cells)} cells where the header has {len(header)}"}
            )
            continue
        values = []
        for name, index in zip(features, where, strict=True):
            value = number(cells[index])
            if value is None:
                message = f"{cells[index].strip()[:40]!r} is not a number"
                out.errors.append({"line": line, "column": name, "message": message})
                break
            values.append(value)
        else:
            out.rows.append(values)
            out.lines.append(line)
    return out


def csv_answers(features: list[str], problem: str, rows: ReadRows, answers: list[dict[str, Any]]) -> str:
    """The answers as CSV: line, the features, then the predicted class and its percent (or the predicted value);
    rows that could not be read keep their line with the reason. Cells a spreadsheet would run are quoted off."""
    out = io.StringIO()
    writer = csv.writer(out)
    tail = ["predicted", "percent"] if problem == "classification" else ["predicted"]
    writer.writerow(["line", *map(safe_cell, features), *tail, "error"])
    for line, row, answer in zip(rows.lines, rows.rows, answers, strict=True):
        if problem == "classification":
            best = answer["predictions"][0]
            result = [safe_cell(best[0]), best[1]]
        else:
            result = [answer["prediction"]]
        writer.writerow([line, *row, *result, ""])
    for error in rows.errors:
        where = f"column {error['column']}: " if error.get("column") else ""
        writer.writerow([error["line"], *[""] * len(features), *[""] * len(tail), safe_cell(where + error["message"])])
    return out.getvalue()


def safe_cell(text: Any) -> str:
    """A text cell a spreadsheet shows as text, never runs as a formula."""
    text = str(text)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
