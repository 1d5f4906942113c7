"""Dataset folders made by the real create-db tool, and finished dataset jobs made of them without a worker."""

from __future__ import annotations

import json
import os
import shutil

from digits.dataset import DATASET_TYPE
from digits.job import Job, new_job_id
from digits.status import Status
from tests.support.commands import run_module
from tests.support.waiting import LONG_S


def create_db(out, folder, *options: str, channels: int = 1, width: int = 28, height: int = 28) -> str:
    """`python -m digits.tools.create_db OUT --folder FOLDER ...`: a dataset folder of `folder`'s class folders
    (gray 28x28 unless told otherwise; `options` are more of the tool's flags). Returns OUT."""
    size = ["--channels", channels, "--width", width, "--height", height]
    done = run_module("digits.tools.create_db", out, "--folder", folder, *size, *options, timeout=LONG_S)
    assert done.returncode == 0, done.stderr[-2000:]
    return str(out)


def add_ready_dataset(workspace, source: str, name: str = "shapes") -> Job:
    """Put a finished dataset job (a copy of the dataset folder `source`) into the workspace, as if built by the
    form."""
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
