"""What a folder would give as a dataset: its class folders and their image counts, and a warning when it looks
like the wrong folder (no class folders, or one level too high). The New Dataset form shows it while a person
picks the folder; the counting follows digits.dataset.parse.scan_class_folders (each subfolder is a class, its
images searched recursively; hidden names, links to folders and the jobs folder never entered).

Plain data in, plain data out: it runs off the event loop. Every folder entry it reads counts against a limit, so
a huge tree costs a bounded time; counts cut short by it are "at least".
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

from digits.datapaths import PathRules
from digits.formats.images import IMAGE_EXTENSIONS

# Folder entries read for one preview at most: MNIST's 60,000 training images are counted whole (about 0.2 s
# measured when the folders are in the page cache), a tree of millions stops here.
MAX_ENTRIES = 100_000
# Class folders counted at most; more are reported by number only.
MAX_CLASSES = 1_000
# Class names in the one-line summary.
SUMMARY_CLASSES = 12
# How deep below a class folder its layout is remembered, to suggest the folder that was probably meant.
LAYOUT_DEPTH = 2
MAX_SUGGESTIONS = 4


@dataclass
class Layout:
    """One folder as the preview saw it: images directly inside, its subfolders (by name)."""

    images: int = 0
    folders: dict[str, Layout] = field(default_factory=dict)


@dataclass
class ClassCount:
    name: str
    images: int
    complete: bool  # False: the entry limit stopped the count, so there are at least `images`


@dataclass
class FolderWarning:
    kind: str  # no_classes, empty, one_class, too_high, nested, loose_images
    message: str
    suggestions: list[str] = field(default_factory=list)  # folders the person probably meant


@dataclass
class FolderPreview:
    path: str
    classes: list[ClassCount]
    uncounted_classes: int  # class folders past MAX_CLASSES
    loose_images: int  # images directly in the folder: in no class, so left out
    complete: bool
    limit: int
    warning: FolderWarning | None = None

    @property
    def images(self) -> int:
        return sum(c.images for c in self.classes)

    def summary(self) -> str:
        """One line: '3 classes, 120 images: circle 40, square 40, triangle 40' ('at least' where cut short)."""
        n = len(self.classes) + self.uncounted_classes
        if n == 0:
            return f"No class folders; {_count(self.loose_images, 'image', self.complete)} directly inside."
        head = f"{n} class{'' if n == 1 else 'es'}, {_count(self.images, 'image', self.complete)}"
        shown = ", ".join(f"{c.name} {_number(c.images, c.complete)}" for c in self.classes[:SUMMARY_CLASSES])
        rest = n - min(len(self.classes), SUMMARY_CLASSES)
        return f"{head}: {shown}" + (f", and {rest:,} more" if rest else "")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(images=self.images, summary=self.summary())
        return out


def _number(n: int, complete: bool) -> str:
    return f"{n:,}" if complete else f"at least {n:,}"


def _count(n: int, noun: str, complete: bool) -> str:
    return f"{_number(n, complete)} {noun}{'' if n == 1 else 's'}"


def _is_image(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


class _Budget:
    def __init__(self, entries: int):
        self.left = entries

    def take(self) -> bool:
        self.left -= 1
        return self.left >= 0


def _subfolders(path: str, rules: PathRules, budget: _Budget) -> tuple[list[os.DirEntry], int, bool]:
    """(folders, images, complete) directly in `path`: what scan_class_folders would see there."""
    folders, images = [], 0
    try:
        with os.scandir(path) as it:
            for entry in it:
                if not budget.take():
                    return folders, images, False
                if entry.name.startswith("."):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    if not rules.hides(os.path.realpath(entry.path)):
                        folders.append(entry)
                elif _is_image(entry.name) and _readable_image(entry, rules):
                    images += 1
    except OSError:  # unreadable: counted as empty, as the parse task would skip it
        pass
    return sorted(folders, key=lambda e: e.name), images, True


def _readable_image(entry: os.DirEntry, rules: PathRules) -> bool:
    """A file the parse task would keep: a regular file, or a link to one the rules allow."""
    if entry.is_symlink():
        return os.path.isfile(entry.path) and rules.allows(os.path.realpath(entry.path))
    return entry.is_file(follow_symlinks=False)


def _count_class(path: str, rules: PathRules, budget: _Budget) -> tuple[int, bool, Layout]:
    """(images, complete, layout) of one class folder, searched depth first as os.walk would, within `budget`."""
    top = Layout()
    stack: list[tuple[str, Layout | None, int]] = [(path, top, 0)]
    images = 0
    while stack:
        folder, layout, depth = stack.pop()
        subfolders, here, complete = _subfolders(folder, rules, budget)
        images += here
        if layout is not None:
            layout.images = here
        for entry in reversed(subfolders):
            child = None
            if layout is not None and depth < LAYOUT_DEPTH:
                child = layout.folders.setdefault(entry.name, Layout())
            stack.append((entry.path, child, depth + 1))
        if not complete:
            return images, False, top
    return images, True, top


def preview_folder(
    real: str, rules: PathRules, max_entries: int = MAX_ENTRIES, max_classes: int = MAX_CLASSES
) -> FolderPreview:
    """Count the images of each class folder in `real` (a folder check_server_path allowed)."""
    budget = _Budget(max_entries)
    folders, loose, complete = _subfolders(real, rules, budget)
    counted = folders[:max_classes]
    # Each class gets an equal share of what is left, so one huge class cannot starve the others of a count.
    share = max(1, budget.left // max(1, len(counted)))
    classes, layouts = [], {}
    for entry in counted:
        images, whole, layout = _count_class(entry.path, rules, _Budget(share))
        classes.append(ClassCount(entry.name, images, whole))
        layouts[entry.name] = layout
    complete = complete and all(c.complete for c in classes)
    preview = FolderPreview(real, classes, len(folders) - len(counted), loose, complete, max_entries)
    preview.warning = _warning(preview, layouts, rules)
    return preview


def _class_root(path: str, layout: Layout) -> str | None:
    """The folder at or below `path` that holds class folders (no images of its own, two subfolders or more),
    following single subfolders down; None if the images come first."""
    while layout.images == 0 and len(layout.folders) == 1:
        [(name, layout)] = layout.folders.items()
        path = os.path.join(path, name)
    if layout.images == 0 and len(layout.folders) >= 2:
        return path
    return None


def _or_list(paths: list[str]) -> str:
    return paths[0] if len(paths) == 1 else ", ".join(paths[:-1]) + " or " + paths[-1]


def _warning(preview: FolderPreview, layouts: dict[str, Layout], rules: PathRules) -> FolderWarning | None:
    path, classes = preview.path, preview.classes
    if not classes and not preview.uncounted_classes:
        if not preview.loose_images:
            return FolderWarning("empty", f"{path} holds no images and no class folders.")
        parent = os.path.dirname(path)
        suggestions = [parent] if parent != path and _holds_classes(parent, rules) else []
        message = f"{path} holds images but no class folders: pick the folder that holds one folder per class" + (
            f". Did you mean {parent}?" if suggestions else "."
        )
        return FolderWarning("no_classes", message, suggestions)
    containers = [c for c in classes if layouts[c.name].images == 0 and layouts[c.name].folders]
    if classes and len(containers) == len(classes) and not preview.uncounted_classes:
        roots = [_class_root(os.path.join(path, c.name), layouts[c.name]) for c in classes]
        suggestions = [r for r in roots if r][:MAX_SUGGESTIONS]
        if len(classes) == 1:
            name = classes[0].name
            if suggestions:
                return FolderWarning(
                    "too_high",
                    f"{path} holds a single folder, {name}, that holds the class folders: did you mean "
                    f"{suggestions[0]}?",
                    suggestions,
                )
        elif suggestions:
            names = ", ".join(c.name for c in classes[:SUMMARY_CLASSES])
            return FolderWarning(
                "too_high",
                f"The folders in {path} hold folders rather than images, so {names} would be the classes: did you "
                f"mean {_or_list(suggestions)}?",
                suggestions,
            )
        elif all(len(layouts[c.name].folders) == 1 for c in classes):
            inner = ", ".join(f"{c.name}/{next(iter(layouts[c.name].folders))}" for c in classes[:3])
            return FolderWarning(
                "nested",
                f"Each class folder holds a single subfolder ({inner}{', …' if len(classes) > 3 else ''}): the "
                "images one level further down are used, under these class names.",
            )
    if len(classes) == 1 and not preview.uncounted_classes:
        return FolderWarning(
            "one_class",
            f"{path} holds 1 class folder; a classification dataset needs at least 2 (one subfolder of images "
            "per class).",
        )
    if preview.loose_images:
        n = preview.loose_images
        return FolderWarning(
            "loose_images",
            f"{_count(n, 'image', preview.complete)} directly in {path} {'is' if n == 1 else 'are'} left out: "
            "only images inside a class folder are used.",
        )
    return None


def _holds_classes(folder: str, rules: PathRules) -> bool:
    """Whether `folder` may be read and looks like a folder of class folders: two of its first subfolders hold
    images themselves (a cheap look, a few hundred entries at most)."""
    if not rules.allows(folder):
        return False
    budget = _Budget(400)
    subfolders, _, _ = _subfolders(folder, rules, budget)
    with_images = 0
    for entry in subfolders[:8]:
        with_images += _subfolders(entry.path, rules, budget)[1] > 0
        if with_images >= 2:
            return True
    return False
