import os

import pytest

from digits.dataset.parse import parse_folders, parse_list_file, parse_textfiles, write_lists
from digits.folders.dataset import read_list
from digits.worker_runtime import TaskFailed
from tests.support.imagegen import make_shapes


def folder_args(path, **kw):
    return {"train": {"path": str(path), **kw.pop("train", {})}, "pct_val": 25, "pct_test": 0, "seed": 0, **kw}


def test_split_is_stratified_deterministic_and_complete(tmp_path):
    made = make_shapes(str(tmp_path), per_class=20)
    result = parse_folders(folder_args(tmp_path, pct_val=25, pct_test=10))
    assert result.labels == ["circle", "square", "triangle"]
    assert result.counts() == {"train": 39, "val": 15, "test": 6}
    assert result.per_class() == {"train": [13, 13, 13], "val": [5, 5, 5], "test": [2, 2, 2]}
    listed = sorted(p for entries in result.splits.values() for p, _ in entries)
    assert listed == sorted(p for paths in made.values() for p in paths)
    for entries in result.splits.values():
        for path, label in entries:
            assert os.path.basename(os.path.dirname(path)) == result.labels[label]
    again = parse_folders(folder_args(tmp_path, pct_val=25, pct_test=10))
    assert again.splits == result.splits
    other_seed = parse_folders(folder_args(tmp_path, pct_val=25, pct_test=10, seed=1))
    assert other_seed.splits["val"] != result.splits["val"]
    assert [label for _, label in result.splits["train"]] != sorted(label for _, label in result.splits["train"])


def test_min_and_max_per_class(tmp_path):
    make_shapes(str(tmp_path), per_class=10)
    make_shapes(str(tmp_path), per_class=3, classes=("star",))
    result = parse_folders(folder_args(tmp_path, pct_val=0, train={"min_per_class": 5, "max_per_class": 8}))
    assert result.labels == ["circle", "square", "triangle"]
    assert result.per_class()["train"] == [8, 8, 8]
    assert result.dropped_classes == [{"name": "star", "count": 3, "reason": "fewer than 5 images"}]


def test_fewer_than_two_classes_and_empty_split_fail_clearly(tmp_path):
    make_shapes(str(tmp_path), per_class=4, classes=("circle",))
    with pytest.raises(TaskFailed, match="only 1 class folder"):
        parse_folders(folder_args(tmp_path))
    make_shapes(str(tmp_path), per_class=1, classes=("square",))
    with pytest.raises(TaskFailed, match="val split would be empty"):
        parse_folders(folder_args(tmp_path, pct_val=1, wanted_splits=["train", "val"]))


def test_separate_val_folder_must_use_known_classes(tmp_path):
    make_shapes(str(tmp_path / "train"), per_class=4)
    make_shapes(str(tmp_path / "val"), per_class=2, classes=("circle", "square"))
    result = parse_folders(folder_args(tmp_path / "train", pct_val=0, val={"path": str(tmp_path / "val")}))
    assert result.per_class()["val"] == [2, 2, 0]
    make_shapes(str(tmp_path / "val"), per_class=2, classes=("hexagon",))
    with pytest.raises(TaskFailed, match="hexagon are not classes of the training folder"):
        parse_folders(folder_args(tmp_path / "train", pct_val=0, val={"path": str(tmp_path / "val")}))


def test_non_images_and_files_outside_class_folders_are_reported(tmp_path):
    make_shapes(str(tmp_path), per_class=2)
    (tmp_path / "circle" / "notes.txt").write_text("x")
    (tmp_path / "README").write_text("x")
    (tmp_path / "circle" / ".DS_Store").write_text("x")
    nested = tmp_path / "square" / "more"
    nested.mkdir()
    (nested / "a.png").write_bytes((tmp_path / "square" / "0001.png").read_bytes())
    result = parse_folders(folder_args(tmp_path, pct_val=0))
    reasons = {os.path.basename(s["path"]): s["reason"] for s in result.skipped}
    assert reasons == {"notes.txt": "not an image file (.txt)", "README": "not inside a class folder"}
    assert result.per_class()["train"] == [2, 3, 2]


def test_links_out_of_the_data_roots_are_skipped(tmp_path):
    outside = tmp_path / "outside"
    make_shapes(str(outside), per_class=1, classes=("x",))
    root = tmp_path / "root"
    make_shapes(str(root), per_class=2)
    os.symlink(outside / "x" / "0000.jpg", root / "circle" / "sneaky.jpg")
    result = parse_folders(folder_args(root, pct_val=0, allowed_roots=[str(root)]))
    assert [s["reason"] for s in result.skipped] == ["links outside the data roots"]


