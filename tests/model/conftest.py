"""A small dataset ready to train on, built once per session with the real create-db code."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from digits.dataset import DATASET_TYPE
from digits.job import Job, new_job_id
from digits.status import Status
from tests.conftest import ROOT
from tests.support.imagegen import make_shapes


@pytest.fixture(scope="session")
def shapes_dataset_dir(tmp_path_factory) -> str:
    """Gray 28x28 shapes, 3 classes: 90 train / 30 val images, as a dataset folder."""
    root = tmp_path_factory.mktemp("shapes-ds")
    make_shapes(str(root / "src"), per_class=40, size=(24, 40))
    out = root / "dataset"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "digits.tools.create_db",
            str(out),
            "--folder",
            str(root / "src"),
            "--channels",
            "1",
            "--width",
            "28",
            "--height",
            "28",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return str(out)


def add_ready_dataset(workspace, source: str, name: str = "shapes") -> Job:
    """Put a finished dataset job (a copy of `source`) into the workspace, as if built by the form."""
    with open(os.path.join(source, "image.json")) as fh:
        image = json.load(fh)
    job = Job(
        id=new_job_id(),
        type=DATASET_TYPE,
        category="dataset",
        name=name,
        owner="ann",
        extra={"image": image, "splits": ["train", "val"]},
    )
    job.history.set(Status.DONE)
    workspace.store.add(job)
    job_dir = workspace.store.job_dir(job.id)
    for entry in os.listdir(source):
        src = os.path.join(source, entry)
        (shutil.copytree if os.path.isdir(src) else shutil.copy)(src, os.path.join(job_dir, entry))
    workspace.store.save(job)
    return job


@pytest.fixture
def dataset(workspace, shapes_dataset_dir) -> Job:
    return add_ready_dataset(workspace, shapes_dataset_dir)


@pytest.fixture
def signed_in(client):
    client.post("/login", data={"username": "ann"}, headers={"Accept": "application/json"})
    return client
