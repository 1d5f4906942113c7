"""New Model as DIGITS 6 clients use it: a form posted with no Accept header is answered 302 to the new model's
page, and clone=<id> copies a model's settings with the posted fields over them (the jobs are aborted at once:
what is checked is the job each post makes, not its training)."""

from __future__ import annotations

import pytest

from digits.model.settings import TRAIN_TASK
from digits.model.standard import get_network
from tests.support import JSON
from tests.support.accounts import add_accounts
from tests.support.apps import sign_in
from tests.support.datasets import add_ready_dataset
from tests.support.forms import model_form
from tests.support.waiting import LONG_S, record

CREATE = "/models/images/classification"
NO_SUCH_JOB = "20000101-000000-dead"
# Settings a clone must carry over, as DIGITS' own clone test sets them, in our field names.
FIRST = {
    "train_epochs": "3",
    "snapshot_interval": "2",
    "learning_rate": "0.02",
    "solver_type": "ADAM",
    "batch_size": "9",
    "shuffle": "true",
    "lr_policy": "step",
    "lr_step_size": "33",
}


def stop(client, recorder, job_id: str) -> None:
    assert client.post(f"/models/{job_id}/abort", headers=JSON).status_code == 200
    assert recorder.wait_status(job_id, timeout=LONG_S) in ("Aborted", "Done")


def job_id_of(response) -> str:
    """The new job's id as DIGITS' tests read it: the last part of the redirect's Location."""
    assert response.status_code == 302, response.get_data(as_text=True)
    return response.headers["Location"].rstrip("/").split("/")[-1]


def test_a_model_form_posted_without_accept_redirects_and_clone_copies_its_settings(
    signed_in, workspace, recorder, dataset
):
    r = signed_in.post(CREATE, data=model_form(dataset.id, **FIRST))  # no Accept header, as DIGITS' tests post
    first = job_id_of(r)
    assert r.headers["Location"].endswith(f"/models/{first}")
    stop(signed_in, recorder, first)
    # Only clone and a new name: every other setting comes from the first model.
    second = job_id_of(signed_in.post(CREATE, data={"clone": first, "model_name": "lenet again"}))
    stop(signed_in, recorder, second)
    one, two = workspace.store.get(first), workspace.store.get(second)
    assert two.form == {**one.form, "model_name": "lenet again"} and "clone" not in two.form
    assert two.tasks[0].name == TRAIN_TASK and two.tasks[0].args == one.tasks[0].args
    assert two.extra["dataset_id"] == dataset.id
    settings = two.tasks[0].args
    assert settings["epochs"] == 3 and settings["learning_rate"] == 0.02 and settings["solver_type"] == "ADAM"
    # The JSON twin, clone in the query string as DIGITS also reads it: the posted fields win.
    r = signed_in.post(f"{CREATE}/json?clone={first}", data={"train_epochs": "5", "model_name": "five"})
    assert r.status_code == 200, r.get_data(as_text=True)
    third = workspace.store.get(r.get_json()["id"])
    stop(signed_in, recorder, third.id)
    assert third.form == {**one.form, "train_epochs": "5", "model_name": "five"}
    assert third.tasks[0].args == {**one.tasks[0].args, "epochs": 5}


def test_a_refused_model_form_without_accept_is_a_400_page_and_json_for_who_asks(signed_in, workspace, dataset):
    form = model_form(dataset.id, train_epochs="0")
    r = signed_in.post(CREATE, data=form)
    assert r.status_code == 400 and "<form" in r.get_data(as_text=True)
    r = signed_in.post(CREATE, data=form, headers=JSON)
    assert r.status_code == 400 and list(r.get_json()["errors"]) == ["train_epochs"]
    assert [j.id for j in workspace.store.all()] == [dataset.id]


@pytest.mark.parametrize("path", [CREATE, CREATE + "/json"])
def test_cloning_a_model_that_does_not_exist_is_404_naming_clone(signed_in, workspace, dataset, path):
    for missing in (NO_SUCH_JOB, dataset.id):  # a dataset is no model to copy
        r = signed_in.post(path, data=model_form(dataset.id, clone=missing), headers=JSON)
        assert r.status_code == 404 and r.get_json()["error"]["message"].startswith("clone: no model")
    r = signed_in.post(path, data={"clone": NO_SUCH_JOB})
    assert r.status_code == 404 and "clone: no model" in r.get_data(as_text=True)
    assert [j.id for j in workspace.store.all()] == [dataset.id]


def test_a_clone_of_a_python_network_needs_the_code_permission_as_the_original_did(make_app, shapes_dataset_dir):
    app = make_app(auth="password", allow_unisolated_code=True)  # judged by permission alone, Landlock or not
    add_accounts(app.extensions["digits"].accounts, "alice", "bob", code=["bob"])
    workspace = app.extensions["digits"]
    dataset = add_ready_dataset(workspace, shapes_dataset_dir)
    recorder = record(workspace)
    bob, alice = sign_in(app, "bob"), sign_in(app, "alice")
    python = get_network("lenet").text("torch") + "# bob's own\n"  # not one we ship: code he wrote
    r = bob.post(CREATE + "/json", data=model_form(dataset.id, method="custom", custom_network=python))
    assert r.status_code == 200, r.get_data(as_text=True)
    original = r.get_json()["id"]
    stop(bob, recorder, original)
    # alice may open bob's model, but not run its Python by cloning it.
    assert alice.get(f"/models/{original}/json").status_code == 200
    r = alice.post(CREATE, data={"clone": original, "model_name": "mine"})
    assert r.status_code == 403 and "digits.users grant NAME code" in r.get_data(as_text=True)
    assert {j.id for j in workspace.store.all()} == {dataset.id, original}
    # With a standard network posted over the clone's, the rest of bob's settings are hers to use.
    r = alice.post(CREATE, data={"clone": original, "method": "standard", "standard_networks": "lenet"})
    mine = workspace.store.get(job_id_of(r))
    stop(alice, recorder, mine.id)
    assert mine.owner == "alice" and mine.form["method"] == "standard" and mine.form["custom_network"] == python
