"""A DIGITS client over one in-process server per module: DIGITS' BaseViewsTest helpers in our words (sign in,
create a dataset or a model by a form post, read the job id from Location, wait, edit, abort, delete)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient

from digits.inference.app import install
from digits.webapp import create_app
from tests.digits_views.imageset import make_imageset
from tests.support.apps import app_settings
from tests.support.fakejobs import fake_job
from tests.support.waiting import LONG_S, record, wait_until

# DIGITS' dataset form defaults (BaseViewsTestWithImageset): 10x10 colour PNGs in LMDB.
DATASET_FIELDS = {
    "dataset_name": "test_dataset",
    "group_name": "test_group",
    "method": "folder",
    "resize_channels": "3",
    "resize_width": "10",
    "resize_height": "10",
    "backend": "lmdb",
    "encoding": "png",
    "compression": "none",
}
KIND = {"datasets": "datasets", "models": "models", "jobs": "jobs"}
FINAL = ("Done", "Aborted", "Error")


class DigitsClient:
    """What DIGITS' view tests did through their Flask test client, against our server."""

    def __init__(self, app, imageset: str, paths: dict[str, list[str]]) -> None:
        self.app = app
        self.workspace = app.extensions["digits"]
        self.http: FlaskClient = app.test_client()
        self.imageset = imageset
        self.paths = paths

    # ---- jobs (digits.test_views.BaseViewsTest) ------------------------------------------------------------------
    @staticmethod
    def job_id_from(response) -> str:
        """The new job's id, as DIGITS read it: the last part of the redirect's Location."""
        assert 300 <= response.status_code <= 310, (response.status_code, response.get_data(as_text=True)[:2000])
        return response.headers["Location"].rstrip("/").split("/")[-1]

    def exists(self, job_id: str, kind: str = "jobs") -> bool:
        r = self.http.get(f"/{kind}/{job_id}", follow_redirects=True)
        assert r.status_code in (200, 404), (r.status_code, r.get_data(as_text=True)[:500])
        return r.status_code == 200

    def status(self, job_id: str, kind: str = "jobs") -> str:
        r = self.http.get(f"/{kind}/{job_id}/status")
        assert r.status_code == 200, r.get_data(as_text=True)
        return r.get_json()["status"]

    def info(self, job_id: str, kind: str) -> dict:
        r = self.http.get(f"/{kind}/{job_id}.json")
        assert r.status_code == 200, r.get_data(as_text=True)
        return r.get_json()

    def abort(self, job_id: str, kind: str = "jobs") -> int:
        return self.http.post(f"/{kind}/{job_id}/abort").status_code

    def delete(self, job_id: str, kind: str = "jobs") -> int:
        return self.http.delete(f"/{kind}/{job_id}").status_code

    def edit(self, job_id: str, name: str | None = None, notes: str | None = None) -> int:
        data = {k: v for k, v in (("job_name", name), ("job_notes", notes)) if v}
        return self.http.put(f"/jobs/{job_id}", data=data).status_code

    def wait(self, job_id: str, kind: str = "jobs", timeout: float = LONG_S) -> str:
        """The job's final status; then, as DIGITS' job_wait_completion checked, it is listed by
        /completed_jobs.json and its page shows without error."""
        status = wait_until(lambda: (s := self.status(job_id, kind)) in FINAL and s, timeout, f"{job_id} to end")
        listed = self.http.get("/completed_jobs.json").get_json()
        assert job_id in [j["id"] for j in listed["datasets"] + listed["models"]], listed
        page = self.http.get(f"/jobs/{job_id}", follow_redirects=True)
        assert page.status_code == 200 and job_id in page.get_data(as_text=True)
        return status

    # ---- creating -----------------------------------------------------------------------------------------------
    def create(self, route: str, fields: dict, json: bool):
        """POST the form as DIGITS did: to `route` (a redirect expected) or `route`.json (the job's JSON)."""
        if json:
            r = self.http.post(route + ".json", data=fields)
            assert r.status_code == 200, r.get_data(as_text=True)
            body = r.get_json()
            return [j["id"] for j in body["jobs"]] if "jobs" in body else body["id"]
        return self.job_id_from(self.http.post(route, data=fields))

    def create_dataset(self, json: bool = False, **fields) -> str:
        form = {**DATASET_FIELDS, "folder_train": self.imageset, **fields}
        job_id = self.create("/datasets/images/classification", drop_none(form), json)
        assert self.exists(job_id, "datasets")
        return job_id

    def create_model(self, json: bool = False, **fields):
        return self.create("/models/images/classification", drop_none(fields), json)

    @contextlib.contextmanager
    def slots_held(self, gate_dir: str) -> Iterator[None]:
        """Every CPU slot taken by a job that waits for a gate, so jobs made meanwhile wait (DIGITS' tests raced
        their worker to abort a running job; a waiting one is aborted the same way, every time)."""
        gate = os.path.join(gate_dir, f"gate-{len(os.listdir(gate_dir))}")
        slots = self.workspace.settings.cpu_slots
        holder = fake_job(name="holder", tasks=[{"gate": gate, "resources": {"cpu": slots}}], owner=None)
        recorder = record(self.workspace)
        self.workspace.add_job(holder)
        recorder.wait_status(holder.id, ("Running",), timeout=LONG_S)
        try:
            yield
        finally:
            open(gate, "w").close()
            recorder.wait_status(holder.id, timeout=LONG_S)
            recorder.unsubscribe()


def drop_none(fields: dict) -> dict:
    return {k: v for k, v in fields.items() if v is not None}


def start_digits(folder, *, inference: bool = False, unbalanced: bool = False, cpu_slots: int = 2) -> DigitsClient:
    """A server on `folder`/jobs with DIGITS' imageset in `folder`/imageset, signed in as DIGITS' tests signed in
    (a form post, answered 302)."""
    paths = make_imageset(str(folder / "imageset"), unbalanced=unbalanced)
    app = create_app(app_settings(folder / "jobs", cpu_slots=cpu_slots, inference_workers=1 if inference else 0))
    if inference:
        install(app)
    digits = DigitsClient(app, str(folder / "imageset"), paths)
    r = digits.http.post("/login", data={"username": "digits-testsuite"})
    assert r.status_code == 302, r.get_data(as_text=True)
    return digits


def stop_digits(digits: DigitsClient) -> None:
    r = digits.http.post("/logout")
    pool = getattr(digits.workspace, "inference", None)
    if pool is not None:
        pool.close()
    digits.workspace.close()
    assert r.status_code == 302


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Iterator[DigitsClient]:
    """DIGITS' client on a fresh server for the module (inference workers where the module sets INFERENCE)."""
    client = start_digits(tmp_path_factory.mktemp("digits"), inference=False)
    yield client
    stop_digits(client)


@pytest.fixture
def gates(tmp_path) -> str:
    return str(tmp_path)
