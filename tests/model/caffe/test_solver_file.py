"""A Caffe solver.prototxt fills the New Model form (W2-E item 6): its learning rate, momentum, weight decay, solver
type and seed as they are, its schedule as percents of training (the inverse of what a job does with the form,
digits/model/lr_policy.py), and notes for what a solver holds that the form takes elsewhere or not at all."""

from __future__ import annotations

import io

import pytest

from digits.model.caffe.solver import SolverFileError, solver_form
from digits.model.lr_policy import FORM_DEFAULTS, LRPolicy

# BVLC Caffe's examples/mnist/lenet_solver.prototxt, as Caffe ships it (BSD-2).
LENET_SOLVER = """# The train/test net protocol buffer definition
net: "examples/mnist/lenet_train_test.prototxt"
test_iter: 100
test_interval: 500
base_lr: 0.01
momentum: 0.9
weight_decay: 0.0005
lr_policy: "inv"
gamma: 0.0001
power: 0.75
display: 100
max_iter: 10000
snapshot: 5000
snapshot_prefix: "examples/mnist/lenet"
solver_mode: GPU
"""

FORMS = FORM_DEFAULTS  # a DIGITS form's schedule per policy (its defaults), percents landing between iterations


def test_caffes_lenet_solver_fills_the_form_and_trains_on_the_same_schedule():
    fields, notes = solver_form(LENET_SOLVER)
    assert fields == {
        "learning_rate": "0.01",
        "momentum": "0.9",
        "weight_decay": "0.0005",
        "lr_policy": "inv",
        "lr_inv_gamma": "0.01",
        "lr_inv_power": "0.75",
    }
    # The job the form makes for the solver's own 10,000 iterations has Caffe's schedule.
    policy = LRPolicy.from_form("inv", 0.01, 10000, lr_inv_gamma=0.01, lr_inv_power=0.75)
    assert policy.gamma == pytest.approx(0.0001) and policy.power == 0.75
    text = " ".join(notes)
    assert "max_iter is 10,000 iterations" in text and "snapshot every 5,000 iterations" in text
    assert "test_iter is not used" in text and "solver_mode is not used" in text


@pytest.mark.parametrize("policy", sorted(FORMS))
def test_each_schedule_comes_back_as_the_form_that_made_it(policy):
    """form -> Caffe solver fields (what a job writes) -> solver.prototxt -> form -> the same lr at every step."""
    max_iter = 1200
    made = LRPolicy.from_form(policy, 0.05, max_iter, **FORMS[policy])
    lines = [
        f"{k}: {v}" if k != "lr_policy" else f'lr_policy: "{v}"'
        for k, v in made.caffe_solver_fields().items()
        if k != "stepvalue"
    ]
    lines += [f"stepvalue: {v}" for v in made.caffe_solver_fields().get("stepvalue", [])]
    fields, _ = solver_form("\n".join(lines))
    assert fields["lr_policy"] == policy and float(fields["learning_rate"]) == 0.05
    params = {k: v for k, v in fields.items() if k.startswith("lr_") and k != "lr_policy"}
    again = LRPolicy.from_form(policy, 0.05, max_iter, **params)
    for it in (0, 1, 199, 396, 397, 600, 1019, 1020, 1199):
        assert again.lr_at(it) == pytest.approx(made.lr_at(it), rel=1e-5), it


def test_solver_types_by_name_and_by_the_old_enum():
    assert solver_form('type: "Adam"')[0]["solver_type"] == "ADAM"
    assert solver_form("solver_type: NESTEROV")[0]["solver_type"] == "NESTEROV"
    fields, notes = solver_form('type: "LBFGS"')
    assert "solver_type" not in fields and "LBFGS is not one DIGITS trains with" in notes[0]


def test_an_unreadable_solver_names_its_line():
    with pytest.raises(SolverFileError, match="line 2, column 11"):
        solver_form("base_lr: 0.1\nmomentum: : 0.9\n")
    with pytest.raises(SolverFileError, match="line 1: base_lr must be a number"):
        solver_form('base_lr: "fast"')
    fields, notes = solver_form('lr_policy: "step"\nstepsize: 100')  # percents of what?
    assert "lr_policy" not in fields and "needs max_iter" in notes[0]


def test_the_route_reads_text_or_an_upload_and_names_the_field(signed_in):
    r = signed_in.post("/models/solver/json", data={"solver": LENET_SOLVER})
    assert r.status_code == 200 and r.get_json()["fields"]["lr_policy"] == "inv"
    r = signed_in.post("/models/solver/json", data={"solver_file": (io.BytesIO(LENET_SOLVER.encode()), "s.prototxt")})
    assert r.status_code == 200 and r.get_json()["fields"]["lr_inv_gamma"] == "0.01"
    r = signed_in.post("/models/solver/json", data={"solver": "base_lr: {"})
    assert r.status_code == 400 and r.get_json()["error"]["message"].startswith("Solver (solver.prototxt): ")
    r = signed_in.post("/models/solver/json", data={})
    assert r.status_code == 400 and "Send a Caffe solver.prototxt" in r.get_json()["error"]["message"]
