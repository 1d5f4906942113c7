"""Classification results kept in the model's folder, so their pages, paging, exports and Grad-CAM work after
the POST that made them (torch-free, Flask-free).

    results/<kind>-<16 hex>/      one run: kind is one (classify one), many (classify many) or topn
        result.json               what the page shows; for `many` also the JSON twin's answer ("answer")
        thumbs.bin                classify many: every image's thumbnail, PNG or JPEG bytes one after another
        confusion.png             classify many with labels: the confusion matrix
        input.png                 classify one: the image as the dataset stores it (for Grad-CAM of another layer)

Who may read a run is who may read the model (the model page's rule: anyone signed in on the server); a run's
name is random, so one run cannot be guessed from another. The newest runs of each kind are kept.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import secrets
import shutil
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from digits.folders.model import RESULTS_DIR

KINDS = ("one", "many", "topn")
KEEP = {"one": 20, "many": 10, "topn": 10}
RUN_RE = re.compile(r"^(one|many|topn)-[0-9a-f]{16}$")
RESULT_FILE = "result.json"
THUMBS_FILE = "thumbs.bin"
CONFUSION_FILE = "confusion.png"
INPUT_FILE = "input.png"
PER_PAGE = (25, 50, 100, 200)
SORT_KEYS = ("line", "path", "truth", "predicted", "confidence")
OUTCOMES = ("all", "right", "wrong")
CACHED_RUNS = 4


class RunMissing(Exception):
    """No such run (a bad name, or one that was pruned)."""


def run_dir(job_dir: str, run_id: str) -> str:
    """The folder of a run; RunMissing for a name that is not a run's."""
    if not RUN_RE.match(run_id or ""):
        raise RunMissing(run_id)
    return os.path.join(job_dir, RESULTS_DIR, run_id)


def new_run(job_dir: str, kind: str) -> tuple[str, str]:
    """A fresh, empty run folder of `kind` (the oldest runs of that kind beyond KEEP removed): (id, folder)."""
    root = os.path.join(job_dir, RESULTS_DIR)
    os.makedirs(root, exist_ok=True)
    prune(root, kind, KEEP[kind] - 1)
    run_id = f"{kind}-{secrets.token_hex(8)}"
    folder = os.path.join(root, run_id)
    os.mkdir(folder)
    return run_id, folder


def prune(root: str, kind: str, keep: int) -> None:
    runs = []
    for entry in os.scandir(root):
        if entry.is_dir(follow_symlinks=False) and RUN_RE.match(entry.name) and entry.name.startswith(kind + "-"):
            try:
                runs.append((entry.stat().st_mtime_ns, entry.path))
            except OSError:
                pass
    for _, path in sorted(runs, reverse=True)[max(0, keep) :]:
        shutil.rmtree(path, ignore_errors=True)


def save(folder: str, data: dict[str, Any]) -> None:
    """result.json of a run, written atomically (readers never see half of one)."""
    path = os.path.join(folder, RESULT_FILE)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, separators=(",", ":"))
    os.replace(tmp, path)
    _remember((path, os.stat(path).st_mtime_ns), data)  # its page is asked for next


_cache: OrderedDict[tuple[str, int], dict[str, Any]] = OrderedDict()
_cache_lock = threading.Lock()


def _remember(key: tuple[str, int], data: dict[str, Any]) -> None:
    with _cache_lock:
        _cache[key] = data
        while len(_cache) > CACHED_RUNS:
            _cache.popitem(last=False)


def load(job_dir: str, run_id: str) -> dict[str, Any]:
    """A run's result.json (a run never changes once saved, so the last few read are kept parsed)."""
    path = os.path.join(run_dir(job_dir, run_id), RESULT_FILE)
    try:
        key = (path, os.stat(path).st_mtime_ns)
    except OSError:
        raise RunMissing(run_id) from None
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        raise RunMissing(run_id) from None
    _remember(key, data)
    return data


def thumbnail(job_dir: str, run_id: str, index: int) -> tuple[bytes, str] | None:
    """(bytes, mimetype) of image `index`'s thumbnail in a classify-many run, or None."""
    data = load(job_dir, run_id)
    rows = data.get("rows") or []
    if not 0 <= index < len(rows) or not rows[index][4]:
        return None
    offset, length = rows[index][4]
    with open(os.path.join(run_dir(job_dir, run_id), THUMBS_FILE), "rb") as fh:
        fh.seek(offset)
        blob = fh.read(length)
    if len(blob) != length:
        return None
    return blob, "image/png" if blob.startswith(b"\x89PNG") else "image/jpeg"


# ---- classify many: rows, filters, pages ------------------------------------------------------------------
# A row as stored: [line, path, true class or None, top-5 [[label, percent], ...], [offset, length] or None]


