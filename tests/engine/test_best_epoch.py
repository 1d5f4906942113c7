"""Best epoch and early stopping in the training loop: real training of a small network on generated images
(two classes of noisy 4x4 gray images), the best snapshot kept between intervals, the record, early stopping's
patience and min delta, and a resumed run that keeps tracking."""

from __future__ import annotations

import json
import os

import pytest
import torch
from torch import nn

from digits.engine.solvers import make_optimizer
from digits.engine.trainer import Split, Trainer
from digits.folders.model import BEST_RECORD, Snapshot, pick_snapshot, read_best_record
from digits.forms import FormReader
from digits.model.best_epoch import BestTracker, read_best_epoch
from digits.model.lr_policy import LRPolicy


class Sink:
    def __init__(self):
        self.metrics, self.logs, self.snapshots = [], [], []

    def progress(self, fraction, epoch=None): ...
    def lr(self, value, epoch=None): ...

    def snapshot(self, epoch, path):
        self.snapshots.append((epoch, path))

    def log(self, message, level="info"):
        self.logs.append(message)

    def metric(self, phase, name, value, epoch=None, iteration=None):
        self.metrics.append((phase, name, value, epoch))

    def val(self, name):
        return [(epoch, value) for phase, n, value, epoch in self.metrics if phase == "val" and n == name]


class Tiny:
    def __init__(self):
        self.module = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 2))

    def heads(self, x):
        return [(self.module(x), 1.0)]

    def logits(self, x):
        return self.module(x)


