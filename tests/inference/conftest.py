"""One server for the inference tests: the shapes dataset, LeNet trained in both frameworks through the real
form and worker, and a started inference pool (installed as create_app will once it is wired)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient

from digits.inference.app import install
from digits.inference.pool import InferencePool
from digits.job import Job
from digits.webapp import create_app
from tests.model.conftest import shapes_dataset_dir  # noqa: F401 - a session fixture
from tests.support.apps import app_settings, sign_in
from tests.support.datasets import add_ready_dataset
from tests.support.forms import model_form
from tests.support.waiting import LONG_S, EventRecorder, record

FRAMEWORKS = ("torch", "caffe")


@dataclass
class Served:
    app: Flask
    client: FlaskClient
    pool: InferencePool
    dataset: Job
    models: dict[str, str]  # framework -> model job id
    recorder: EventRecorder

    @property
    def workspace(self):
        return self.app.extensions["digits"]

    def val_list(self) -> str:
        with open(self.dataset.path(self.workspace.store.jobs_dir, "val.txt")) as fh:
            return fh.read()

    def classify_one(self, framework: str = "torch", data: bytes | None = None, name: str = "image.png", **fields):
        form = {"job_id": self.models[framework], **fields}
        if data is not None:
            form["image_file"] = (io.BytesIO(data), name)
        return self.client.post("/models/images/classification/classify_one/json", data=form)

    def classify_many(self, framework: str = "torch", text: str = "", route: str = "classify_many/json", **fields):
        form = {"job_id": self.models[framework], "image_list": (io.BytesIO(text.encode()), "list.txt"), **fields}
        return self.client.post(f"/models/images/classification/{route}", data=form)


@pytest.fixture(scope="session")
def served(tmp_path_factory, shapes_dataset_dir) -> Served:  # noqa: F811 - the imported fixture
    jobs = tmp_path_factory.mktemp("inference") / "jobs"
    app = create_app(app_settings(jobs, cpu_slots=2, inference_workers=2))
    workspace = app.extensions["digits"]
    pool = install(app)  # starts the workers now, so they import torch while the models train
    recorder = record(workspace)
    dataset = add_ready_dataset(workspace, shapes_dataset_dir)
    client = sign_in(app)
    models = {}
    for framework in FRAMEWORKS:
        form = model_form(dataset.id, model_name=f"lenet-{framework}", framework=framework)
        r = client.post("/models/images/classification/json", data=form)
        assert r.status_code == 200, r.get_data(as_text=True)
        models[framework] = r.get_json()["id"]
    for job_id in models.values():
        assert recorder.wait_status(job_id, timeout=LONG_S) == "Done"
    assert pool.wait_ready(LONG_S)
    yield Served(app, client, pool, dataset, models, recorder)
    pool.close()
    workspace.close()
