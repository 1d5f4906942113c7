"""Every registered standard network, in every framework it is written for, builds, runs forward and backward,
and (for the big ones) trains a few iterations on tiny data through the real training loop."""

import math

import pytest
import torch

from digits.engine.augment import BatchTransform
from digits.engine.networks import build_network, network_crop
from digits.engine.solvers import make_optimizer
from digits.engine.trainer import Split, Trainer
from digits.model.lr_policy import LRPolicy
from digits.model.standard import get_network, list_networks

CASES = [(net.name, fw) for net in list_networks() for fw in net.frameworks]
SIZES = {"lenet": (1, 28, 28), "resnet18": (3, 32, 32), "resnet50": (3, 32, 32)}


def shape_for(name: str, framework: str) -> tuple[int, int, int]:
    crop = network_crop(get_network(name).text(framework), framework)
    return SIZES.get(name, (3, crop or 64, crop or 64))


class ListSink:
    def __init__(self):
        self.metrics = []

    def metric(self, phase, name, value, epoch=None, iteration=None):
        self.metrics.append((phase, name, value))

    def __getattr__(self, name):
        return lambda *a, **k: None


def test_the_registry_covers_both_frameworks():
    names = {name for name, _ in CASES}
    assert {"lenet", "alexnet", "googlenet", "resnet18", "resnet50"} <= names
    assert {fw for _, fw in CASES} == {"caffe", "torch"}


@pytest.mark.parametrize("name, framework", CASES)
def test_builds_and_runs_forward_and_backward(name, framework):
    torch.manual_seed(0)
    shape = shape_for(name, framework)
    net = build_network(get_network(name).text(framework), framework, input_shape=shape, num_classes=7)
    x = torch.randn(2, *shape)
    heads = net.heads(x)
    assert heads[0][0].shape == (2, 7)
    loss = sum(w * torch.nn.functional.cross_entropy(logits, torch.tensor([1, 3])) for logits, w in heads)
    loss.backward()
    groups = net.param_groups()
    trainable = [p for g in groups for p in g["params"]]
    assert trainable and all(p.grad is not None for p in trainable)
    net.module.eval()
    with torch.no_grad():
        assert net.logits(x).shape == (2, 7)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, framework", [("alexnet", "caffe"), ("googlenet", "caffe"), ("resnet18", "torch"), ("googlenet", "torch")]
)
def test_big_networks_train_a_few_iterations_on_tiny_data(name, framework):
    torch.manual_seed(0)
    shape = shape_for(name, framework)
    net = build_network(get_network(name).text(framework), framework, input_shape=shape, num_classes=3)
    images = torch.randint(0, 256, (6, *shape), dtype=torch.uint8)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    tf = BatchTransform(
        in_shape=shape, mean=None, crop=None, scale=net.input_scale, mirror=net.mirror, aug=None, train=True
    )
    before = [p.detach().clone() for g in net.param_groups() for p in g["params"]]
    opt = make_optimizer(
        framework=framework,
        solver_type="SGD",
        param_groups=net.param_groups(),
        lr=0.001,
        momentum=0.9,
        weight_decay=1e-4,
    )
    sink = ListSink()
    trainer = Trainer(
        model=net,
        optimizer=opt,
        policy=LRPolicy.from_form("fixed", 0.001, 2),
        train=Split(images, labels),
        val=Split(images, labels),
        train_transform=tf,
        val_transform=tf,
        sink=sink,
        epochs=2,
        batch_size=3,
        snapshot_interval=100,
        snapshot_dir=None,
    )
    trainer.save_snapshot = lambda it: None
    assert trainer.run() == "Done"
    losses = [v for phase, n, v in sink.metrics if (phase, n) == ("train", "loss")]
    assert losses and all(math.isfinite(v) for v in losses)
    assert any(n == "accuracy" for _, n, _ in sink.metrics)
    after = [p.detach() for g in net.param_groups() for p in g["params"]]
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