def blobs(n: int, seed: int) -> Split:
    """Two classes of 4x4 images whose pixels center on -0.5 or +0.5, with noise wide enough to overlap."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.randn(n, 1, 4, 4, generator=g) * 1.5 + (y.float() - 0.5)[:, None, None, None]
    return Split(x, y, transformed=True)


def trainer(folder, *, epochs=8, lr=0.05, best=None, val_interval=0.5, snapshot_interval=2.0, sink=None) -> Trainer:
    torch.manual_seed(0)
    os.makedirs(folder, exist_ok=True)
    model = Tiny()
    return Trainer(
        model=model,
        optimizer=make_optimizer(framework="torch", solver_type="SGD", param_groups=model.module.parameters(), lr=lr),
        policy=LRPolicy.from_form("fixed", lr, 1),
        train=blobs(64, 1),
        val=blobs(64, 2),
        train_transform=None,
        val_transform=None,
        sink=sink or Sink(),
        epochs=epochs,
        batch_size=8,
        val_interval=val_interval,
        snapshot_interval=snapshot_interval,
        snapshot_dir=str(folder),
        best=best,
    )


def snapshot_files(folder) -> list[str]:
    return sorted(f for f in os.listdir(folder) if f.startswith("snapshot_epoch_"))


def test_the_best_validation_keeps_a_snapshot_between_intervals_and_only_the_latest_such(tmp_path):
    run = trainer(tmp_path, best=BestTracker("val_loss"))
    assert run.run() == "Done"
    losses = run.sink.val("loss")
    assert len(losses) == 16  # every half epoch
    best_epoch, best_value = min(losses, key=lambda p: p[1])
    record = read_best_record(str(tmp_path))
    assert record["value"] == pytest.approx(best_value) and record["epoch"] == pytest.approx(best_epoch)
    assert record["monitor"] == "val_loss" and record["stopped"] is None
    best_name = record["snapshot"]
    on_disk = snapshot_files(tmp_path)
    interval_names = [f"snapshot_epoch_{e}.pt" for e in (2, 4, 6, 8)]
    # The intervals' snapshots, plus the best when it fell between them: never an older, beaten best.
    assert on_disk == sorted(set(interval_names) | {best_name})
    # Every new best between intervals was written once and is gone once beaten.
    written = [path for _, path in run.sink.snapshots]
    extra = [p for p in written if p not in interval_names]
    assert len(extra) >= 2, written  # at least one best between intervals was beaten by a later one
    if best_name not in interval_names:
        assert extra[-1] == best_name
    assert all(p not in on_disk for p in extra if p != best_name)
    state = torch.load(tmp_path / best_name, weights_only=True)
    assert state["best"]["snapshot"] == best_name and state["best"]["value"] == pytest.approx(best_value)


def test_accuracy_is_watched_for_its_highest(tmp_path):
    run = trainer(tmp_path, best=BestTracker("val_accuracy"), epochs=4)
    assert run.run() == "Done"
    accuracies = run.sink.val("accuracy")
    top = max(value for _, value in accuracies)
    first_top = next(epoch for epoch, value in accuracies if value == top)  # a tie later does not improve
    record = read_best_record(str(tmp_path))
    assert record["mode"] == "max" and record["value"] == top and record["epoch"] == pytest.approx(first_top)


def test_a_run_whose_learning_rate_is_far_too_high_stops_early(tmp_path):
    sink = Sink()
    best = BestTracker("val_loss", early_stopping=True, patience=3, min_delta=0.001)
    run = trainer(tmp_path, lr=2.0, epochs=30, val_interval=1.0, snapshot_interval=1.0, best=best, sink=sink)
    assert run.run() == "Done"
    assert run.iteration < run.max_iter
    losses = sink.val("loss")
    stop_epoch = losses[-1][0]
    record = read_best_record(str(tmp_path))
    assert record["stopped"]["epoch"] == stop_epoch
    # Exactly `patience` validations after the best, none of them better by more than min delta.
    after = [v for e, v in losses if e > record["epoch"]]
    assert len(after) == 3 and all(v >= record["value"] - 0.001 for v in after)
    reason = record["stopped"]["reason"]
    assert reason.startswith(f"stopped early at epoch {int(stop_epoch)}: val loss did not improve by 0.001 for 3 ")
    assert reason.endswith(f"best {record['value']:.4g} at epoch {int(record['epoch'])}")
    assert reason in sink.logs
    assert f"snapshot_epoch_{int(stop_epoch)}.pt" in snapshot_files(tmp_path)


def test_patience_and_min_delta():
    t = BestTracker("val_loss", early_stopping=True, patience=2, min_delta=0.1)
    assert t.update({"loss": 1.0}, 1) is True
    assert t.update({"loss": 0.95}, 2) is False  # better, but not by more than 0.1: the best stays 1.0
    assert t.value == 1.0 and t.since == 1 and not t.should_stop()
    assert t.update({"loss": 0.85}, 3) is True  # 0.15 better: a new best, the count starts again
    assert t.since == 0 and t.epoch == 3
    assert t.update({"accuracy": 0.5}, 4) is None  # no monitored value: nothing counts
    assert t.update({"loss": 0.9}, 5) is False and t.update({"loss": 0.76}, 6) is False
    assert t.should_stop()
    assert t.stop_reason(6) == (
        "stopped early at epoch 6: val loss did not improve by 0.1 for 2 validations; best 0.85 at epoch 3"
    )
    watching = BestTracker("val_accuracy", patience=1)
    assert watching.update({"accuracy": 0.5}, 1) and not watching.update({"accuracy": 0.5}, 2)
    assert not watching.should_stop()  # without "Stop early" a run goes on
    with pytest.raises(ValueError):
        BestTracker("train_loss")


def test_the_form_fields():
    r = FormReader({"early_stopping": "on", "early_stopping_patience": "4", "early_stopping_min_delta": "0.01"})
    assert read_best_epoch(r) == {"best_monitor": "val_loss", "early_stopping": True, "patience": 4, "min_delta": 0.01}
    r = FormReader({"best_monitor": "val_accuracy"})
    read = read_best_epoch(r)
    assert read == {"best_monitor": "val_accuracy", "early_stopping": False, "patience": 5, "min_delta": 0}
    r = FormReader({"best_monitor": "train", "early_stopping_patience": "0", "early_stopping_min_delta": "-1"})
    read_best_epoch(r)
    assert set(r.errors) == {"best_monitor", "early_stopping_patience", "early_stopping_min_delta"}
    assert r.errors.labels["early_stopping_patience"] == "Patience (validations)"


def test_a_resumed_run_keeps_tracking_the_best(tmp_path):
    whole = trainer(tmp_path / "whole", best=BestTracker("val_loss", early_stopping=True, patience=4), epochs=12)
    whole.run()
    calls = {"n": 0}

    def abort_after_some():
        calls["n"] += 1
        return calls["n"] > 30  # past a few validations, before the end

    first = trainer(tmp_path / "parts", best=BestTracker("val_loss", early_stopping=True, patience=4), epochs=12)
    assert first.run(abort_after_some) == "Aborted"
    latest = max(snapshot_files(tmp_path / "parts"), key=lambda n: float(n[15:-3]))
    second = trainer(tmp_path / "parts", best=BestTracker("val_loss", early_stopping=True, patience=4), epochs=12)
    second.load_snapshot(str(tmp_path / "parts" / latest))
    assert second.best.value == first.best.value and second.best.since == first.best.since
    assert second.run() == "Done"
    with open(tmp_path / "whole" / BEST_RECORD) as a, open(tmp_path / "parts" / BEST_RECORD) as b:
        assert json.load(a) == json.load(b)
    assert second.iteration == whole.iteration


def test_no_epoch_asked_means_the_best_snapshot_and_a_junk_record_is_ignored(tmp_path):
    snaps = [Snapshot(1, "snapshot_epoch_1.pt"), Snapshot(2, "snapshot_epoch_2.pt", best=True)]
    snaps.append(Snapshot(3, "snapshot_epoch_3.pt"))
    assert pick_snapshot(snaps, None).epoch == 2 and pick_snapshot(snaps, "3").epoch == 3
    assert pick_snapshot([s for s in snaps if not s.best], "").epoch == 3  # no best: the latest
    for junk in ("[]", '{"monitor": "val_loss", "value": "low", "epoch": 1}', '{"monitor": "rm -rf", "value": 1}'):
        (tmp_path / BEST_RECORD).write_text(junk)
        assert read_best_record(str(tmp_path)) is None
    (tmp_path / BEST_RECORD).write_text('{"monitor": "val_loss", "value": 0.5, "epoch": 2, "snapshot": "../x.pt"}')
    assert read_best_record(str(tmp_path))["snapshot"] is None  # only a snapshot file name of this folder
