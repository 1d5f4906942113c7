"""DIGITS learning-rate policies: percent-of-training form values converted to Caffe's per-iteration schedule."""

from __future__ import annotations

import json
import math

import pytest

from digits.model.lr_policy import POLICIES, LRPolicy


def approx(value: float) -> object:
    return pytest.approx(value, rel=1e-12, abs=1e-15)


def test_fixed_never_changes():
    policy = LRPolicy.from_form("fixed", 0.01, 300)
    assert [policy.lr_at(it) for it in (0, 1, 150, 300)] == [0.01] * 4


def test_step_with_digits_defaults_drops_at_ceil_of_33_percent():
    policy = LRPolicy.from_form("step", 0.01, 300)  # 33% of 300 iterations, gamma 0.1
    assert policy.stepsize == 99
    assert policy.lr_at(0) == 0.01
    assert policy.lr_at(98) == 0.01
    assert policy.lr_at(99) == approx(0.001)
    assert policy.lr_at(197) == approx(0.001)
    assert policy.lr_at(198) == approx(0.0001)
    assert policy.lr_at(297) == approx(0.00001)


def test_step_rounds_the_step_up_like_digits():
    assert LRPolicy.from_form("step", 0.1, 30).stepsize == 10  # ceil(9.9)
    assert LRPolicy.from_form("step", 0.1, 110).stepsize == 37  # ceil(36.3)
    policy = LRPolicy.from_form("step", 0.1, 1000, lr_step_size=25, lr_step_gamma=0.5)
    assert policy.stepsize == 250
    assert policy.lr_at(249) == 0.1
    assert policy.lr_at(250) == approx(0.05)
    assert policy.lr_at(750) == approx(0.1 * 0.5**3)


def test_multistep_counts_the_steps_passed():
    policy = LRPolicy.from_form("multistep", 0.01, 200)  # 50% and 85%, gamma 0.5
    assert policy.stepvalues == (100, 170)
    assert [policy.lr_at(it) for it in (0, 99, 100, 169, 170, 200)] == [
        0.01,
        0.01,
        approx(0.005),
        approx(0.005),
        approx(0.0025),
        approx(0.0025),
    ]


def test_percent_of_iterations_is_exact_where_floats_would_round_up():
    # 50 * (110 / 100) is 55.00000000000001 in floats; DIGITS meant iteration 55.
    assert LRPolicy.from_form("multistep", 0.01, 110, lr_multistep_values="50").stepvalues == (55,)
    assert LRPolicy.from_form("multistep", 0.01, 7, lr_multistep_values="10, 42.5, 100").stepvalues == (1, 3, 7)


def test_exp_spreads_gamma_over_one_percent_of_training():
    policy = LRPolicy.from_form("exp", 0.01, 200, lr_exp_gamma=0.95)
    assert policy.gamma == approx(0.95**0.5)
    assert policy.lr_at(0) == 0.01
    assert policy.lr_at(2) == approx(0.01 * 0.95)  # one percent of training multiplies by 0.95
    assert policy.lr_at(100) == approx(0.01 * 0.95**50)
    assert policy.lr_at(100) == pytest.approx(0.000769449752767, rel=1e-9)


def test_inv():
    policy = LRPolicy.from_form("inv", 0.01, 200)  # gamma 0.1, power 0.5
    assert policy.gamma == approx(0.05)
    assert policy.lr_at(0) == 0.01
    assert policy.lr_at(100) == approx(0.01 / math.sqrt(6))
    assert policy.lr_at(200) == approx(0.01 / math.sqrt(11))


def test_poly_reaches_zero_at_the_end():
    policy = LRPolicy.from_form("poly", 0.01, 200)  # power 3
    assert policy.lr_at(0) == 0.01
    assert policy.lr_at(100) == approx(0.00125)
    assert policy.lr_at(150) == approx(0.01 / 64)
    assert policy.lr_at(200) == 0.0
    assert policy.lr_at(250) == 0.0


