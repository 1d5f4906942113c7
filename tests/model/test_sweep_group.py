"""A sweep's group page and its JSON twin: the models one form made, their swept settings, status, final and best
results and their validation curves; linked from each model's page and the home console; seen by whoever may see
the models."""

from __future__ import annotations

import re

import pytest

from tests.support import JSON
from tests.support.accounts import add_accounts
from tests.support.apps import sign_in, with_settings
from tests.support.forms import model_form
from tests.support.waiting import LONG_S

CREATE = "/models/images/classification/json"
SEARCH = {
    "sweep_random": "true",
    "sweep_count": "2",
    "sweep_seed": "5",
    "sweep_lr_min": "0.005",
    "sweep_lr_max": "0.05",
}


def make_sweep(client, dataset_id: str, **fields) -> list[dict]:
    r = client.post(CREATE, data=model_form(dataset_id, model_name="tiny", train_epochs="1", **{**SEARCH, **fields}))
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()["jobs"]


@pytest.mark.slow
def test_the_group_shows_each_model_with_its_results_and_curves(signed_in, workspace, recorder, dataset):
    jobs = make_sweep(signed_in, dataset.id)
    for j in jobs:
        assert recorder.wait_status(j["id"], timeout=LONG_S) == "Done"
    group = jobs[0]["sweep_group"]

    r = signed_in.get(f"/models/sweeps/{group}/json")
    assert r.status_code == 200
    info = r.get_json()
    assert info["group"] == group and info["name"] == "tiny" and info["fields"] == ["learning_rate"]
    assert info["search"]["method"] == "random" and info["search"]["seed"] == 5
    assert [m["id"] for m in info["models"]] == [j["id"] for j in jobs]
    for m, j in zip(info["models"], jobs, strict=True):
        assert m["status"] == "Done" and m["sweep"] == j["sweep"] and m["name"] == j["name"]
        metrics = signed_in.get(f"/models/{m['id']}/json").get_json()["metrics"]
        accuracy = [v for _, v in metrics["val"]["accuracy"]]
        losses = [v for _, v in metrics["val"]["loss"]]
        assert m["best"]["val accuracy"]["value"] == max(accuracy)
        assert m["best"]["val loss"]["value"] == min(losses)
        assert m["best"]["val accuracy"]["epoch"] == 1.0  # one epoch, validated at its end
        assert m["final"]["val accuracy"]["value"] == accuracy[-1]
        assert m["final"]["train loss"]["value"] == metrics["train"]["loss"][-1][1]
        curve = m["curves"]["val/loss"]
        assert curve["count"] == len(losses) and [v for _, v in curve["points"]] == losses
        assert m["curves"]["val/accuracy"]["points"][-1] == [1.0, accuracy[-1]]

    page = signed_in.get(f"/models/sweeps/{group}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Random search, seed 5: 2 models" in html and "log-uniform from 0.005 to 0.05" in html
    rows = re.findall(r'<tr data-job-id="([^"]+)" data-status="([^"]+)"', html)
    assert rows == [(j["id"], "Done") for j in jobs]
    for m in info["models"]:
        best = m["best"]["val accuracy"]["value"]
        assert f"{best * 100:.2f}%" in html and f'href="/models/{m["id"]}"' in html
    # Each model's page, and the home console, lead to the group.
    link = f'href="/models/sweeps/{group}"'
    assert link in signed_in.get(f"/models/{jobs[0]['id']}").get_data(as_text=True)
    assert signed_in.get("/").get_data(as_text=True).count(link) == 2
    # ?points decimates the curves, checked as the model's metrics route checks it.
    assert signed_in.get(f"/models/sweeps/{group}/json?points=5").status_code == 400
    assert "Points" in signed_in.get(f"/models/sweeps/{group}/json?points=5").get_json()["error"]["message"]


def test_an_unknown_group_is_404_and_a_plain_model_has_no_group_link(signed_in, workspace, recorder, dataset):
    for path in ("/models/sweeps/0123456789ab", "/models/sweeps/0123456789ab/json", "/models/sweeps/NOT-HEX/json"):
        r = signed_in.get(path, headers=JSON)
        assert r.status_code == 404 and "no sweep group" in r.get_json()["error"]["message"]
    r = signed_in.post(CREATE, data=model_form(dataset.id))
    job_id = r.get_json()["id"]
    assert signed_in.post(f"/models/{job_id}/abort", headers=JSON).status_code == 200
    recorder.wait_status(job_id, timeout=LONG_S)
    assert "/models/sweeps/" not in signed_in.get(f"/models/{job_id}").get_data(as_text=True)


@with_settings({"auth": "password"})
def test_on_a_team_server_members_see_a_group_and_strangers_do_not(app, workspace, recorder, dataset):
    add_accounts(workspace.accounts, "alice", "bob")
    alice = sign_in(app, "alice")
    jobs = make_sweep(alice, dataset.id, sweep_count="2")
    for j in jobs:
        assert alice.post(f"/models/{j['id']}/abort", headers=JSON).status_code == 200
    for j in jobs:
        assert recorder.wait_status(j["id"], timeout=LONG_S) in ("Aborted", "Done")
    group = jobs[0]["sweep_group"]
    bob = sign_in(app, "bob")  # everyone signed in sees every job, so every group
    assert bob.get(f"/models/sweeps/{group}").status_code == 200
    assert [m["owner"] for m in bob.get(f"/models/sweeps/{group}/json").get_json()["models"]] == ["alice", "alice"]
    stranger = app.test_client()
    assert stranger.get(f"/models/sweeps/{group}/json", headers=JSON).status_code == 401
    page = stranger.get(f"/models/sweeps/{group}")
    assert page.status_code == 302 and page.headers["Location"].startswith("/login")
    assert "tiny" not in page.get_data(as_text=True)  # nothing of the models shown
