"""The LR finder's route on a real worker (LeNet on generated shapes), its refusals, the suggestion rule, and a
model that tracks its best epoch through the API: fields, record, and classify/download defaulting to the best."""

from __future__ import annotations

import io
import math
import os
import tarfile

import pytest

from digits.model.best_epoch import BestTracker
from digits.model.lr_finder import END_LR, START_LR, suggest_lr
from tests.support.forms import model_form
from tests.support.waiting import LONG_S

pytestmark = pytest.mark.slow


def finder_answer(client, job_id):
    return client.get(f"/models/lr_finder/{job_id}/json").get_json()


def test_the_lr_finder_ramps_lenet_and_suggests_a_rate_within_the_ramp(signed_in, workspace, recorder, dataset):
    form = model_form(dataset.id, model_name=None, batch_size="2")  # 90 images: a 45-step ramp
    r = signed_in.post("/models/lr_finder/json", data=form)
    assert r.status_code == 202, r.get_data(as_text=True)
    job_id = r.get_json()["id"]
    assert r.get_json()["url"] == f"/models/lr_finder/{job_id}/json"
    # One at a time for a person: a second request while it runs is refused, saying why.
    again = signed_in.post("/models/lr_finder/json", data=form)
    if finder_answer(signed_in, job_id)["status"] not in ("Done", "Error"):
        assert again.status_code == 409 and "still running" in again.get_json()["error"]["message"]
    assert recorder.wait_status(job_id, timeout=LONG_S) == "Done", finder_answer(signed_in, job_id)
    answer = finder_answer(signed_in, job_id)
    assert answer["done"] and answer["progress"] == 1.0 and answer["error"] is None
    lrs = [p[0] for p in answer["points"]]
    assert len(lrs) >= 10 and answer["steps"] == 45
    assert all(b > a for a, b in zip(lrs, lrs[1:], strict=False))  # increasing in lr
    assert lrs[0] == pytest.approx(START_LR) and lrs[-1] <= END_LR * (1 + 1e-9)
    assert all(math.isfinite(p[1]) for p in answer["points"])
    if len(lrs) < 45:  # stopped before the end: said why (the loss diverged)
        assert "diverged" in answer["stopped"] or "finite" in answer["stopped"]
    assert lrs[0] <= answer["suggestion"] <= lrs[-1]
    assert answer["suggestion"] == suggest_lr(answer["points"])
    # It is no model: the console and DIGITS' lists leave it out.
    assert job_id not in signed_in.get("/index/json").get_data(as_text=True)
    # A new request replaces the person's finished one.
    second = signed_in.post("/models/lr_finder/json", data=form).get_json()["id"]
    assert signed_in.get(f"/models/lr_finder/{job_id}/json").status_code == 404
    assert recorder.wait_status(second, timeout=LONG_S) == "Done"


def test_the_lr_finder_names_the_field_at_fault(signed_in, dataset):
    none = signed_in.post("/models/lr_finder/json", data=model_form("", model_name=None))
    assert none.status_code == 400 and none.get_json()["errors"]["dataset"] == ["This field is required."]
    assert none.get_json()["error"]["message"].startswith("Dataset: ")
    bad = signed_in.post("/models/lr_finder/json", data=model_form(dataset.id, standard_networks="nonet"))
    assert bad.status_code == 400 and "standard_networks" in bad.get_json()["errors"]
    custom = model_form(dataset.id, framework="caffe", method="custom", custom_network="layer { type: 'Nope' }")
    broken = signed_in.post("/models/lr_finder/json", data=custom)
    assert broken.status_code == 400 and "custom_network" in broken.get_json()["errors"]
    assert signed_in.get("/models/lr_finder/20200101-000000-abcd/json").status_code == 404
    assert signed_in.post("/models/lr_finder/json", data=model_form(dataset.id, learning_rate="0")).status_code == 400


def test_the_suggestion_is_the_steepest_descent_before_the_minimum():
    lrs = [10 ** (-7 + i * 0.25) for i in range(30)]
    # Flat, then falling fastest around index 11 (1.4 -> 0.5 across it), lowest at 20, then rising.
    losses = [2.0] * 8 + [1.9, 1.7, 1.4, 1.0, 0.5, 0.3, 0.2, 0.15, 0.12, 0.1, 0.09, 0.085, 0.08] + [0.5] * 9
    assert suggest_lr([[a, b] for a, b in zip(lrs, losses, strict=True)]) == float(f"{lrs[11]:.2g}")
    # Steepest at the edge of the minimum: no more than a tenth of the minimum's rate.
    edge = [2.0] * 8 + [1.9, 1.8, 1.7, 1.6, 1.5, 1.4, 1.3, 1.2, 1.1, 1.0, 0.9, 0.1, 0.08] + [0.5] * 9
    assert suggest_lr([[a, b] for a, b in zip(lrs, edge, strict=True)]) == float(f"{lrs[20] / 10:.2g}")
    # Too few points before the minimum: a tenth of the lowest loss's rate.
    assert suggest_lr([[1e-3, 1.0], [1e-2, 0.5], [1e-1, 3.0]]) == pytest.approx(1e-3)
    assert suggest_lr([]) is None


def test_a_model_with_a_best_epoch_defaults_to_it(signed_in, workspace, recorder, dataset):
    form = model_form(
        dataset.id,
        batch_size="8",
        train_epochs="6",
        val_interval="0.5",
        learning_rate="0.03",  # high enough that val loss wanders, so the best is often not the last
        best_monitor="val_loss",
        early_stopping="1",
        early_stopping_patience="2",
        early_stopping_min_delta="0.0001",
    )
    r = signed_in.post("/models/images/classification/json", data=form)
    assert r.status_code == 200, r.get_data(as_text=True)
    job_id = r.get_json()["id"]
    status = recorder.wait_status(job_id, timeout=LONG_S)
    assert status == "Done", signed_in.get(f"/models/{job_id}/json").get_json()["error"]
    js = signed_in.get(f"/models/{job_id}/json").get_json()
    solver = js["solver"]
    assert (solver["best_monitor"], solver["early_stopping"], solver["patience"], solver["min_delta"]) == (
        "val_loss",
        True,
        2,
        0.0001,
    )
    best = js["best epoch"]
    losses = js["metrics"]["val"]["loss"]
    replay = BestTracker("val_loss", min_delta=0.0001)  # the min delta rule over the reported series
    for epoch, value in losses:
        replay.update({"loss": value}, epoch)
    assert best["value"] == pytest.approx(replay.value, rel=1e-6) and best["epoch"] == replay.epoch
    assert js["best snapshot"] == best["epoch"] and best["epoch"] in js["snapshots"]
    if best["stopped"]:
        assert best["stopped"]["reason"].startswith(f"stopped early at epoch {losses[-1][0]:g}: val loss")
    page = signed_in.get(f"/models/{job_id}").get_data(as_text=True)
    assert f"epoch {best['epoch']:g} <strong>(best)</strong>" in page
    # Downloads without an epoch take the best snapshot.
    archive = signed_in.get(f"/models/{job_id}/download")
    assert archive.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(archive.data)) as tar:
        names = [os.path.basename(n) for n in tar.getnames()]
    assert f"snapshot_epoch_{best['epoch']:g}.pt" in names, names
    if js["snapshots"][-1] != best["epoch"]:
        assert f"snapshot_epoch_{js['snapshots'][-1]:g}.pt" not in names