def test_sigmoid_halves_at_its_step():
    policy = LRPolicy.from_form("sigmoid", 0.01, 200)  # step 50%, gamma 0.1
    assert policy.stepsize == 100
    assert policy.gamma == approx(-0.05)
    assert policy.lr_at(100) == approx(0.005)
    assert policy.lr_at(80) == approx(0.01 / (1 + math.exp(-1)))
    assert policy.lr_at(120) == approx(0.01 / (1 + math.e))
    steep = LRPolicy.from_form("sigmoid", 0.01, 200, lr_sigmoid_gamma=1e6)
    assert steep.lr_at(0) == 0.01 and steep.lr_at(200) == 0.0  # no overflow far from the step


def test_form_strings_and_blank_fields_are_read():
    policy = LRPolicy.from_form("step", "0.02", 100, lr_step_size="10", lr_step_gamma=None)
    assert (policy.base_lr, policy.stepsize, policy.gamma) == (0.02, 10, 0.1)
    assert policy.form == {"lr_step_size": 10.0, "lr_step_gamma": 0.1}


def test_fields_of_other_policies_are_ignored():
    # The form always sends every field; a bad multistep string must not block a step policy.
    policy = LRPolicy.from_form("step", 0.01, 100, lr_multistep_values="oops", lr_poly_power=7)
    assert policy.stepsize == 33


@pytest.mark.parametrize("policy", POLICIES)
def test_curve_runs_from_start_to_end(policy):
    schedule = LRPolicy.from_form(policy, 0.01, 1000)
    curve = schedule.curve()
    assert len(curve) == 100
    assert curve[0] == (0.0, schedule.lr_at(0))
    assert curve[0][1] == 0.01 or policy == "sigmoid"  # the sigmoid starts just under base_lr
    assert curve[-1] == (100.0, schedule.lr_at(1000))
    assert [p for p, _ in curve] == sorted(p for p, _ in curve)


def test_curve_points_are_percents_of_training():
    curve = LRPolicy.from_form("step", 0.01, 200, lr_step_size=50).curve(points=5)
    assert curve == [(0.0, 0.01), (25.0, 0.01), (50.0, approx(0.001)), (75.0, approx(0.001)), (100.0, approx(1e-4))]
    with pytest.raises(ValueError):
        LRPolicy.from_form("fixed", 0.01, 200).curve(points=1)


@pytest.mark.parametrize("policy", POLICIES)
def test_json_round_trip(policy):
    original = LRPolicy.from_form(policy, 0.01, 777)
    restored = LRPolicy.from_dict(json.loads(json.dumps(original.to_dict())))
    assert restored == original
    assert [restored.lr_at(it) for it in range(0, 778, 37)] == [original.lr_at(it) for it in range(0, 778, 37)]


def test_caffe_solver_fields():
    assert LRPolicy.from_form("multistep", 0.01, 200).caffe_solver_fields() == {
        "lr_policy": "multistep",
        "base_lr": 0.01,
        "max_iter": 200,
        "gamma": 0.5,
        "stepvalue": [100, 170],
    }


def test_unknown_policy_names_the_known_ones():
    with pytest.raises(ValueError) as e:
        LRPolicy.from_form("cosine", 0.01, 100)
    for name in POLICIES:
        assert name in str(e.value)


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ("50,abc", "numbers"),
        ("85,50", "increase"),
        ("50,50", "increase"),
        ("50,150", "0 to 100"),
        ("-5", "0 to 100"),
        ("", "at least one"),
        ("nan", "0 to 100"),
    ],
)
def test_bad_multistep_values_say_what_is_wrong(values, complaint):
    with pytest.raises(ValueError, match=complaint):
        LRPolicy.from_form("multistep", 0.01, 100, lr_multistep_values=values)


def test_other_bad_values():
    with pytest.raises(ValueError, match="step size"):
        LRPolicy.from_form("step", 0.01, 100, lr_step_size=0)
    with pytest.raises(ValueError, match="lr_step_gamma must be a number"):
        LRPolicy.from_form("step", 0.01, 100, lr_step_gamma="x")
    with pytest.raises(ValueError, match="learning rate"):
        LRPolicy.from_form("fixed", 0, 100)
    with pytest.raises(ValueError, match="iterations"):
        LRPolicy.from_form("fixed", 0.01, 0)
    with pytest.raises(TypeError, match="lr_step_sise"):
        LRPolicy.from_form("step", 0.01, 100, lr_step_sise=10)
    with pytest.raises(ValueError):
        LRPolicy.from_form("fixed", 0.01, 100).lr_at(-1)
