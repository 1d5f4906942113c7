"""The training loop on generic data: the standard MLP over a generic dataset folder learns two blobs (accuracy)
and a linear target (MSE), through the same Trainer the worker runs."""

from __future__ import annotations

import numpy as np
import torch

from digits.engine.generic_data import build_generic_network, load_generic_split
from digits.engine.solvers import make_optimizer
from digits.engine.trainer import Trainer
from digits.folders.dataset import write_labels
from digits.folders.generic import GenericDataset, features_name, open_generic, targets_name, write_meta
from digits.model.lr_policy import LRPolicy
from digits.model.standard import get_network, list_networks
from tests.support.generic_data import blobs, linear


class Sink:
    def __init__(self):
        self.metrics = []

    def progress(self, fraction, epoch=None): ...
    def lr(self, value, epoch=None): ...
    def snapshot(self, epoch, path): ...
    def log(self, message, level="info"): ...

    def metric(self, phase, name, value, epoch=None, iteration=None):
        self.metrics.append((phase, name, value))


def folder(path, x, y, problem, labels=()):
    n = int(len(x) * 0.8)
    for split, rows in (("train", slice(0, n)), ("val", slice(n, None))):
        np.save(path / features_name(split), x[rows])
        np.save(path / targets_name(split), y[rows])
    if labels:
        write_labels(str(path), list(labels))
    mean, std = x[:n].mean(axis=0), x[:n].std(axis=0)
    write_meta(
        str(path),
        GenericDataset(str(path), problem, [f"x{i}" for i in range(x.shape[1])], "t", mean.tolist(), std.tolist()),
    )
    return open_generic(str(path))


def train(dataset, epochs=20, lr=0.05, options=None):
    torch.manual_seed(0)
    net = build_generic_network(
        get_network("mlp").text("torch"),
        "torch",
        num_features=dataset.num_features,
        num_outputs=dataset.num_outputs,
        options=options,
    )
    sink = Sink()
    policy = LRPolicy.from_form("fixed", lr, 1)
    opt = make_optimizer(
        framework="torch",
        solver_type="ADAM",
        param_groups=net.param_groups(),
        lr=lr,
        momentum=0.9,
        weight_decay=0.0,
        rms_decay=0.99,
    )
    identity = lambda x: x  # noqa: E731 - the rows are normalized once, when loaded
    trainer = Trainer(
        model=net,
        optimizer=opt,
        policy=policy,
        sink=sink,
        epochs=epochs,
        batch_size=32,
        train=load_generic_split(dataset, "train", "torch", torch.device("cpu")),
        val=load_generic_split(dataset, "val", "torch", torch.device("cpu")),
        train_transform=identity,
        val_transform=identity,
        regression=dataset.problem == "regression",
        snapshot_dir=dataset.path,  # the test's own folder (the default, the working directory, is the checkout's)
    )
    assert trainer.run() == "Done"
    return net, trainer, sink


def test_the_mlp_is_a_generic_standard_network_only():
    assert "mlp" in [n.name for n in list_networks("torch", data="generic")]
    assert "mlp" not in [n.name for n in list_networks("torch")]


def test_the_mlp_separates_two_blobs(tmp_path):
    x, names = blobs(300, features=4)
    y = (names == "right").astype(np.int64)
    dataset = folder(tmp_path, x, y, "classification", ["left", "right"])
    net, trainer, sink = train(dataset, epochs=5, options={"hidden_sizes": [16, 8], "dropout": 0.1})
    assert [m.out_features for m in net.module if isinstance(m, torch.nn.Linear)] == [16, 8, 2]
    val = dict((name, v) for phase, name, v in sink.metrics if phase == "val")
    assert val["accuracy"] >= 0.98, sink.metrics


def test_the_mlp_fits_a_linear_target(tmp_path):
    x, y, _ = linear(400, features=3)
    dataset = folder(tmp_path, x, y, "regression")
    _, _, sink = train(dataset, epochs=40, lr=0.01)
    val = [(name, v) for phase, name, v in sink.metrics if phase == "val"]
    final = dict(val[-2:])
    assert set(final) == {"loss", "mae"}
    assert final["loss"] < 0.05 * float(np.var(y)), final  # explains >95% of the target's variance
    assert val[-2][1] < val[0][1]
