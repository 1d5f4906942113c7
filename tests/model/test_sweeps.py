"""DIGITS 6's sweeps on New Model: "[0.01, 0.02]" in Base learning rate or Batch size makes one model per
combination, every combination checked before any job exists, each job named and grouped as DIGITS names them."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from digits.model.sweeps import MAX_SWEEP_JOBS
from tests.support import JSON
from tests.support.forms import model_form
from tests.support.waiting import LONG_S

CREATE = "/models/images/classification"


def models(workspace):
    return [j for j in workspace.store.all() if j.category == "model"]


def stop_all(client, recorder, job_ids) -> None:
    for job_id in job_ids:
        assert client.post(f"/models/{job_id}/abort", headers=JSON).status_code == 200
    for job_id in job_ids:
        assert recorder.wait_status(job_id, timeout=LONG_S) in ("Aborted", "Done")


def test_a_sweep_of_two_learning_rates_trains_two_models_to_done(signed_in, workspace, recorder, dataset):
    form = model_form(dataset.id, model_name="swept", train_epochs="1", learning_rate="[0.01, 0.02]")
    r = signed_in.post(CREATE + "/json", data=form)
    assert r.status_code == 200, r.get_data(as_text=True)
    jobs = r.get_json()["jobs"]
    assert [j["name"] for j in jobs] == ["swept learning_rate:0.01", "swept learning_rate:0.02"]
    assert [j["sweep"] for j in jobs] == [{"learning_rate": 0.01}, {"learning_rate": 0.02}]
    for j in jobs:
        assert recorder.wait_status(j["id"], timeout=LONG_S) == "Done"
    stored = [workspace.store.get(j["id"]) for j in jobs]
    assert [job.tasks[0].args["learning_rate"] for job in stored] == [0.01, 0.02]
    assert [job.form["learning_rate"] for job in stored] == ["0.01", "0.02"]  # a clone remakes that one model
    group = stored[0].extra["sweep_group"]
    assert group and all(job.extra["sweep_group"] == group for job in stored)
    for j in jobs:
        done = signed_in.get(f"/models/{j['id']}/json").get_json()
        assert done["status"] == "Done" and done["snapshots"]


def test_two_lists_make_every_combination_in_digits_order(signed_in, workspace, recorder, dataset):
    form = model_form(dataset.id, model_name="grid", learning_rate="[0.01, 0.02]", batch_size="[8, 10]")
    r = signed_in.post(CREATE, data=form, headers=JSON)
    assert r.status_code == 200, r.get_data(as_text=True)
    jobs = r.get_json()["jobs"]
    stop_all(signed_in, recorder, [j["id"] for j in jobs])
    assert [j["name"] for j in jobs] == [
        "grid learning_rate:0.01 batch_size:8",
        "grid learning_rate:0.02 batch_size:8",
        "grid learning_rate:0.01 batch_size:10",
        "grid learning_rate:0.02 batch_size:10",
    ]
    args = [workspace.store.get(j["id"]).tasks[0].args for j in jobs]
    assert [(a["learning_rate"], a["batch_size"]) for a in args] == [(0.01, 8), (0.02, 8), (0.01, 10), (0.02, 10)]
    assert len({j["sweep_group"] for j in jobs}) == 1
    assert len({workspace.store.get(j["id"]).extra["sweep_group"] for j in jobs}) == 1


def test_a_sweep_posted_as_a_form_goes_to_the_home_page(signed_in, workspace, recorder, dataset):
    r = signed_in.post(CREATE, data=model_form(dataset.id, batch_size="8, 10"))  # commas without brackets too
    assert r.status_code == 302 and urlsplit(r.headers["Location"]).path == "/"
    made = models(workspace)
    stop_all(signed_in, recorder, [j.id for j in made])
    assert sorted(j.name for j in made) == ["lenet batch_size:10", "lenet batch_size:8"]
    assert signed_in.get(r.headers["Location"]).status_code == 200


def test_a_list_of_one_value_is_a_plain_model(signed_in, workspace, recorder, dataset):
    r = signed_in.post(CREATE + "/json", data=model_form(dataset.id, learning_rate="[0.03]"))
    assert r.status_code == 200 and "jobs" not in r.get_json()
    job = workspace.store.get(r.get_json()["id"])
    stop_all(signed_in, recorder, [job.id])
    assert job.name == "lenet" and "sweep_group" not in job.extra and job.tasks[0].args["learning_rate"] == 0.03


def test_a_post_without_a_sweep_is_unchanged(signed_in, workspace, recorder, dataset):
    r = signed_in.post(CREATE, data=model_form(dataset.id, learning_rate="0.02"))
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/models/{models(workspace)[0].id}")
    r = signed_in.post(CREATE + "/json", data=model_form(dataset.id, model_name="two"))
    assert r.status_code == 200 and r.get_json()["name"] == "two"
    made = models(workspace)
    stop_all(signed_in, recorder, [j.id for j in made])
    assert all("sweep_group" not in j.extra and "sweep" not in j.extra for j in made)


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"learning_rate": "[0.01, 50]"}, "learning_rate", "50:"),  # one bad value among good ones
        ({"batch_size": "[8, 0]"}, "batch_size", "0:"),
        ({"batch_size": "[8, eight]"}, "batch_size", "eight:"),
        ({"learning_rate": "[0.01, , 0.02]"}, "learning_rate", "none of them empty"),
        ({"learning_rate": "[]"}, "learning_rate", "none of them empty"),
        ({"learning_rate": "[0.01, 0.02"}, "learning_rate", "in brackets"),
        ({"batch_size": "[8, 8]"}, "batch_size", "more than once"),
        ({"batch_size": "[8, 10]", "train_epochs": "0"}, "train_epochs", ""),  # another field, in every model
    ],
)
def test_a_bad_sweep_creates_nothing_and_names_the_field(signed_in, workspace, dataset, fields, field, words):
    form = model_form(dataset.id, **fields)
    r = signed_in.post(CREATE + "/json", data=form)
    assert r.status_code == 400, r.get_data(as_text=True)
    body = r.get_json()
    assert list(body["errors"]) == [field] and words in " ".join(body["errors"][field])
    label = {"learning_rate": "Base learning rate", "batch_size": "Batch size", "train_epochs": "Training epochs"}
    assert label[field] in body["error"]["message"]
    r = signed_in.post(CREATE, data=form)  # the form page, as a browser gets it
    assert r.status_code == 400 and label[field] in r.get_data(as_text=True)
    assert models(workspace) == []


def test_a_sweep_over_the_cap_is_refused_with_the_count(signed_in, workspace, dataset):
    rates = ", ".join(f"0.0{i}" for i in range(1, 10))  # 9 rates x 8 batch sizes = 72
    sizes = ", ".join(str(b) for b in range(2, 10))
    r = signed_in.post(
        CREATE + "/json", data=model_form(dataset.id, learning_rate=f"[{rates}]", batch_size=f"[{sizes}]")
    )
    assert r.status_code == 400
    message = r.get_json()["error"]["message"]
    assert f"at most {MAX_SWEEP_JOBS} models" in message and "would make 72" in message
    assert "Base learning rate" in message and "Batch size" in message
    assert models(workspace) == []


def test_the_curl_example_in_the_api_doc_makes_the_sweep_it_shows(signed_in, workspace, recorder, dataset):
    doc = (Path(__file__).parents[2] / "docs" / "API.md").read_text(encoding="utf-8")
    section = doc.split("## POST /models/images/classification (sweeps)", 1)[1].split("\n## ", 1)[0]
    command = section.split("```sh\n", 1)[1].split("\n#", 1)[0].replace("\\\n", " ")
    words = shlex.split(command)
    fields = dict(words[i + 1].split("=", 1) for i, w in enumerate(words) if w == "-d")
    assert "application/json" in command and words[words.index("-H") + 1] == "Accept: application/json"
    r = signed_in.post(CREATE, data={**fields, "dataset": dataset.id}, headers={"Accept": "application/json"})
    assert r.status_code == 200, r.get_data(as_text=True)
    jobs = r.get_json()["jobs"]
    stop_all(signed_in, recorder, [j["id"] for j in jobs])
    shown = section.split("```sh\n", 1)[1]
    assert len(jobs) == 4 and f'"name": "{jobs[0]["name"]}"' in shown and f'"name": "{jobs[1]["name"]}"' in shown
    assert jobs[0]["status"] in ("Waiting", "Running") and '"status": "Running"' in shown  # as it stood when sent
    assert json.loads(shown.split('"sweep": ', 1)[1].split("}", 1)[0] + "}") == jobs[0]["sweep"]
