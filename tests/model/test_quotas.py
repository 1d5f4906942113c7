"""Quotas on what one model may cost: refused at submit (a Caffe network's size is known there), in the training
worker once a PyTorch network is built, and before each snapshot is written."""

from __future__ import annotations

import math
import os

import pytest
import torch
from torch import nn

from digits.engine.networks import size_problem_before_building
from digits.engine.solvers import make_optimizer
from digits.engine.trainer import Split, Trainer
from digits.job import Job, new_job_id
from digits.model import MODEL_TYPE
from digits.model.lr_policy import LRPolicy
from digits.model.quotas import snapshot_count
from digits.model.standard import get_network
from digits.status import Status
from digits.worker_runtime import TaskFailed
from tests.model.test_standard_networks import ListSink
from tests.support import JSON
from tests.support.apps import with_settings
from tests.support.forms import model_form
from tests.support.imagegen import make_shapes
from tests.support.live import LiveServer
from tests.support.waiting import LONG_S

LENET = get_network("lenet").text("caffe")
HUGE_LENET = LENET.replace("num_output: 500", "num_output: 1000000")
# A custom PyTorch network of 78,500 + 303 parameters on the 28x28 gray shapes.
TORCH_NET = """\
import torch
from torch import nn

BATCH_SIZE = 16


def build_model(*, num_classes, channels, height, width):
    {probe}
    return nn.Sequential(
        nn.Flatten(), nn.Linear(channels * height * width, 100), nn.ReLU(), nn.Linear(100, num_classes)
    )
"""


def create(client, dataset_id, **fields):
    form = model_form(dataset_id, **{"model_name": "m", "framework": "caffe", "random_seed": None, **fields})
    return client.post("/models/images/classification/json", data=form)


def models(workspace) -> list:
    return [j for j in workspace.store.all() if j.category == "model"]


# ---- at submit --------------------------------------------------------------------------------------------


def test_epochs_above_the_servers_maximum_name_the_setting(signed_in, workspace, dataset):
    r = create(signed_in, dataset.id, train_epochs="10001")
    assert r.status_code == 400
    body = r.get_json()
    assert body["errors"]["train_epochs"] == ["At most 10,000 epochs on this server (setting max_epochs)."]
    assert "max_epochs" in body["error"]["message"]
    assert models(workspace) == []


@with_settings({"max_epochs": 5})
def test_the_epoch_limit_is_the_servers_setting(signed_in, dataset):
    assert create(signed_in, dataset.id, train_epochs="5").status_code == 200
    r = create(signed_in, dataset.id, train_epochs="6")
    assert r.status_code == 400 and "At most 5 epochs" in r.get_json()["errors"]["train_epochs"][0]


def test_a_snapshot_interval_below_the_minimum_names_the_setting(signed_in, workspace, dataset):
    r = create(signed_in, dataset.id, snapshot_interval="0.000001")
    assert r.status_code == 400
    message = r.get_json()["errors"]["snapshot_interval"][0]
    assert "At least 0.01 epochs" in message and "min_snapshot_interval" in message
    assert create(signed_in, dataset.id, snapshot_interval="0.01").status_code == 200


@pytest.mark.parametrize("method", ["custom", "previous"])
def test_an_absurd_num_output_is_refused_naming_the_layer(signed_in, workspace, dataset, method):
    form = {"method": "custom", "custom_network": HUGE_LENET}
    if method == "previous":
        # A model finished before this server had quotas (or on another server) starts a new one with its network.
        form = {"method": "previous", "previous_networks": _previous_model(workspace, dataset, HUGE_LENET)}
    r = create(signed_in, dataset.id, **form)
    assert r.status_code == 400, r.get_data(as_text=True)
    field = "custom_network" if method == "custom" else "previous_networks"
    message = r.get_json()["errors"][field][0]
    # ip1 sees the dataset's real 1x28x28 images: 50x4x4 = 800 inputs.
    assert message.startswith("layer ip1 has 801,000,000 parameters (num_output 1000000, line 93)"), message
    assert "this server allows 250,000,000 per model (setting max_model_params)" in message
    assert [j for j in models(workspace) if j.name == "m"] == []


def _previous_model(workspace, dataset, text: str) -> str:
    job = Job(
        id=new_job_id(),
        type=MODEL_TYPE,
        category="model",
        name="old",
        owner="ann",
        extra={"framework": "caffe", "network_file": "network.prototxt", "dataset_id": dataset.id},
    )
    job.history.set(Status.DONE)
    workspace.store.add(job)
    with open(os.path.join(workspace.store.job_dir(job.id), "network.prototxt"), "w") as fh:
        fh.write(text)
    workspace.store.save(job)
    return job.id


@with_settings({"max_model_params": 420_000})
def test_a_network_of_many_layers_over_the_limit_names_its_largest(signed_in, dataset):
    r = create(signed_in, dataset.id)  # LeNet: 427,573 parameters on 28x28 images, 3 classes
    message = r.get_json()["errors"]["standard_networks"][0]
    assert message.startswith("the network has 427,573 parameters and layer ip1 has 400,500 parameters"), message
    assert "this server allows 420,000 per model (setting max_model_params)" in message