def test_text_lists_report_bad_lines_by_number(tmp_path):
    made = make_shapes(str(tmp_path / "img"), per_class=2)
    good = made["circle"][0]
    lst = tmp_path / "train.txt"
    lst.write_text(f"{good} 0\n\n# comment\n{good} 7\n{good} x\nmissing.png 1\n/nowhere/a.png 1\njustonefield\n")
    with pytest.raises(TaskFailed) as info:
        parse_list_file(str(lst), "train", 3, None, None)
    message = str(info.value)
    assert "5 bad line(s)" in message
    assert "line 4: label 7 is not in the labels file (0 to 2)" in message
    assert "line 5: label 'x' is not a whole number" in message
    assert "line 6: missing.png is a relative path and no image folder was given" in message
    assert "line 7: file not found: /nowhere/a.png" in message
    assert "line 8: expected 'path label'" in message


def test_text_lists_with_relative_paths_and_labels_file(tmp_path):
    made = make_shapes(str(tmp_path / "img"), per_class=3)
    (tmp_path / "labels.txt").write_text("circle\nsquare\ntriangle\n")
    lines = [f"{os.path.relpath(p, tmp_path / 'img')} {i}" for i, c in enumerate(made) for p in made[c]]
    (tmp_path / "train.txt").write_text("\n".join(lines) + "\n")
    args = {
        "labels_file": "labels.txt",
        "lists": {"train": "train.txt"},
        "list_folders": {"train": str(tmp_path / "img")},
        "shuffle": False,
        "seed": 0,
    }
    result = parse_textfiles(args, str(tmp_path))
    assert result.labels == ["circle", "square", "triangle"] and result.per_class()["train"] == [3, 3, 3]
    out = tmp_path / "job"
    out.mkdir()
    write_lists(str(out), result)
    assert read_list(str(out / "train.txt")) == result.splits["train"]
    assert (out / "labels.txt").read_text() == "circle\nsquare\ntriangle\n"


def test_names_a_list_line_cannot_carry_are_skipped_and_named(tmp_path):
    made = make_shapes(str(tmp_path), per_class=2)
    with open(made["circle"][0], "rb") as fh:
        image = fh.read()
    (tmp_path / "circle" / "two\nlines.png").write_bytes(image)
    (tmp_path / "square" / "para\u2029graph.png").write_bytes(image)
    os.makedirs(tmp_path / "odd\nclass")
    (tmp_path / "odd\nclass" / "a.png").write_bytes(image)
    undecodable = os.path.join(os.fsencode(tmp_path / "triangle"), b"latin-\xe9.png")
    with open(undecodable, "wb") as fh:
        fh.write(image)
    result = parse_folders(folder_args(tmp_path, pct_val=0))
    assert result.labels == ["circle", "square", "triangle"] and result.per_class()["train"] == [2, 2, 2]
    reasons = {os.path.basename(s["path"]): s["reason"] for s in result.skipped}
    line_break = "its name holds a line break, which a list file cannot carry"
    assert reasons == {
        "two\\nlines.png": line_break,
        "para\\u2029graph.png": line_break,
        "odd\\nclass": f"class folder skipped: {line_break}",
        "latin-\\udce9.png": "its name is not valid UTF-8, which a list file cannot carry",
    }
    out = tmp_path / "job"
    out.mkdir()
    write_lists(str(out), result)  # every line written is one entry
    assert read_list(str(out / "train.txt")) == result.splits["train"]


def test_a_list_cannot_probe_outside_the_data_roots(tmp_path):
    made = make_shapes(str(tmp_path / "root"), per_class=1)
    secret = tmp_path / "elsewhere" / "secret.png"
    secret.parent.mkdir()
    secret.write_bytes(b"x")
    lst = tmp_path / "root" / "train.txt"
    lst.write_text(f"{made['circle'][0]} 0\n{secret} 1\n{tmp_path / 'elsewhere' / 'missing.png'} 1\n")
    with pytest.raises(TaskFailed) as info:
        parse_list_file(str(lst), "train", 3, None, [str(tmp_path / "root")])
    assert f"line 2: not found in the data roots: {secret}\n" in str(info.value)
    assert f"line 3: not found in the data roots: {tmp_path / 'elsewhere' / 'missing.png'}" in str(info.value)
