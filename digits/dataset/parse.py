"""Turn class folders or text lists into a dataset folder's labels and train/val/test lists ("absolute-path label")."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from typing import Any

from digits.datapaths import PathRules
from digits.folders.dataset import UPLOAD_DIR, write_labels, write_list
from digits.formats.images import IMAGE_EXTENSIONS
from digits.worker_runtime import TaskFailed

SPLITS = ("train", "val", "test")
MAX_REPORTED_PROBLEMS = 20
# What ends a line for Python's text files or str.splitlines: a path holding one cannot sit on a list line.
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


@dataclass
class ParseResult:
    labels: list[str]
    splits: dict[str, list[tuple[str, int]]]
    skipped: list[dict[str, str]] = field(default_factory=list)
    dropped_classes: list[dict[str, Any]] = field(default_factory=list)
    # Each source folder (the training folder, then a separate validation or test folder), as DIGITS' one parse
    # task per folder reported it: {"split", "path", "label_count", "counts": {train, val, test}}.
    sources: list[dict[str, Any]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {s: len(self.splits.get(s, [])) for s in SPLITS}

    def per_class(self) -> dict[str, list[int]]:
        out = {}
        for split, entries in self.splits.items():
            counts = [0] * len(self.labels)
            for _, label in entries:
                counts[label] += 1
            out[split] = counts
        return out


def read_rules(args: dict[str, Any], job_dir: str | None = None) -> PathRules:
    """What the parse task may read: its task's allowed_roots (None: anything) less the jobs folder, plus the
    job's own upload folder (its unpacked zips lie in the jobs folder, outside every data root)."""
    roots = args.get("allowed_roots")
    if roots is None:
        return PathRules(None)
    denied = [os.path.realpath(d) for d in args.get("denied_roots") or []]
    own = []
    if job_dir:
        real_job = os.path.realpath(job_dir)
        denied.append(os.path.dirname(real_job))  # the jobs folder, also for jobs made before denied_roots
        own.append(os.path.join(real_job, UPLOAD_DIR))
    return PathRules([os.path.realpath(r) for r in roots], denied, own)


def _as_rules(rules: PathRules | list[str] | None) -> PathRules:
    if isinstance(rules, PathRules):
        return rules
    return PathRules(None if rules is None else [os.path.realpath(r) for r in rules])


def _allowed(path: str, rules: PathRules) -> bool:
    return rules.allows(os.path.realpath(path))


