"""Starting from a previous model (method=previous) at the snapshot DIGITS' field `<id>-snapshot` names: an epoch,
0 (no weights), -1 (the weights that model itself started from); an epoch it has no snapshot for is refused."""

import os
import shlex
from pathlib import Path

import pytest
import torch

from tests.support.forms import model_form
from tests.support.waiting import LONG_S

# Real training workers.
pytestmark = pytest.mark.slow

ROUTE = "/models/images/classification/json"


def previous(dataset_id: str, prev_id: str, snapshot: str | None, **fields) -> dict:
    return model_form(
        dataset_id,
        method="previous",
        previous_networks=prev_id,
        standard_networks=None,
        train_epochs="1",
        **({f"{prev_id}-snapshot": snapshot} if snapshot is not None else {}),
        **fields,
    )


def train(client, recorder, form) -> str:
    r = client.post(ROUTE, data=form)
    assert r.status_code == 200, r.get_data(as_text=True)
    job_id = r.get_json()["id"]
    assert recorder.wait_status(job_id, timeout=LONG_S) == "Done", client.get(f"/models/{job_id}/status").get_json()
    return job_id


def pretrained(workspace, job_id: str) -> str | None:
    return workspace.store.get(job_id).tasks[0].args.get("pretrained")


def log(workspace, job_id: str) -> str:
    return Path(workspace.store.job_dir(job_id), "train.log").read_text()


def weights(path: str) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def test_a_chosen_snapshot_none_and_the_previous_models_own_weights(signed_in, workspace, recorder, dataset):
    first = train(signed_in, recorder, model_form(dataset.id, train_epochs="2", learning_rate="0.05"))
    first_dir = workspace.store.job_dir(first)
    epoch_1 = os.path.join(first_dir, "snapshot_epoch_1.pt")
    # Two epochs apart, the snapshots differ, so which one was loaded shows in the weights.
    a, b = weights(epoch_1), weights(os.path.join(first_dir, "snapshot_epoch_2.pt"))
    assert max((a[k] - b[k]).abs().max().item() for k in a) > 1e-3

    # Epoch 1, not the latest (2): DIGITS' <id>-snapshot.
    second = train(signed_in, recorder, previous(dataset.id, first, "1", learning_rate="1e-9"))
    assert pretrained(workspace, second) == os.path.join("..", first, "snapshot_epoch_1.pt")
    assert "pretrained weights: 8 tensors loaded from snapshot_epoch_1.pt" in log(workspace, second)
    # A learning rate of 1e-9 leaves the loaded weights all but as they were: the new model's are epoch 1's.
    trained = weights(os.path.join(workspace.store.job_dir(second), "snapshot_epoch_1.pt"))
    assert all(torch.allclose(trained[k], a[k], atol=1e-5) for k in a)

    # -1: the weights the previous model itself started from (second started from first's epoch 1).
    third = train(signed_in, recorder, previous(dataset.id, second, "-1"))
    assert pretrained(workspace, third) == os.path.join("..", first, "snapshot_epoch_1.pt")
    assert "pretrained weights: 8 tensors loaded from snapshot_epoch_1.pt" in log(workspace, third)

    # -1 on a model that started from nothing, and 0: no weights (from scratch); no value: the latest snapshot.
    fourth = train(signed_in, recorder, previous(dataset.id, first, "-1"))
    assert pretrained(workspace, fourth) is None
    assert "pretrained weights" not in log(workspace, fourth)
    scratch = train(signed_in, recorder, previous(dataset.id, first, "0"))
    assert pretrained(workspace, scratch) is None
    assert "pretrained weights" not in log(workspace, scratch)
    latest = train(signed_in, recorder, previous(dataset.id, first, None))
    assert pretrained(workspace, latest) == os.path.join("..", first, "snapshot_epoch_2.pt")
    assert "pretrained weights: 8 tensors loaded from snapshot_epoch_2.pt" in log(workspace, latest)


def test_an_epoch_without_a_snapshot_is_a_400_naming_the_field(signed_in, workspace, recorder, dataset):
    first = train(signed_in, recorder, model_form(dataset.id, train_epochs="1"))
    before = {job.id for job in workspace.store.all()}
    for wanted in ("5", "1.5", "soon"):
        r = signed_in.post(ROUTE, data=previous(dataset.id, first, wanted))
        assert r.status_code == 400, r.get_data(as_text=True)
        errors = r.get_json()["errors"]
        assert list(errors) == [f"{first}-snapshot"], errors
        message = errors[f"{first}-snapshot"][0]
        if wanted == "soon":
            assert "Expected an epoch" in message
        else:
            assert f"no snapshot at epoch {wanted}" in message and "snapshots at epochs 1" in message, message
    assert {job.id for job in workspace.store.all()} == before  # no job was made


def test_the_curl_example_in_the_api_doc_starts_from_the_epoch_it_names(signed_in, workspace, recorder, dataset):
    doc = (Path(__file__).parents[2] / "docs" / "API.md").read_text(encoding="utf-8")
    section = doc.split("## POST /models/images/classification with method=previous", 1)[1].split("\n## ", 1)[0]
    words = shlex.split(section.split("```sh\n", 1)[1].split("\n```", 1)[0].replace("\\\n", " "))
    fields = dict(words[i + 1].split("=", 1) for i, w in enumerate(words) if w == "-d")
    shown = fields["previous_networks"]
    first = train(signed_in, recorder, model_form(dataset.id, train_epochs="2"))
    form = {k.replace(shown, first): v.replace(shown, first) for k, v in fields.items()}
    second = train(signed_in, recorder, {**form, "dataset": dataset.id})
    epoch = fields[f"{shown}-snapshot"]
    assert pretrained(workspace, second) == os.path.join("..", first, f"snapshot_epoch_{epoch}.pt")
