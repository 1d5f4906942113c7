"""DIGITS' ParseFolderTasks in a dataset's JSON: one entry per source folder (the training folder, then a separate
validation or test folder), named and counted as DIGITS' parse tasks were (after DIGITS' TestImageCount,
TestMaxPerClass and TestMinPerClass in digits/dataset/images/classification/test_views.py)."""

import io

import pytest

from digits.dataset.info import parse_folder_tasks
from tests.support.forms import dataset_form
from tests.support.imagegen import make_shapes
from tests.support.waiting import LONG_S

PER_CLASS = 10


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp("shapes")
    make_shapes(str(root), per_class=PER_CLASS)
    return root


@pytest.fixture(scope="module")
def unbalanced(tmp_path_factory):
    """Three classes of PER_CLASS images and a fourth of half as many (DIGITS' unbalanced category)."""
    root = tmp_path_factory.mktemp("unbalanced")
    make_shapes(str(root), per_class=PER_CLASS)
    make_shapes(str(root), per_class=PER_CLASS // 2, classes=("star",))
    return root


def dataset_info(client, recorder, folder, **fields) -> dict:
    r = client.post("/datasets/images/classification/json", data=dataset_form(folder, **fields))
    assert r.status_code == 200, r.get_data(as_text=True)
    job_id = r.get_json()["id"]
    assert recorder.wait_status(job_id, timeout=LONG_S) == "Done", client.get(f"/datasets/{job_id}/status").get_json()
    return client.get(f"/datasets/{job_id}.json").get_json()


KEYS = {"name", "status", "label_count", "train_count", "val_count", "test_count"}


def test_one_folder_is_one_parse_task_counting_each_split(signed_in, recorder, shapes):
    info = dataset_info(signed_in, recorder, shapes, folder_pct_val="20", folder_pct_test="10")
    [parse] = info["ParseFolderTasks"]
    assert set(parse) == KEYS
    total = 3 * PER_CLASS
    assert parse == {
        "name": "Parse Folder (train/val/test)",
        "status": "Done",
        "label_count": 3,
        "train_count": total * 7 // 10,
        "val_count": total // 5,
        "test_count": total // 10,
    }
    assert [(t["name"], t["entries"]) for t in info["CreateDbTasks"]] == [
        ("Create DB (train)", 21),
        ("Create DB (val)", 6),
        ("Create DB (test)", 3),
    ]


@pytest.mark.parametrize("split", ["val", "test"])
def test_a_separate_folder_is_a_parse_task_of_its_own(signed_in, recorder, shapes, split):
    other = "test" if split == "val" else "val"
    fields = {f"has_{split}_folder": "True", f"folder_{split}": str(shapes), f"folder_{split}_max_per_class": "4"}
    info = dataset_info(signed_in, recorder, shapes, folder_pct_val="20", folder_pct_test="10", **fields)
    first, second = info["ParseFolderTasks"]
    # The training folder no longer gives this split (DIGITS sets its percentage to 0), only the other one.
    assert first["name"] == f"Parse Folder (train/{other})" and first[f"{split}_count"] == 0
    assert first["train_count"] + first[f"{other}_count"] == 3 * PER_CLASS and first[f"{other}_count"] > 0
    assert second == {
        "name": f"Parse Folder ({split})",
        "status": "Done",
        "label_count": 3,
        "train_count": 0,
        "val_count": 12 if split == "val" else 0,
        "test_count": 12 if split == "test" else 0,
    }
    entries = {t["name"]: t["entries"] for t in info["CreateDbTasks"]}
    assert entries[f"Create DB ({split})"] == 12


def test_a_class_under_the_minimum_is_not_counted_in_its_folders_task(signed_in, recorder, unbalanced):
    fields = {"has_val_folder": "True", "folder_val": str(unbalanced), "folder_val_min_per_class": str(PER_CLASS)}
    info = dataset_info(signed_in, recorder, unbalanced, folder_pct_val="0", **fields)
    first, second = info["ParseFolderTasks"]
    assert first["name"] == "Parse Folder (train)" and first["label_count"] == 4
    assert second["name"] == "Parse Folder (val)" and second["label_count"] == 3  # star has too few images
    assert second["val_count"] == 3 * PER_CLASS


def test_a_dataset_from_lists_has_no_parse_folder_task(signed_in, recorder, tmp_path):
    made = make_shapes(str(tmp_path / "img"), per_class=3)
    lines = "".join(f"{p} {i}\n" for i, c in enumerate(made) for p in made[c])
    form = {
        "method": "textfile",
        "dataset_name": "lists",
        "resize_width": "8",
        "resize_height": "8",
        "textfile_train_images": (io.BytesIO(lines.encode()), "train.txt"),
        "textfile_labels_file": (io.BytesIO(b"circle\nsquare\ntriangle\n"), "labels.txt"),
    }
    r = signed_in.post("/datasets/images/classification/json", data=form, content_type="multipart/form-data")
    assert r.status_code == 200, r.get_data(as_text=True)
    job_id = r.get_json()["id"]
    assert recorder.wait_status(job_id, timeout=LONG_S) == "Done"
    info = signed_in.get(f"/datasets/{job_id}.json").get_json()
    assert info["ParseFolderTasks"] == []  # DIGITS made none: its lists went straight to create-db
    assert [(t["name"], t["entries"]) for t in info["CreateDbTasks"]] == [("Create DB (train)", 9)]


def test_a_dataset_being_built_lists_its_folders_before_they_are_parsed(signed_in, workspace, shapes):
    # The entries exist from the start, counting nothing yet, with the parse task's status.
    fields = {"has_test_folder": "True", "folder_test": str(shapes)}
    r = signed_in.post("/datasets/images/classification/json", data=dataset_form(shapes, **fields))
    job = workspace.store.get(r.get_json()["id"])
    tasks = parse_folder_tasks(job, {})
    assert [(t["name"], t["train_count"], t["test_count"]) for t in tasks] == [
        ("Parse Folder (train/val)", 0, 0),
        ("Parse Folder (test)", 0, 0),
    ]