@with_settings({"max_snapshot_bytes": 20 * 1024 * 1024})
def test_snapshots_past_the_quota_are_refused_with_an_interval_that_fits(signed_in, workspace, dataset):
    # LeNet with SGD: 427,573 weights + as many momentum values, about 3.3 MiB a snapshot.
    r = create(signed_in, dataset.id, train_epochs="30", snapshot_interval="1")
    assert r.status_code == 400
    message = r.get_json()["errors"]["snapshot_interval"][0]
    assert "training would write 30 snapshots of about 3.3 MiB each" in message, message
    assert "this server allows 20 MiB of snapshots per model (setting max_snapshot_bytes)" in message
    assert "take fewer snapshots with a snapshot interval of at least 5 epochs" in message
    # Adam keeps two values per weight: the same plan takes more.
    adam = create(signed_in, dataset.id, train_epochs="30", snapshot_interval="5", solver_type="ADAM")
    assert "6 snapshots of about 4.9 MiB each" in adam.get_json()["errors"]["snapshot_interval"][0]
    assert models(workspace) == []
    assert create(signed_in, dataset.id, train_epochs="30", snapshot_interval="5").status_code == 200


@with_settings({"max_snapshot_bytes": 1024 * 1024})
def test_a_network_whose_one_snapshot_is_past_the_quota_is_refused_on_the_network(signed_in, dataset):
    r = create(signed_in, dataset.id)
    message = r.get_json()["errors"]["standard_networks"][0]
    assert "one snapshot of this network takes about 3.3 MiB" in message and "use a smaller network" in message


def test_the_quotas_travel_to_the_worker_in_the_task_args(signed_in, workspace, dataset):
    job_id = create(signed_in, dataset.id).get_json()["id"]
    args = workspace.store.get(job_id).tasks[0].args
    assert args["max_model_params"] == 250_000_000 and args["max_snapshot_bytes"] == 20 * 1024**3


def test_the_form_shows_the_limits_next_to_their_fields(signed_in):
    html = signed_in.get("/models/images/classification/new", headers={"Accept": "text/html"}).get_data(as_text=True)
    assert "At most 10,000 on this server." in html and 'max="10000"' in html
    assert "At least 0.01 on this server." in html and 'min="0.01"' in html


# ---- on the real server -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("quotas")
    server = LiveServer(root / "jobs").start()
    http = server.sign_in()
    make_shapes(str(root / "images"), per_class=10, size=(24, 40))
    server.dataset_id = server.folder_dataset(http, root / "images", folder_pct_val="25")
    server.http = http
    yield server
    server.stop()


def test_the_real_server_answers_an_absurd_num_output_with_400(server):
    form = {
        "dataset": server.dataset_id,
        "model_name": "huge",
        "method": "custom",
        "framework": "caffe",
        "custom_network": HUGE_LENET,
    }
    r = server.http.post(server.url + "/models/images/classification/json", data=form, headers=JSON)
    assert r.status_code == 400, r.text
    body = r.json()
    assert "layer ip1 has 801,000,000 parameters (num_output 1000000" in body["errors"]["custom_network"][0]
    assert "max_model_params" in body["error"]["message"]
    names = [m["name"] for m in server.http.get(server.url + "/index/json").json()["models"]]
    assert "huge" not in names


# ---- in the training worker -------------------------------------------------------------------------------


@with_settings({"max_model_params": 1000})
@pytest.mark.parametrize(
    "probe",
    [
        "pass",  # sized on the meta device, nothing allocated
        "assert torch.ones(1).item() == 1",  # cannot run on the meta device: sized once really built
    ],
)
def test_a_pytorch_network_over_the_limit_fails_in_the_worker_before_training(
    signed_in, workspace, recorder, dataset, probe
):
    text = TORCH_NET.format(probe=probe)
    r = create(signed_in, dataset.id, framework="torch", method="custom", custom_network=text)
    assert r.status_code == 200, r.get_data(as_text=True)  # a Python network's size is unknown until built
    job_id = r.get_json()["id"]
    assert recorder.wait_status(job_id, timeout=LONG_S) == "Error"
    status = signed_in.get(f"/models/{job_id}/status").get_json()
    assert status["error"] == (
        "layer 1 has 78,500 parameters (Linear, weight 100x784); this server allows 1,000 per model "
        "(setting max_model_params)"
    )
    job_dir = workspace.store.job_dir(job_id)
    assert not [f for f in os.listdir(job_dir) if f.startswith("snapshot_")]
    assert not os.path.exists(os.path.join(job_dir, "metrics.jsonl"))


