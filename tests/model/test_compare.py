"""Run comparison's page, JSON twin and CSV over model folders as training leaves them (job.json with its train task,
metrics.jsonl): which settings differ, the shared ones, final and best results with their epochs, the curves, a sweep's
group, unknown or wrong ids, and who may look."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

from digits.job import Job, Task, new_job_id
from digits.model import MODEL_TYPE
from digits.model.compare import MAX_MODELS
from digits.model.settings import TRAIN_TASK, TrainSettings
from digits.status import Status
from tests.support import JSON
from tests.support.accounts import add_accounts
from tests.support.apps import sign_in, with_settings


def add_model(
    workspace, dataset, name: str, metrics: list[tuple], *, owner="ann", status=Status.DONE, **settings
) -> Job:
    """A model job as a finished training leaves it: its train task's settings and the metrics it reported
    (phase, name, epoch, value)."""
    task = Task(TRAIN_TASK, "model.train", TrainSettings(**settings).to_dict(), {"cpu": 1})
    job = Job(
        id=new_job_id(),
        type=MODEL_TYPE,
        category="model",
        name=name,
        owner=owner,
        tasks=[task],
        extra={"dataset_id": dataset.id, "network_name": "lenet"},
    )
    job.history.set(status)
    workspace.store.add(job)
    with open(f"{workspace.store.job_dir(job.id)}/metrics.jsonl", "w") as fh:
        for phase, metric, epoch, value in metrics:
            fh.write(json.dumps({"phase": phase, "name": metric, "epoch": epoch, "value": value}) + "\n")
    workspace.store.save(job)
    return job


A_METRICS = [
    ("train", "loss", 0.5, 1.2),
    ("train", "loss", 1.0, 0.9),
    ("val", "loss", 1.0, 0.8),
    ("val", "accuracy", 1.0, 0.6),
    ("train", "loss", 1.5, 0.7),
    ("train", "loss", 2.0, 0.6),
    ("val", "loss", 2.0, 0.5),
    ("val", "accuracy", 2.0, 0.9),
    ("train", "loss", 3.0, 0.55),
    ("val", "loss", 3.0, 0.65),  # worse than epoch 2: final and best differ
    ("val", "accuracy", 3.0, 0.7),
]
B_METRICS = [("train", "loss", 1.0, 1.1), ("val", "loss", 1.0, 0.95), ("val", "accuracy", 1.0, 0.4)]


@pytest.fixture
def two(workspace, dataset):
    a = add_model(workspace, dataset, "lr 0.01", A_METRICS, epochs=3, learning_rate=0.01, batch_size=8)
    b = add_model(workspace, dataset, "lr 0.1", B_METRICS, epochs=3, learning_rate=0.1, batch_size=16, seed=3)
    return a, b


def test_the_settings_that_differ_and_each_models_results(signed_in, two, dataset):
    a, b = two
    r = signed_in.get(f"/models/compare/json?job_id={a.id}&job_id={b.id}&job_id={a.id}")  # a repeated id counts once
    assert r.status_code == 200, r.get_data(as_text=True)
    info = r.get_json()
    assert [m["id"] for m in info["models"]] == [a.id, b.id]
    assert [s["field"] for s in info["differing"]] == ["batch_size", "learning_rate", "seed"]
    assert [s["label"] for s in info["differing"]] == ["Batch size", "Base learning rate", "Random seed"]
    same = {s["field"]: s["value"] for s in info["same"]}
    assert same["dataset"] == dataset.name and same["network"] == "lenet" and same["epochs"] == 3
    assert "learning_rate" not in same and same["solver_type"] == "SGD"
    assert same["lr_policy"] == "step (Step size (% of training) 33, Gamma (step down) 0.1)"  # only its own
    ma, mb = info["models"]
    assert ma["settings"]["learning_rate"] == 0.01 and mb["settings"]["learning_rate"] == 0.1
    assert ma["best"]["val accuracy"] == {"value": 0.9, "epoch": 2.0}
    assert ma["best"]["val loss"] == {"value": 0.5, "epoch": 2.0}
    assert ma["final"]["val accuracy"]["value"] == 0.7 and ma["final"]["val loss"]["value"] == 0.65
    assert ma["final"]["train loss"] == {"value": 0.55, "epoch": 3.0}
    assert mb["best"]["val accuracy"] == {"value": 0.4, "epoch": 1.0}
    assert ma["curves"]["train/loss"]["points"] == [[0.5, 1.2], [1.0, 0.9], [1.5, 0.7], [2.0, 0.6], [3.0, 0.55]]
    assert ma["curves"]["val/accuracy"]["count"] == 3 and mb["curves"]["val/loss"]["points"] == [[1.0, 0.95]]
    assert ma["colour"] != mb["colour"] and ma["label"] == "lr 0.01"
    # ?points decimates as the model's metrics route does, and is checked the same way.
    r = signed_in.get(f"/models/compare/json?job_id={a.id}&job_id={b.id}&points=3")
    assert r.status_code == 400 and "Points" in r.get_json()["error"]["message"]


def test_the_page_shows_only_the_differing_settings_and_links_each_model(signed_in, two):
    a, b = two
    html = signed_in.get(f"/models/compare?job_id={b.id}&job_id={a.id}").get_data(as_text=True)
    headers = re.findall(r'data-sort="\d+" data-type="(\w+)">([^<]+)</button>', html)
    titles = [t for _, t in headers]
    assert titles[:6] == ["Model", "Status", "Progress", "Batch size", "Base learning rate", "Random seed"]
    assert "Lowest val loss epoch" in titles and "Momentum" not in titles
    assert dict((t, k) for k, t in headers)["Base learning rate"] == "number"
    rows = re.findall(r'<tr data-job-id="([^"]+)" data-status="Done"', html)
    assert rows == [b.id, a.id]  # in the order asked
    assert f'href="/models/{a.id}"' in html and "90.00%" in html  # a's best val accuracy
    assert re.search(r"The same for every model: Dataset <strong>shapes</strong>", html)
    assert f"/models/compare.csv?job_id={b.id}&amp;job_id={a.id}" in html


def test_the_csv_is_the_table(signed_in, two):
    a, b = two
    r = signed_in.get(f"/models/compare.csv?job_id={a.id}&job_id={b.id}")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert r.headers["Content-Disposition"] == 'attachment; filename="comparison.csv"'
    rows = list(csv.reader(io.StringIO(r.get_data(as_text=True))))
    assert rows[0] == [
        "id", "name", "status", "Batch size", "Base learning rate", "Random seed",
        "Best val accuracy", "Best val accuracy epoch", "Lowest val loss", "Lowest val loss epoch",
        "Final val accuracy", "Final val loss", "Final train loss",
    ]  # fmt: skip
    assert rows[1] == [a.id, "lr 0.01", "Done", "8", "0.01", "0", "0.9", "2.0", "0.5", "2.0", "0.7", "0.65", "0.55"]
    assert rows[2][:6] == [b.id, "lr 0.1", "Done", "16", "0.1", "3"]


def test_a_name_a_spreadsheet_would_run_is_quoted_and_a_model_without_results_shows_none(signed_in, workspace, dataset):
    policy = {"policy": "exp", "lr_exp_gamma": 0.9, "lr_step_size": 33.0}  # the form keeps every policy's fields
    a = add_model(workspace, dataset, "=HYPERLINK(1)", A_METRICS, solver_type="ADAM", lr_policy=policy)
    b = add_model(workspace, dataset, "queued", [], status=Status.WAITING)
    rows = list(csv.reader(io.StringIO(signed_in.get(f"/models/compare.csv?job_id={a.id}&job_id={b.id}").text)))
    assert rows[0][3:5] == ["Solver type", "Learning rate policy"] and rows[1][1] == "'=HYPERLINK(1)"
    assert rows[1][3:5] == ["ADAM", "exp (Gamma (exponential decay) 0.9)"]
    assert rows[2][2:] == ["Waiting", "SGD", "step (Step size (% of training) 33, Gamma (step down) 0.1)"] + [""] * 7
    info = signed_in.get(f"/models/compare/json?job_id={a.id}&job_id={b.id}").get_json()
    assert info["models"][1]["best"] == {"val accuracy": None, "val loss": None} and info["models"][1]["curves"] == {}
    html = signed_in.get(f"/models/compare?job_id={a.id}&job_id={b.id}").get_data(as_text=True)
    assert html.count('<td data-value="">—</td>') == 7  # b's results


def test_names_are_escaped_and_a_shared_name_is_told_apart_by_id(signed_in, workspace, dataset):
    a = add_model(workspace, dataset, "<b>x</b>", A_METRICS)
    b = add_model(workspace, dataset, "<b>x</b>", B_METRICS, learning_rate=0.2)
    info = signed_in.get(f"/models/compare/json?job_id={a.id}&job_id={b.id}").get_json()
    assert [m["label"] for m in info["models"]] == [f"<b>x</b> ({a.id})", f"<b>x</b> ({b.id})"]
    html = signed_in.get(f"/models/compare?job_id={a.id}&job_id={b.id}").get_data(as_text=True)
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html


def test_a_sweep_group_is_compared_with_any_other_model(signed_in, workspace, dataset, two):
    a, b = two
    members = []
    for index, rate in enumerate((0.01, 0.02)):
        job = add_model(workspace, dataset, f"sweep {rate}", B_METRICS, learning_rate=rate)
        job.extra.update(sweep_group="abc123", sweep={"learning_rate": rate}, sweep_index=index, sweep_search={})
        workspace.store.save(job)
        members.append(job.id)
    info = signed_in.get(f"/models/compare/json?job_id={a.id}&group=abc123").get_json()
    assert [m["id"] for m in info["models"]] == [a.id, *members]
    page = signed_in.get("/models/sweeps/abc123").get_data(as_text=True)
    assert 'href="/models/compare?group=abc123"' in page  # the sweep's page leads here


def test_wrong_or_missing_models_are_named(signed_in, two, dataset):
    a, _ = two
    cases = {
        "/models/compare/json": (400, "Models: choose the models to compare"),
        "/models/compare/json?job_id=": (400, "Models: choose the models to compare"),
        f"/models/compare/json?job_id={a.id}&job_id=20990101-000000-abcd": (404, "'20990101-000000-abcd'"),
        f"/models/compare/json?job_id={a.id}&job_id=../etc": (404, "'../etc'"),
        f"/models/compare/json?job_id={dataset.id}": (404, f"no model with id '{dataset.id}'"),
        "/models/compare/json?group=ffff": (404, "no sweep group 'ffff'"),
        "/models/compare.csv?job_id=20990101-000000-abcd": (404, "'20990101-000000-abcd'"),
    }
    for path, (status, message) in cases.items():
        r = signed_in.get(path, headers=JSON)
        assert r.status_code == status, (path, r.get_data(as_text=True))
        assert message in r.get_json()["error"]["message"], path
    many = "&".join(f"job_id=20990101-000000-{i:04x}" for i in range(MAX_MODELS + 1))
    r = signed_in.get(f"/models/compare/json?{many}")
    assert r.status_code == 400 and r.get_json()["errors"] == {
        "job_id": [f"at most {MAX_MODELS} models at once (51 chosen)"]
    }
    page = signed_in.get("/models/compare?job_id=20990101-000000-abcd", headers={"Accept": "text/html"})
    assert page.status_code == 404 and "Traceback" not in page.get_data(as_text=True)


@with_settings({"auth": "password"})
def test_on_a_team_server_members_compare_anyones_models_and_strangers_nothing(app, workspace, dataset):
    add_accounts(workspace.accounts, "alice", "bob")
    a = add_model(workspace, dataset, "alice's", A_METRICS, owner="alice")
    b = add_model(workspace, dataset, "bob's", B_METRICS, owner="bob", learning_rate=0.5)
    query = f"job_id={a.id}&job_id={b.id}"
    bob = sign_in(app, "bob")  # everyone signed in sees every job, so may compare any
    assert [m["owner"] for m in bob.get(f"/models/compare/json?{query}").get_json()["models"]] == ["alice", "bob"]
    assert bob.get(f"/models/compare.csv?{query}").status_code == 200
    stranger = app.test_client()
    for path in (f"/models/compare/json?{query}", f"/models/compare.csv?{query}"):
        assert stranger.get(path, headers=JSON).status_code == 401
    page = stranger.get(f"/models/compare?{query}")
    assert page.status_code == 302 and page.headers["Location"].startswith("/login")
    assert "alice's" not in page.get_data(as_text=True)


def test_the_home_page_lists_models_with_a_box_to_tick_for_compare(signed_in, two):
    a, b = two
    html = signed_in.get("/").get_data(as_text=True)
    assert '<form id="compare-form" action="/models/compare" method="get"' in html
    for job in (a, b):
        assert (
            f'type="checkbox" name="job_id" value="{job.id}" form="compare-form" aria-label="Compare {job.name}"'
            in html
        )
