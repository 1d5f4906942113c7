"""Random search on New Model, beside DIGITS' lists: `sweep_count` combinations drawn from ranges (learning rate
log-uniform, batch sizes from a list or a range), reproducible by `sweep_seed`, every one checked before any job
exists, at most MAX_SWEEP_JOBS; and the whole check runs off the event loop."""

from __future__ import annotations

import math
from urllib.parse import urlsplit

import pytest

from digits.model import views as model_views
from digits.model.sweeps import MAX_SWEEP_JOBS, RandomSearch, read_random_search
from tests.support import JSON
from tests.support.forms import model_form
from tests.support.waiting import LONG_S

CREATE = "/models/images/classification"


def search(**fields) -> dict:
    return {"sweep_random": "true", "sweep_count": "6", "sweep_seed": "11", **fields}


def models(workspace):
    return [j for j in workspace.store.all() if j.category == "model"]


def stop_all(client, recorder, job_ids) -> None:
    for job_id in job_ids:
        assert client.post(f"/models/{job_id}/abort", headers=JSON).status_code == 200
    for job_id in job_ids:
        assert recorder.wait_status(job_id, timeout=LONG_S) in ("Aborted", "Done")


# ---- drawing, without a server ----------------------------------------------------------------------------------


def test_the_same_seed_draws_the_same_combinations_and_another_seed_others():
    fields = search(sweep_lr_min="0.001", sweep_lr_max="0.1", sweep_batch_sizes="16, 32, 64", sweep_count="10")
    a, errors = read_random_search(fields)
    assert errors == {} and a is not None
    b, _ = read_random_search(fields)
    c, _ = read_random_search({**fields, "sweep_seed": "12"})
    assert a.draw() == b.draw() and a.draw() != c.draw()
    drawn = a.draw()
    assert len(drawn) == 10 and len({tuple(sorted(d.items())) for d in drawn}) == 10
    for d in drawn:
        assert 0.001 <= d["learning_rate"] <= 0.1 and d["batch_size"] in (16, 32, 64)
        assert d["learning_rate"] == float(f"{d['learning_rate']:.3g}")  # 3 significant digits


def test_learning_rates_are_log_uniform():
    s = RandomSearch(count=64, seed=3, lr_range=(1e-4, 1.0), batch_sizes=None, batch_range=None)
    logs = [math.log10(d["learning_rate"]) for d in s.draw()]
    # Log-uniform over four decades: about a quarter in each; uniform would put nearly all in the last one.
    per_decade = [sum(-4 + k <= v < -3 + k for v in logs) for k in range(4)]
    assert all(6 <= n <= 26 for n in per_decade), per_decade


def test_a_batch_range_draws_whole_numbers_inside_it_and_an_empty_seed_is_drawn_and_kept():
    s, errors = read_random_search(search(sweep_batch_sizes="8-12", sweep_count="5", sweep_seed=""))
    assert errors == {} and s is not None and s.batch_range == (8, 12) and s.lr_range is None
    assert 0 <= s.seed < 2**31
    drawn = s.draw()
    assert sorted(d["batch_size"] for d in drawn) == [8, 9, 10, 11, 12]  # 5 distinct of 5
    assert s.as_dict() == {
        "method": "random",
        "count": 5,
        "seed": s.seed,
        "learning_rate": None,
        "batch_size": {"range": [8, 12]},
    }


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"sweep_count": "1"}, "sweep_count", "at least 2"),
        ({"sweep_count": str(MAX_SWEEP_JOBS + 1)}, "sweep_count", f"at most {MAX_SWEEP_JOBS}"),
        ({"sweep_count": ""}, "sweep_count", "required"),
        ({"sweep_lr_min": "0.1", "sweep_lr_max": "0.01"}, "sweep_lr_max", "greater than Learning rate from"),
        ({"sweep_lr_min": "0.1"}, "sweep_lr_max", "both ends"),
        ({"sweep_lr_min": "0"}, "sweep_lr_min", "greater than 0"),
        ({}, "sweep_lr_min", "needs a learning rate range"),
        ({"sweep_batch_sizes": "16, sixteen"}, "sweep_batch_sizes", "sixteen: expected a whole number"),
        ({"sweep_batch_sizes": "64-8"}, "sweep_batch_sizes", "smaller to a larger"),
        ({"sweep_batch_sizes": "16, 16"}, "sweep_batch_sizes", "more than once"),
        ({"sweep_batch_sizes": "16, 32", "sweep_count": "3"}, "sweep_count", "Only 2 distinct"),
        ({"sweep_batch_sizes": "16, 32", "learning_rate": "[0.01, 0.02]"}, "learning_rate", "one or the other"),
        ({"sweep_batch_sizes": "16, 32", "sweep_count": "2", "sweep_seed": "-1"}, "sweep_seed", "at least 0"),
    ],
)
def test_bad_search_fields_are_refused_under_their_field(fields, field, words):
    s, errors = read_random_search(search(**fields))
    assert s is None and field in errors and words in " ".join(errors[field]), errors