@dataclass
class Query:
    """What a results page shows: filters, order and page."""

    truth: str = ""
    predicted: str = ""
    outcome: str = "all"
    min_confidence: float | None = None
    max_confidence: float | None = None
    sort: str = "line"
    order: str = "asc"
    page: int = 1
    per_page: int = 50
    problems: list[str] = field(default_factory=list)

    @classmethod
    def from_args(cls, args) -> Query:
        """From a request's query arguments; a bad value is dropped (named in `problems`), never an error page."""
        q = cls(truth=(args.get("truth") or "")[:200], predicted=(args.get("predicted") or "")[:200])
        outcome = args.get("outcome") or "all"
        q.outcome = outcome if outcome in OUTCOMES else "all"
        for name in ("min_confidence", "max_confidence"):
            text = (args.get(name) or "").strip()
            if text:
                try:
                    value = float(text)
                    if not math.isfinite(value) or not 0 <= value <= 100:
                        raise ValueError
                    setattr(q, name, value)
                except ValueError:
                    label = "Confidence from" if name == "min_confidence" else "Confidence to"
                    q.problems.append(f"{label}: {text[:40]!r} is not a percentage (0 to 100); ignored")
        sort = args.get("sort") or "line"
        q.sort = sort if sort in SORT_KEYS else "line"
        q.order = "desc" if args.get("order") == "desc" else "asc"
        for name, default in (("page", 1), ("per_page", 50)):
            try:
                setattr(q, name, int(args.get(name) or default))
            except ValueError:
                setattr(q, name, default)
        if q.per_page not in PER_PAGE:
            q.per_page = 50
        q.page = max(1, q.page)
        return q

    def args(self, **changes) -> dict[str, Any]:
        """The query arguments of this page with `changes` (for links: sort, page...); defaults left out."""
        values = {
            "truth": self.truth,
            "predicted": self.predicted,
            "outcome": self.outcome,
            "min_confidence": self.min_confidence,
            "max_confidence": self.max_confidence,
            "sort": self.sort,
            "order": self.order,
            "page": self.page,
            "per_page": self.per_page,
            **changes,
        }
        defaults = {"outcome": "all", "sort": "line", "order": "asc", "page": 1, "per_page": 50}
        return {k: v for k, v in values.items() if v not in (None, "") and defaults.get(k) != v}


def _sort_key(sort: str):
    if sort == "path":
        return lambda r: r[1]
    if sort == "truth":
        return lambda r: (r[2] is None, r[2] or "")
    if sort == "predicted":
        return lambda r: r[3][0][0]
    if sort == "confidence":
        return lambda r: r[3][0][1]
    return lambda r: r[0]


def select(rows: list[list], q: Query) -> list[int]:
    """Indices of the rows that pass the query's filters, in its order."""
    picked = []
    for i, (_, _, truth, top, _) in enumerate(rows):
        predicted, confidence = top[0]
        if q.truth and truth != q.truth:
            continue
        if q.predicted and predicted != q.predicted:
            continue
        if q.outcome != "all" and (truth is None or (truth == predicted) != (q.outcome == "right")):
            continue
        if q.min_confidence is not None and confidence < q.min_confidence:
            continue
        if q.max_confidence is not None and confidence > q.max_confidence:
            continue
        picked.append(i)
    key = _sort_key(q.sort)
    picked.sort(key=lambda i: (key(rows[i]), rows[i][0]), reverse=q.order == "desc")
    return picked


def row_dict(index: int, row: list) -> dict[str, Any]:
    line, path, truth, top, thumb = row
    return {
        "index": index,
        "line": line,
        "path": path,
        "true_label": truth,
        "predicted_label": top[0][0],
        "confidence": top[0][1],
        "correct": None if truth is None else truth == top[0][0],
        "predictions": top,
        "has_thumbnail": bool(thumb),
    }


def page_of(data: dict[str, Any], q: Query) -> dict[str, Any]:
    """One page of a classify-many run's rows under a query, with the counts a page shows."""
    rows = data["rows"]
    picked = select(rows, q)
    pages = max(1, math.ceil(len(picked) / q.per_page))
    q.page = min(q.page, pages)
    start = (q.page - 1) * q.per_page
    return {
        "total": len(rows),
        "matched": len(picked),
        "page": q.page,
        "pages": pages,
        "per_page": q.per_page,
        "rows": [row_dict(i, rows[i]) for i in picked[start : start + q.per_page]],
    }


def classes_of(data: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(true classes, predicted classes) that occur in a run, sorted, for the filters' choices."""
    truths = sorted({r[2] for r in data["rows"] if r[2] is not None})
    predicted = sorted({r[3][0][0] for r in data["rows"]})
    return truths, predicted


def mistakes(data: dict[str, Any]) -> int:
    return sum(1 for r in data["rows"] if r[2] is not None and r[2] != r[3][0][0])


# ---- exports -------------------------------------------------------------------------------------------------
CSV_COLUMNS = ["line", "path", "true_class", "predicted_class", "confidence", "correct"]


def _cell(value: Any) -> str:
    """A CSV cell a spreadsheet will not run: text starting with = + - @ or a control character gets a quote."""
    text = "" if value is None else str(value)
    if text and text[0] in "=+-@\t\r":
        return "'" + text
    return text


def export_csv(data: dict[str, Any]) -> str:
    """Every image of a classify-many run, classified or not: one row each, in list order."""
    k = max((len(r[3]) for r in data["rows"]), default=0)
    header = CSV_COLUMNS + [f"{what}_{n}" for n in range(1, k + 1) for what in ("class", "percent")] + ["error"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    lines = []
    for line, path, truth, top, _ in data["rows"]:
        correct = "" if truth is None else ("yes" if truth == top[0][0] else "no")
        cells = [line, _cell(path), _cell(truth), _cell(top[0][0]), top[0][1], correct]
        for label, percent in top:
            cells += [_cell(label), percent]
        cells += ["", ""] * (k - len(top)) + [""]
        lines.append((line, cells))
    for error in data["answer"].get("errors", []):
        cells = [error["line"], _cell(error["path"]), "", "", "", ""] + ["", ""] * k + [_cell(error["message"])]
        lines.append((error["line"], cells))
    for _, cells in sorted(lines, key=lambda pair: pair[0]):
        writer.writerow(cells)
    return out.getvalue()


def export_json(data: dict[str, Any]) -> dict[str, Any]:
    """The JSON twin's answer for the run, and every image as a record (with its list line and true class)."""
    return {**data["answer"], "images": [row_dict(i, r) for i, r in enumerate(data["rows"])]}