def shown_path(path: str) -> str:
    """A path as a report can show it: line breaks, other control characters and undecodable bytes escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in path)


def list_line_problem(path: str) -> str | None:
    """Why a path cannot be written on a line of train.txt (path label), or None."""
    if any(c in LINE_BREAKS for c in path):
        return "its name holds a line break, which a list file cannot carry"
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return "its name is not valid UTF-8, which a list file cannot carry"
    return None


def scan_class_folders(root: str, rules: PathRules | list[str] | None, skipped: list[dict]) -> dict[str, list[str]]:
    """{class name: sorted image paths} for each subfolder (searched recursively); other files go to `skipped`."""
    rules = _as_rules(rules)
    classes: dict[str, list[str]] = {}
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
            if entry.is_file() and not entry.name.startswith("."):
                skipped.append({"path": shown_path(entry.path), "reason": "not inside a class folder"})
            continue
        if rules.hides(os.path.realpath(entry.path)):
            continue  # the jobs folder inside a data root: never read, its names never shown
        problem = list_line_problem(entry.name)
        if problem:
            skipped.append({"path": shown_path(entry.path), "reason": f"class folder skipped: {problem}"})
            continue
        files = []
        for dirpath, dirnames, filenames in os.walk(entry.path):
            dirnames[:] = sorted(
                d
                for d in dirnames
                if not d.startswith(".") and not rules.hides(os.path.realpath(os.path.join(dirpath, d)))
            )
            for name in sorted(filenames):
                if name.startswith("."):
                    continue
                path = os.path.join(dirpath, name)
                ext = os.path.splitext(name)[1].lower()
                problem = list_line_problem(path)
                if ext not in IMAGE_EXTENSIONS:
                    skipped.append({"path": shown_path(path), "reason": f"not an image file ({ext or 'no extension'})"})
                elif problem:
                    skipped.append({"path": shown_path(path), "reason": problem})
                elif not _allowed(path, rules):
                    skipped.append({"path": path, "reason": "links outside the data roots"})
                else:
                    files.append(path)
        classes[entry.name] = files
    return classes


def _limit(files: list[str], low: int | None, high: int | None) -> list[str] | None:
    """Apply max per class (keep the first `high` after shuffling); None when below the minimum."""
    if high is not None:
        files = files[:high]
    if low is not None and len(files) < low:
        return None
    return files


def parse_folders(args: dict[str, Any], job_dir: str | None = None) -> ParseResult:
    rng = random.Random(args.get("seed", 0))
    roots = read_rules(args, job_dir)
    skipped: list[dict] = []
    train_src = args["train"]
    classes = scan_class_folders(train_src["path"], roots, skipped)
    dropped = []
    kept: dict[str, list[str]] = {}
    for name, files in classes.items():
        files = list(files)
        rng.shuffle(files)
        limited = _limit(files, train_src.get("min_per_class"), train_src.get("max_per_class"))
        if not files:
            dropped.append({"name": name, "count": 0, "reason": "no images"})
        elif limited is None:
            dropped.append(
                {"name": name, "count": len(files), "reason": f"fewer than {train_src['min_per_class']} images"}
            )
        else:
            kept[name] = limited
    labels = sorted(kept)
    if len(labels) < 2:
        raise TaskFailed(
            f"{train_src['path']}: only {len(labels)} class folder(s) with images"
            f"{' (' + ', '.join(d['name'] + ': ' + d['reason'] for d in dropped) + ')' if dropped else ''}"
            "; a classification dataset needs at least 2"
        )
    index = {name: i for i, name in enumerate(labels)}
    splits: dict[str, list[tuple[str, int]]] = {s: [] for s in SPLITS}
    sources = []
    pct_val, pct_test = float(args.get("pct_val") or 0), float(args.get("pct_test") or 0)
    for name in labels:
        files = kept[name]
        n_val = round(len(files) * pct_val / 100)
        n_test = round(len(files) * pct_test / 100)
        label = index[name]
        splits["val"] += [(f, label) for f in files[:n_val]]
        splits["test"] += [(f, label) for f in files[n_val : n_val + n_test]]
        splits["train"] += [(f, label) for f in files[n_val + n_test :]]
    sources.append(_source("train", train_src["path"], len(labels), {s: len(splits[s]) for s in SPLITS}))
    for split in ("val", "test"):
        src = args.get(split)
        if not src:
            continue
        other = scan_class_folders(src["path"], roots, skipped)
        unknown = sorted(set(other) - set(index))
        if unknown:
            raise TaskFailed(
                f"{src['path']}: class folder(s) {', '.join(unknown)} are not classes of the training "
                f"folder ({', '.join(labels)})"
            )
        found = 0
        for name, files in sorted(other.items()):
            files = list(files)
            rng.shuffle(files)
            limited = _limit(files, src.get("min_per_class"), src.get("max_per_class")) or []
            splits[split] += [(f, index[name]) for f in limited]
            found += bool(limited)
        sources.append(_source(split, src["path"], found, {s: len(splits[split]) if s == split else 0 for s in SPLITS}))
    for split in SPLITS:
        rng.shuffle(splits[split])  # interleave classes, so a DB read in order is not sorted by class
    result = ParseResult(labels, splits, skipped, dropped, sources)
    _check_not_empty(result, args)
    return result


def _source(split: str, path: str, label_count: int, counts: dict[str, int]) -> dict[str, Any]:
    return {"split": split, "path": path, "label_count": label_count, "counts": counts}


def _check_not_empty(result: ParseResult, args: dict[str, Any]) -> None:
    wanted = args.get("wanted_splits") or ["train"]
    empty = [s for s in wanted if not result.splits.get(s)]
    if empty:
        counts = ", ".join(f"{s}: {n}" for s, n in result.counts().items())
        raise TaskFailed(
            f"the {' and '.join(empty)} split would be empty ({counts}); add images or change the percentages"
        )


def read_labels_file(path: str) -> list[str]:
    with open(path, encoding="utf-8", errors="replace") as fh:
        labels = [line.strip() for line in fh if line.strip()]
    if len(labels) < 2:
        raise TaskFailed(f"labels file: {len(labels)} label(s); a classification dataset needs at least 2")
    return labels


def parse_list_file(
    path: str,
    split: str,
    n_labels: int,
    folder: str | None,
    rules: PathRules | list[str] | None,
    skipped: list[dict[str, str]] | None = None,
) -> list[tuple[str, int]]:
    """Read 'path label' lines; every bad line is reported with its number. An image whose name a list line
    cannot carry is skipped (added to `skipped`), not fatal."""
    rules = _as_rules(rules)
    skipped = [] if skipped is None else skipped
    entries, problems = [], []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.rsplit(None, 1)
            if len(parts) != 2:
                problems.append(f"line {number}: expected 'path label', got {line[:80]!r}")
                continue
            image, label_text = parts
            try:
                label = int(label_text)
            except ValueError:
                problems.append(f"line {number}: label {label_text!r} is not a whole number")
                continue
            if not 0 <= label < n_labels:
                problems.append(f"line {number}: label {label} is not in the labels file (0 to {n_labels - 1})")
                continue
            if not os.path.isabs(image):
                if not folder:
                    problems.append(f"line {number}: {image} is a relative path and no image folder was given")
                    continue
                image = os.path.join(folder, image)
            # Outside the data roots and missing read the same, so a list cannot probe what exists elsewhere.
            if not _allowed(image, rules) or not os.path.isfile(image):
                where = "file not found" if rules.roots is None else "not found in the data roots"
                problems.append(f"line {number}: {where}: {image}")
                continue
            problem = list_line_problem(image)
            if problem:
                skipped.append({"path": shown_path(image), "reason": f"{split} list line {number}: {problem}"})
                continue
            entries.append((image, label))
    if problems:
        shown = problems[:MAX_REPORTED_PROBLEMS]
        more = len(problems) - len(shown)
        raise TaskFailed(
            f"{split} list: {len(problems)} bad line(s):\n"
            + "\n".join(shown)
            + (f"\n... and {more} more" if more else "")
        )
    if not entries:
        raise TaskFailed(f"{split} list: no images listed")
    return entries


def _given_file(job_dir: str, name: str, rules: PathRules, what: str) -> str:
    """A list or labels file: uploaded into the job folder (a name the server chose), or a server path that
    must still be one the rules allow (it was checked when the form was sent)."""
    if not os.path.isabs(name):
        return os.path.join(job_dir, name)
    if not _allowed(name, rules):
        raise TaskFailed(f"{what}: {name} does not exist or is outside the data roots")
    return name


def parse_textfiles(args: dict[str, Any], job_dir: str) -> ParseResult:
    rules = read_rules(args, job_dir)
    labels = read_labels_file(_given_file(job_dir, args["labels_file"], rules, "labels file"))
    rng = random.Random(args.get("seed", 0))
    splits: dict[str, list[tuple[str, int]]] = {s: [] for s in SPLITS}
    skipped: list[dict[str, str]] = []
    for split, list_path in args["lists"].items():
        folder = args.get("list_folders", {}).get(split)
        if folder and not _allowed(folder, rules):
            raise TaskFailed(f"{split} image folder: {folder} does not exist or is outside the data roots")
        entries = parse_list_file(
            _given_file(job_dir, list_path, rules, f"{split} list"), split, len(labels), folder, rules, skipped
        )
        if args.get("shuffle", True):
            rng.shuffle(entries)
        splits[split] = entries
    return ParseResult(labels, splits, skipped)


def write_lists(job_dir: str, result: ParseResult) -> None:
    write_labels(job_dir, result.labels)
    for split, entries in result.splits.items():
        if entries:
            write_list(job_dir, split, entries)