@with_settings({"max_snapshot_bytes": 700_000})
def test_a_pytorch_network_whose_snapshots_would_pass_the_quota_fails_before_training(
    signed_in, workspace, recorder, dataset
):
    # 78,803 weights + as many momentum values: about 636 KiB a snapshot; 4 epochs of 6 iterations write 4.
    text = TORCH_NET.format(probe="pass")
    r = create(signed_in, dataset.id, framework="torch", method="custom", custom_network=text, train_epochs="4")
    job_id = r.get_json()["id"]
    assert recorder.wait_status(job_id, timeout=LONG_S) == "Error"
    error = signed_in.get(f"/models/{job_id}/status").get_json()["error"]
    assert error.startswith("training would write 4 snapshots of about 635.6 KiB each"), error
    assert "(setting max_snapshot_bytes): take fewer snapshots with a snapshot interval of at least 4 epochs" in error
    assert not [f for f in os.listdir(workspace.store.job_dir(job_id)) if f.startswith("snapshot_")]


def test_a_pytorch_network_is_sized_without_allocating_its_weights():
    # 4 TB of weights: sized on the meta device, so the worker answers instead of running out of memory.
    huge = TORCH_NET.format(probe="pass").replace("channels * height * width, 100", "10**6, 10**6")
    problem = size_problem_before_building(huge, "torch", input_shape=(1, 28, 28), num_classes=3, limit=10**9)
    assert problem == (
        "layer 1 has 1,000,001,000,000 parameters (Linear, weight 1000000x1000000); this server allows "
        "1,000,000,000 per model (setting max_model_params)"
    )
    # Code that needs real tensors cannot be sized that way: the worker checks it once really built.
    real_only = TORCH_NET.format(probe="assert torch.ones(1).item() == 1")
    assert size_problem_before_building(real_only, "torch", input_shape=(1, 28, 28), num_classes=3, limit=1) is None


# ---- before each snapshot ---------------------------------------------------------------------------------


class Tiny:
    """A real small model for the training loop: 4x4 gray images, 2 classes, `hidden` wide (1,024: 4 MiB with
    momentum, which outweighs the few KiB torch.save adds)."""

    def __init__(self, hidden: int):
        self.module = nn.Sequential(nn.Flatten(), nn.Linear(16, hidden), nn.Linear(hidden, 2))

    def heads(self, x):
        return [(self.module(x), 1.0)]

    def logits(self, x):
        return self.module(x)


def tiny_trainer(tmp_path, *, epochs=3, interval=1.0, batch_size=4, images=8, limit=None, hidden=8) -> Trainer:
    torch.manual_seed(0)
    os.makedirs(tmp_path, exist_ok=True)
    model = Tiny(hidden)
    x = torch.rand(images, 1, 4, 4)
    y = torch.arange(images) % 2
    return Trainer(
        model=model,
        optimizer=make_optimizer(framework="torch", solver_type="SGD", param_groups=model.module.parameters(), lr=0.1),
        policy=LRPolicy.from_form("fixed", 0.1, 1),
        train=Split(x, y, transformed=True),
        val=None,
        train_transform=None,
        val_transform=None,
        sink=ListSink(),
        epochs=epochs,
        batch_size=batch_size,
        snapshot_interval=interval,
        snapshot_dir=str(tmp_path),
        max_snapshot_bytes=limit,
    )


def snapshot_files(tmp_path) -> list[str]:
    return sorted(f for f in os.listdir(tmp_path) if f.startswith("snapshot_epoch_"))


def test_a_snapshot_that_would_pass_the_quota_is_not_written(tmp_path):
    probe = tiny_trainer(tmp_path / "probe", epochs=1, hidden=1024)
    assert probe.run() == "Done"
    size = os.path.getsize(tmp_path / "probe" / "snapshot_epoch_1.pt")
    trainer = tiny_trainer(tmp_path / "run", limit=int(2.5 * size), hidden=1024)
    with pytest.raises(TaskFailed) as failed:
        trainer.run()
    assert str(failed.value).startswith("the snapshot at epoch 3 was not written: this model's snapshots would take")
    assert "(setting max_snapshot_bytes); train it again with a larger snapshot interval or fewer epochs" in str(
        failed.value
    )
    assert snapshot_files(tmp_path / "run") == ["snapshot_epoch_1.pt", "snapshot_epoch_2.pt"]
    # Written again under the same name (an abort right after a snapshot), a snapshot replaces itself.
    trainer.iteration = 4
    assert trainer.save_snapshot(4) == str(tmp_path / "run" / "snapshot_epoch_2.pt")


@pytest.mark.parametrize(
    "epochs, interval, images, batch_size",
    [(3, 1.0, 8, 4), (2, 0.3, 40, 4), (5, 2.0, 8, 4), (1, 0.01, 8, 4), (4, 0.4, 24, 4), (3, 7.0, 8, 2)],
)
def test_the_planned_snapshot_count_is_what_the_loop_writes(tmp_path, epochs, interval, images, batch_size):
    trainer = tiny_trainer(tmp_path, epochs=epochs, interval=interval, images=images, batch_size=batch_size)
    planned = trainer.snapshots_left()
    assert planned == snapshot_count(epochs, interval, math.ceil(images / batch_size))
    assert trainer.run() == "Done"
    assert len(snapshot_files(tmp_path)) == planned
