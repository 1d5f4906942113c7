"""Solvers: each update rule against hand-written float arithmetic, per-group multipliers, and exact resume.

The parameter is trained on loss = sum(0.5 * a * w^2), so the gradient is a * w and every reference below
is a few lines of plain Python.
"""

from __future__ import annotations

import io
import math

import pytest
import torch

from digits.engine.solvers import FRAMEWORKS, SOLVER_TYPES, make_optimizer, set_learning_rate

W0 = [1.0, -2.0]
CURVATURE = [1.0, 3.0]
LRS = [0.1, 0.1, 0.05]  # the last step lowers the lr, as a schedule would


def train(framework, solver_type, lrs=LRS, *, w0=W0, curvature=CURVATURE, **kw) -> list[float]:
    w = torch.tensor(w0, dtype=torch.float64, requires_grad=True)
    a = torch.tensor(curvature, dtype=torch.float64)
    opt = make_optimizer(framework=framework, solver_type=solver_type, param_groups=[w], lr=lrs[0], **kw)
    for lr in lrs:
        set_learning_rate(opt, lr)
        opt.zero_grad()
        (0.5 * a * w * w).sum().backward()
        opt.step()
    return w.detach().tolist()


# Plain-float references, one parameter element at a time: (w0, a, lrs) -> w after len(lrs) steps.


def caffe_sgd(w, a, lrs, m=0.9, wd=0.0):
    v = 0.0
    for lr in lrs:
        v = m * v + lr * (a * w + wd * w)
        w -= v
    return w


def torch_sgd(w, a, lrs, m=0.9, wd=0.0):
    buf = None
    for lr in lrs:
        g = a * w + wd * w
        buf = g if buf is None else m * buf + g
        w -= lr * buf
    return w


def caffe_nesterov(w, a, lrs, m=0.9):
    v = 0.0
    for lr in lrs:
        v_prev, v = v, m * v + lr * a * w
        w -= (1 + m) * v - m * v_prev
    return w


def torch_nesterov(w, a, lrs, m=0.9):
    buf = None
    for lr in lrs:
        g = a * w
        buf = g if buf is None else m * buf + g
        w -= lr * (g + m * buf)
    return w


def adagrad(w, a, lrs, d=1e-8):
    h = 0.0
    for lr in lrs:
        g = a * w
        h += g * g
        w -= lr * g / (math.sqrt(h) + d)
    return w


def rmsprop(w, a, lrs, r=0.99, d=1e-8):
    h = 0.0
    for lr in lrs:
        g = a * w
        h = r * h + (1 - r) * g * g
        w -= lr * g / (math.sqrt(h) + d)
    return w


def adadelta(w, a, lrs, m=0.9, d=1e-6):
    h = h2 = 0.0
    for lr in lrs:
        g = a * w
        h = m * h + (1 - m) * g * g
        u = g * math.sqrt(h2 + d) / math.sqrt(h + d)
        h2 = m * h2 + (1 - m) * u * u
        w -= lr * u
    return w


def caffe_adam(w, a, lrs, b1=0.9, b2=0.999, eps=1e-8):
    m = v = 0.0
    for t, lr in enumerate(lrs, start=1):
        g = a * w
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        w -= lr * math.sqrt(1 - b2**t) / (1 - b1**t) * m / (math.sqrt(v) + eps)
    return w


def torch_adam(w, a, lrs, b1=0.9, b2=0.999, eps=1e-8):
    m = v = 0.0
    for t, lr in enumerate(lrs, start=1):
        g = a * w
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        w -= lr / (1 - b1**t) * m / (math.sqrt(v) / math.sqrt(1 - b2**t) + eps)
    return w


REFERENCES = {
    ("caffe", "SGD"): caffe_sgd,
    ("torch", "SGD"): torch_sgd,
    ("caffe", "NESTEROV"): caffe_nesterov,
    ("torch", "NESTEROV"): torch_nesterov,
    ("caffe", "ADAGRAD"): adagrad,
    ("torch", "ADAGRAD"): adagrad,
    ("caffe", "RMSPROP"): rmsprop,
    ("torch", "RMSPROP"): rmsprop,
    ("caffe", "ADADELTA"): adadelta,
    ("torch", "ADADELTA"): adadelta,
    ("caffe", "ADAM"): caffe_adam,
    ("torch", "ADAM"): torch_adam,
}


def expected(reference, lrs=LRS, **kw) -> list[float]:
    return [reference(w, a, lrs, **kw) for w, a in zip(W0, CURVATURE, strict=True)]


@pytest.mark.parametrize(("framework", "solver_type"), sorted(REFERENCES))
def test_update_rule_matches_the_formula(framework, solver_type):
    got = train(framework, solver_type)
    assert got == pytest.approx(expected(REFERENCES[framework, solver_type]), rel=1e-12, abs=1e-14)
    assert got != W0


