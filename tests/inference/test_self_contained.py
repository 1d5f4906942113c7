"""A model keeps what it needs of its dataset: labels, image settings and the mean image are copied into its
folder when training starts (digits/folders/model.py DATASET_COPY), so it classifies and downloads the same when
the dataset's folder is gone (moved to another disk, lost, or the model folder copied to another server).
A dataset job that models use is still not deletable through the server (tests/test_digits_compat_bugs.py)."""

from __future__ import annotations

import filecmp
import io
import os
import shutil
import tarfile

import pytest

from digits.folders.dataset import IMAGE_JSON, LABELS, MEAN, MEAN_PNG, open_dataset, read_image_settings
from digits.folders.model import DATASET_COPY, copy_dataset_essentials, model_dataset_dir, own_dataset_copy
from digits.inference.app import install
from digits.webapp import create_app
from tests.model.conftest import shapes_dataset_dir  # noqa: F401 - a session fixture
from tests.support.apps import app_settings, sign_in
from tests.support.datasets import add_ready_dataset
from tests.support.forms import model_form
from tests.support.waiting import LONG_S, record

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory, shapes_dataset_dir):  # noqa: F811 - the imported fixture
    jobs = tmp_path_factory.mktemp("self-contained") / "jobs"
    app = create_app(app_settings(jobs, cpu_slots=2, inference_workers=1))
    workspace = app.extensions["digits"]
    pool = install(app)
    recorder = record(workspace)
    dataset = add_ready_dataset(workspace, shapes_dataset_dir)
    client = sign_in(app)
    r = client.post("/models/images/classification/json", data=model_form(dataset.id, use_mean="image"))
    assert r.status_code == 200, r.get_data(as_text=True)
    model = r.get_json()["id"]
    assert recorder.wait_status(model, timeout=LONG_S) == "Done"
    yield app, client, workspace, dataset, model
    pool.close()
    workspace.close()


def classify(client, model: str, image: bytes):
    form = {"job_id": model, "image_file": (io.BytesIO(image), "image.png")}
    return client.post("/models/images/classification/classify_one/json", data=form)


def test_training_copies_labels_settings_and_mean_into_the_model_folder(trained):
    _, _, workspace, dataset, model = trained
    model_dir = workspace.store.job_dir(model)
    dataset_dir = workspace.store.job_dir(dataset.id)
    copy = os.path.join(model_dir, DATASET_COPY)
    assert own_dataset_copy(model_dir) == copy
    for name in (LABELS, MEAN, MEAN_PNG):
        assert filecmp.cmp(os.path.join(copy, name), os.path.join(dataset_dir, name), shallow=False), name
    assert read_image_settings(copy) == open_dataset(dataset_dir).image
    assert os.path.isfile(os.path.join(copy, IMAGE_JSON))
    assert not [n for n in os.listdir(model_dir) if n.startswith(f".{DATASET_COPY}")]  # no staging left behind


def test_a_model_classifies_and_downloads_the_same_without_its_dataset_folder(trained, shapes_dataset_dir):  # noqa: F811
    _, client, workspace, dataset, model = trained
    with open(os.path.join(shapes_dataset_dir, "val.txt")) as fh:
        image_path = fh.readline().rsplit(" ", 1)[0]
    with open(image_path, "rb") as fh:
        image = fh.read()
    before = classify(client, model, image)
    assert before.status_code == 200, before.get_data(as_text=True)
    dataset_dir = workspace.store.job_dir(dataset.id)
    moved = dataset_dir + ".moved"
    os.rename(dataset_dir, moved)
    try:
        # Weights newer on disk make the worker load the model again, reading labels and mean from its own copy.
        for name in os.listdir(workspace.store.job_dir(model)):
            if name.startswith("snapshot_epoch_"):
                os.utime(os.path.join(workspace.store.job_dir(model), name))
        after = classify(client, model, image)
        assert after.status_code == 200, after.get_data(as_text=True)
        assert after.get_json()["predictions"] == before.get_json()["predictions"]
        r = client.get(f"/models/{model}/download.tar.gz")
        assert r.status_code == 200, r.get_data(as_text=True)
        with tarfile.open(fileobj=io.BytesIO(r.get_data()), mode="r:gz") as tar:
            names = {os.path.basename(n) for n in tar.getnames()}
        assert {LABELS, MEAN, MEAN_PNG, "info.json"} <= names
    finally:
        os.rename(moved, dataset_dir)


def test_a_newer_copy_replaces_the_older_one_whole(tmp_path, shapes_dataset_dir):  # noqa: F811
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    dataset = open_dataset(str(shapes_dataset_dir))
    copy = copy_dataset_essentials(dataset, str(model_dir))
    (tmp_path / "stale").write_text("x")
    shutil.copy(tmp_path / "stale", os.path.join(copy, "stale.txt"))
    dataset.labels = [*dataset.labels[:-1], "renamed"]
    copy_dataset_essentials(dataset, str(model_dir))
    assert open_dataset(copy).labels[-1] == "renamed"
    assert not os.path.exists(os.path.join(copy, "stale.txt"))
    # Without a copy, a model reads its dataset's folder beside it; with a link in its place, too (never followed).
    other = tmp_path / "other"
    other.mkdir()
    assert model_dataset_dir(str(other), "20261129-000000-abcd") == str(tmp_path / "20261129-000000-abcd")
    os.symlink(str(shapes_dataset_dir), other / DATASET_COPY)
    assert model_dataset_dir(str(other), "20261129-000000-abcd") == str(tmp_path / "20261129-000000-abcd")
    assert model_dataset_dir(str(other), "not an id") is None