# ---- through the form ---------------------------------------------------------------------------------------


def test_a_random_search_makes_its_models_and_the_same_seed_makes_the_same_ones(
    signed_in, workspace, recorder, dataset
):
    fields = search(sweep_lr_min="0.001", sweep_lr_max="0.1", sweep_batch_sizes="8, 16", sweep_count="3")
    r = signed_in.post(CREATE + "/json", data=model_form(dataset.id, model_name="rs", **fields))
    assert r.status_code == 200, r.get_data(as_text=True)
    first = r.get_json()["jobs"]
    r = signed_in.post(CREATE + "/json", data=model_form(dataset.id, model_name="rs", **fields))
    second = r.get_json()["jobs"]
    stop_all(signed_in, recorder, [j["id"] for j in first + second])
    assert [j["sweep"] for j in first] == [j["sweep"] for j in second]
    assert first[0]["sweep_group"] != second[0]["sweep_group"]  # a group per submission
    for j in first:
        job = workspace.store.get(j["id"])
        lr, batch = job.extra["sweep"]["learning_rate"], job.extra["sweep"]["batch_size"]
        assert job.name == f"rs learning_rate:{lr} batch_size:{batch}"
        assert (job.tasks[0].args["learning_rate"], job.tasks[0].args["batch_size"]) == (lr, batch)
        # A clone remakes this one model: its form holds its own values and no search.
        assert job.form["learning_rate"] == str(lr) and not any(k.startswith("sweep_") for k in job.form)
        assert job.extra["sweep_search"] == {
            "method": "random",
            "count": 3,
            "seed": 11,
            "learning_rate": {"log_uniform": [0.001, 0.1]},
            "batch_size": {"choices": [8, 16]},
        }


def test_a_random_search_posted_as_a_form_goes_to_its_group_page(signed_in, workspace, recorder, dataset):
    r = signed_in.post(CREATE, data=model_form(dataset.id, **search(sweep_batch_sizes="8, 10", sweep_count="2")))
    assert r.status_code == 302, r.get_data(as_text=True)
    made = models(workspace)
    stop_all(signed_in, recorder, [j.id for j in made])
    group = made[0].extra["sweep_group"]
    assert urlsplit(r.headers["Location"]).path == f"/models/sweeps/{group}"
    assert sorted(j.extra["sweep"]["batch_size"] for j in made) == [8, 10]


def test_a_search_a_model_cannot_take_creates_nothing_and_names_the_field(signed_in, workspace, dataset):
    # 70000 is past what Batch size takes: refused before anything is drawn.
    r = signed_in.post(
        CREATE + "/json", data=model_form(dataset.id, **search(sweep_batch_sizes="8, 70000", sweep_count="2"))
    )
    assert r.status_code == 400
    body = r.get_json()
    assert "Batch sizes to draw from" in body["error"]["message"] and "70000" in body["error"]["message"]
    # Another field wrong in every model: named by its label on the form page, nothing made.
    r = signed_in.post(
        CREATE, data=model_form(dataset.id, train_epochs="0", **search(sweep_batch_sizes="8, 10", sweep_count="2"))
    )
    assert r.status_code == 400 and "Training epochs" in r.get_data(as_text=True)
    assert models(workspace) == []


def test_every_combination_is_checked_off_the_event_loop(signed_in, workspace, recorder, dataset, monkeypatch):
    calls = []
    real = model_views.off_loop

    def recording(fn, *args, **kwargs):
        calls.append(fn.__name__)
        return real(fn, *args, **kwargs)

    monkeypatch.setattr(model_views, "off_loop", recording)
    fields = search(sweep_lr_min="0.001", sweep_lr_max="0.1", sweep_count="4")
    r = signed_in.post(CREATE + "/json", data=model_form(dataset.id, **fields))
    assert r.status_code == 200, r.get_data(as_text=True)
    stop_all(signed_in, recorder, [j["id"] for j in r.get_json()["jobs"]])
    assert calls == ["plan"]
    r = signed_in.post(CREATE + "/json", data=model_form(dataset.id, learning_rate="[0.01, 0.02, 0.03]"))
    stop_all(signed_in, recorder, [j["id"] for j in r.get_json()["jobs"]])
    assert calls == ["plan", "plan"]  # DIGITS' lists too