def test_caffe_sgd_keeps_the_lr_inside_momentum():
    # w=1, a=1, momentum 0.9, lr 0.1, 0.1, then 0.05. Caffe: v=0.1 w=0.9; v=0.18 w=0.72; v=0.198 w=0.522.
    # torch: v=1 w=0.9; v=1.8 w=0.72; v=2.34 w=0.72-0.05*2.34=0.603: the new lr also scales old momentum.
    assert train("caffe", "SGD", w0=[1.0], curvature=[1.0]) == pytest.approx([0.522], abs=1e-12)
    assert train("torch", "SGD", w0=[1.0], curvature=[1.0]) == pytest.approx([0.603], abs=1e-12)
    # With a constant lr the two agree.
    assert train("caffe", "SGD", [0.1] * 3) == pytest.approx(train("torch", "SGD", [0.1] * 3), abs=1e-12)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_weight_decay_is_l2_added_to_the_gradient(framework):
    reference = caffe_sgd if framework == "caffe" else torch_sgd
    got = train(framework, "SGD", weight_decay=0.1)
    assert got == pytest.approx(expected(reference, wd=0.1), rel=1e-12)
    assert got != pytest.approx(train(framework, "SGD"), rel=1e-6)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_param_groups_scale_lr_and_decay(framework):
    w = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([-2.0], dtype=torch.float64, requires_grad=True)
    groups = [{"params": [w]}, {"params": [b], "lr_mult": 2.0, "decay_mult": 0.0}]
    opt = make_optimizer(framework=framework, solver_type="SGD", param_groups=groups, lr=0.1, weight_decay=0.5)
    assert [(g["lr"], g["weight_decay"]) for g in opt.param_groups] == [(0.1, 0.5), (0.2, 0.0)]
    for lr in (0.1, 0.05):
        set_learning_rate(opt, lr)
        opt.zero_grad()
        (0.5 * w * w + 0.5 * b * b).sum().backward()
        opt.step()
    assert [g["lr"] for g in opt.param_groups] == [0.05, 0.1]
    reference = caffe_sgd if framework == "caffe" else torch_sgd
    assert w.item() == pytest.approx(reference(1.0, 1.0, [0.1, 0.05], wd=0.5), rel=1e-12)
    assert b.item() == pytest.approx(reference(-2.0, 1.0, [0.2, 0.1], wd=0.0), rel=1e-12)


def _step(opt, params, lr):
    set_learning_rate(opt, lr)
    opt.zero_grad()
    w, b = params
    (0.5 * torch.tensor([1.0, 3.0], dtype=torch.float64) * w * w).sum().add(0.5 * 2.0 * (b * b).sum()).backward()
    opt.step()


def _model(values):
    w, b = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in values)
    return [w, b], [{"params": [w]}, {"params": [b], "lr_mult": 2.0, "decay_mult": 0.0}]


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("solver_type", SOLVER_TYPES)
def test_state_dict_resumes_exactly(framework, solver_type):
    lrs = [0.01, 0.01, 0.008, 0.005, 0.003]
    kw = {"framework": framework, "solver_type": solver_type, "lr": 0.01, "weight_decay": 0.01}

    params, groups = _model([[1.0, -2.0], [0.5]])
    opt = make_optimizer(param_groups=groups, **kw)
    for lr in lrs:
        _step(opt, params, lr)
    straight = [p.detach().clone() for p in params]

    params, groups = _model([[1.0, -2.0], [0.5]])
    opt = make_optimizer(param_groups=groups, **kw)
    for lr in lrs[:3]:
        _step(opt, params, lr)
    snapshot = io.BytesIO()
    torch.save({"params": [p.detach() for p in params], "optimizer": opt.state_dict()}, snapshot)
    snapshot.seek(0)
    saved = torch.load(snapshot)

    params, groups = _model([p.tolist() for p in saved["params"]])
    opt = make_optimizer(param_groups=groups, **kw)
    opt.load_state_dict(saved["optimizer"])
    assert [g["lr_mult"] for g in opt.param_groups] == [1.0, 2.0]
    for lr in lrs[3:]:
        _step(opt, params, lr)
    for resumed, expected_value in zip(params, straight, strict=True):
        assert torch.equal(resumed.detach(), expected_value)


def test_defaults_follow_each_solver():
    w = torch.zeros(1, requires_grad=True)
    assert make_optimizer(framework="torch", solver_type="rmsprop", param_groups=[w], lr=0.1).defaults["momentum"] == 0
    assert make_optimizer(framework="torch", solver_type="sgd", param_groups=[w], lr=0.1).defaults["momentum"] == 0.9
    assert make_optimizer(framework="torch", solver_type="AdaDelta", param_groups=[w], lr=1).defaults["eps"] == 1e-6
    assert make_optimizer(framework="caffe", solver_type="ADADELTA", param_groups=[w], lr=1).defaults["delta"] == 1e-6
    assert make_optimizer(framework="caffe", solver_type="ADAM", param_groups=[w], lr=1).defaults["delta"] == 1e-8
    nesterov = make_optimizer(framework="torch", solver_type="Nesterov", param_groups=[w], lr=0.1)
    assert isinstance(nesterov, torch.optim.SGD) and nesterov.defaults["nesterov"]


def test_bad_arguments():
    w = torch.zeros(1, requires_grad=True)
    with pytest.raises(ValueError) as e:
        make_optimizer(framework="torch", solver_type="LBFGS", param_groups=[w], lr=0.1)
    for name in SOLVER_TYPES:
        assert name in str(e.value)
    with pytest.raises(ValueError, match="framework"):
        make_optimizer(framework="tensorflow", solver_type="SGD", param_groups=[w], lr=0.1)
    with pytest.raises(ValueError, match="momentum"):
        make_optimizer(framework="caffe", solver_type="RMSPROP", param_groups=[w], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="lr_mult"):
        make_optimizer(framework="caffe", solver_type="SGD", param_groups=[{"params": [w], "lr": 1.0}], lr=0.1)
