"""Model jobs end to end: the form, the real training worker, snapshots, abort, resume, kill -9."""

import os
import signal
from pathlib import Path

import psutil
import pytest
import torch

from digits.status import Status
from tests.support.datasets import add_ready_dataset, create_db
from tests.support.forms import model_form
from tests.support.imagegen import make_shapes
from tests.support.waiting import LONG_S

# Every test here trains LeNet in a real worker.
pytestmark = pytest.mark.slow


def create(client, form):
    return client.post("/models/images/classification/json", data=form)


def final_weights(workspace, job):
    job_dir = workspace.store.job_dir(job.id)
    last = max(job.tasks[0].snapshots, key=lambda s: s["epoch"])
    return torch.load(os.path.join(job_dir, last["path"]), weights_only=True)["model"]


@pytest.mark.parametrize("framework", ["torch", "caffe"])
def test_lenet_trains_reports_metrics_and_snapshots(signed_in, workspace, recorder, dataset, framework):
    r = create(signed_in, model_form(dataset.id, framework=framework, train_epochs="8"))
    assert r.status_code == 200, r.get_data(as_text=True)
    job_id = r.get_json()["id"]
    assert recorder.wait_status(job_id, timeout=LONG_S) == "Done", signed_in.get(f"/models/{job_id}/status").get_json()
    js = signed_in.get(f"/models/{job_id}/json").get_json()
    assert js["snapshots"] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert js["framework"] == framework and js["dataset_id"] == dataset.id
    assert js["image dimensions"] == [28, 28, 1]
    val_acc = js["metrics"]["val"]["accuracy"]
    assert len(val_acc) == 8 and val_acc[-1][0] == 8
    assert val_acc[-1][1] >= 0.9  # three easy shapes
    train_loss = js["metrics"]["train"]["loss"]
    assert len(train_loss) >= 8 and train_loss[-1][1] < train_loss[0][1]
    assert js["metrics"]["train"]["learning_rate"][0][1] == pytest.approx(0.01)
    assert js["metrics"]["train"]["learning_rate"][-1][1] == pytest.approx(0.0001)  # two steps of 0.1
    page = signed_in.get(f"/models/{job_id}").get_data(as_text=True)
    assert "val accuracy" in page and "epoch 8" in page


def test_abort_snapshots_and_resume_ends_with_the_same_weights(signed_in, workspace, recorder, dataset):
    form = model_form(dataset.id, batch_size="4", train_epochs="3")
    straight = create(signed_in, {**form, "model_name": "straight"}).get_json()["id"]
    assert recorder.wait_status(straight, timeout=LONG_S) == "Done"

    interrupted = create(signed_in, {**form, "model_name": "interrupted"}).get_json()["id"]
    recorder.wait_for(lambda e, p: e == "task_progress" and p["job_id"] == interrupted and p["progress"] > 0.2, LONG_S)
    assert signed_in.post(f"/models/{interrupted}/abort").status_code == 200
    assert recorder.wait_status(interrupted, timeout=LONG_S) == "Aborted"
    job = workspace.store.get(interrupted)
    assert job.tasks[0].snapshots, "abort wrote no snapshot"
    stopped_at = max(s["epoch"] for s in job.tasks[0].snapshots)
    assert stopped_at < 3

    recorder.events.clear()
    r = signed_in.post(f"/models/{interrupted}/resume")
    assert r.status_code == 200
    assert recorder.wait_status(interrupted, timeout=LONG_S) == "Done"
    log = Path(workspace.store.job_dir(interrupted), "train.log").read_text()
    assert "resumed from snapshot_epoch_" in log
    a = final_weights(workspace, workspace.store.get(straight))
    b = final_weights(workspace, job)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_worker_killed_by_the_os_marks_error_and_resume_continues(signed_in, workspace, recorder, dataset):
    job_id = create(signed_in, model_form(dataset.id, batch_size="4", train_epochs="4")).get_json()["id"]
    recorder.wait_for(lambda e, p: e == "task_progress" and p["job_id"] == job_id and p["progress"] >= 0.3, LONG_S)
    workers = [p for p in psutil.Process().children(recursive=True) if job_id in " ".join(p.cmdline())]
    assert workers
    for p in workers:
        p.send_signal(signal.SIGKILL)
    assert recorder.wait_status(job_id, timeout=LONG_S) == "Error"
    status = signed_in.get(f"/models/{job_id}/status").get_json()
    assert "killed by SIGKILL" in status["error"] and status["log_tail"]
    assert signed_in.get("/index/json").status_code == 200  # the server carries on
    recorder.events.clear()
    assert signed_in.post(f"/models/{job_id}/resume").status_code == 200
    assert recorder.wait_status(job_id, timeout=LONG_S) == "Done"
    assert workspace.store.get(job_id).tasks[0].history.current == Status.DONE


def test_a_diverging_run_stops_with_a_clear_message(signed_in, recorder, dataset):
    form = model_form(dataset.id, learning_rate="10", momentum="0.99", use_mean="none", train_epochs="20")
    job_id = create(signed_in, form).get_json()["id"]
    assert recorder.wait_status(job_id, timeout=LONG_S) == "Error"
    error = signed_in.get(f"/models/{job_id}/status").get_json()["error"]
    assert "loss became NaN at iteration" in error and "try a lower learning rate" in error


def test_a_split_streamed_from_lmdb_trains_exactly_like_one_in_memory(
    signed_in, workspace, recorder, dataset, monkeypatch
):
    form = model_form(dataset.id, batch_size="8", train_epochs="2")
    in_memory = create(signed_in, {**form, "model_name": "in-memory"}).get_json()["id"]
    assert recorder.wait_status(in_memory, timeout=LONG_S) == "Done"
    monkeypatch.setenv("DIGITS_PRELOAD_LIMIT_BYTES", "0")  # the worker inherits it: nothing fits in memory
    streamed = create(signed_in, {**form, "model_name": "streamed"}).get_json()["id"]
    assert recorder.wait_status(streamed, timeout=LONG_S) == "Done"
    a = final_weights(workspace, workspace.store.get(in_memory))
    b = final_weights(workspace, workspace.store.get(streamed))
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_training_starts_from_pretrained_weights_loaded_safely(signed_in, workspace, recorder, dataset, tmp_path):
    first = create(signed_in, model_form(dataset.id, train_epochs="1")).get_json()["id"]
    assert recorder.wait_status(first, timeout=LONG_S) == "Done"
    weights = os.path.join(workspace.store.job_dir(first), "snapshot_epoch_1.pt")
    evil = tmp_path / "evil.pt"
    import pickle

    class Boom:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    evil.write_bytes(pickle.dumps({"model": Boom()}))
    bad = create(signed_in, model_form(dataset.id, train_epochs="1", custom_network_snapshot=str(evil))).get_json()
    assert recorder.wait_status(bad["id"], timeout=LONG_S) == "Error"
    assert not (tmp_path / "pwned").exists()  # weights_only refused to run the pickle's code
    good = create(signed_in, model_form(dataset.id, train_epochs="1", custom_network_snapshot=weights)).get_json()
    assert recorder.wait_status(good["id"], timeout=LONG_S) == "Done"
    log = Path(workspace.store.job_dir(good["id"]), "train.log").read_text()
    assert "pretrained weights: 8 tensors loaded" in log


def test_a_fractional_snapshot_interval_names_every_snapshot_apart(signed_in, workspace, recorder, tmp_path):
    # 225 training images, batch 1, a snapshot every 0.25 epochs: every 56 iterations, so the fourth snapshot falls
    # at epoch 224/225 = 0.9956, just short of the end. It once became "snapshot_epoch_1..pt" and ended in Error.
    make_shapes(str(tmp_path / "src"), per_class=100, size=(24, 32))
    dataset = add_ready_dataset(workspace, create_db(tmp_path / "dataset", tmp_path / "src"))
    assert len(Path(workspace.store.job_dir(dataset.id), "train.txt").read_text().splitlines()) == 225
    form = model_form(dataset.id, batch_size="1", train_epochs="1", snapshot_interval="0.25")
    job_id = create(signed_in, form).get_json()["id"]
    assert recorder.wait_status(job_id, timeout=LONG_S) == "Done", signed_in.get(f"/models/{job_id}/status").get_json()
    names = sorted(os.listdir(workspace.store.job_dir(job_id)))
    labels = ["0.25", "0.5", "0.75", "0.9956", "1"]
    assert [n for n in names if n.startswith("snapshot_")] == sorted(f"snapshot_epoch_{e}.pt" for e in labels)
    assert {f"deploy_epoch_{e}.ts" for e in labels} <= set(names)
    assert signed_in.get(f"/models/{job_id}/json").get_json()["snapshots"][-2:] == [0.9956, 1]
