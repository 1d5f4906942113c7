"""The second every-control walk: the pages the first (tests/test_every_control.py) never reaches, in Chromium
against the real server with real workers. Generic data: New Generic Dataset from both sources (a NumPy regression
dataset, a CSV classification one, every select and file input), a dataset's page and its rows explorer with
paging, New Generic Model (the MLP's options, the custom network with both frameworks, the solver's selects and
policy parameters, Best epoch), a generic model's page (abort and resume, the charts' controls, the metrics
downloads, predict one and many with their snapshot selectors and CSV export, rename and notes, clone, delete).
An external run, created and fed by digits.client from the test: its page's charts' controls, rename and notes,
abort and delete.

As the first walk, it fails on any page error, console error, failed request or 4xx/5xx answer it did not cause
(PageWatch), and on any control it saw on a page and never used (ControlLedger)."""

from __future__ import annotations

import csv
import re
from urllib.parse import urlparse

import numpy as np
import pytest

from digits.client import Run
from tests.model.test_generic_models import CAFFE_MLP
from tests.support.browser import shot
from tests.support.clicks import page_kind
from tests.support.generic_data import blobs, linear, write_csv
from tests.support.live import LiveServer
from tests.support.waiting import LONG_MS
from tests.test_every_control import Person

pytestmark = [pytest.mark.browser, pytest.mark.slow]

JOB_URL = re.compile(r"/(datasets|models)/\d{8}-\d{6}-[0-9a-f]{4}$")
FINAL = "#job:is([data-status=Done], [data-status=Error], [data-status=Aborted])"

# Controls this walk sees and deliberately leaves alone, with the reason.
LEFT_ALONE = {
    # Signing out ends the session the rest of the walk uses; tests/test_auth_sessions.py signs out in Chromium.
    "*": {"button:Sign out"},
    # A dataset of a few hundred rows is built before a click could land; the same Abort form (jobs/_header.html)
    # is used on the model and run pages here.
    "/datasets/<id>": {"button:Abort"},
    # The navigation bar's "Sign in" on the sign-in page itself leads where the person already is.
    "/login": {"a:Sign in"},
    # The image wing's forms, whose every control the first walk uses: opening one here would only repeat it.
    "/": {"a:New Dataset", "a:New Model", "#upload-pretrained"},
}


@pytest.fixture
def server(tmp_path):
    s = LiveServer(tmp_path / "jobs", entry=["-m", "digits"], env={"DIGITS_INFERENCE_WORKERS": "1"}).start()
    yield s
    s.stop()


def test_every_control_of_generic_data_and_external_runs(server, browser, tmp_path):
    person = Person(browser, server)
    try:
        walk(person, server, tmp_path)
    except BaseException:
        shot(person.page, "every-control-more-failure")
        raise


def done(ann: Person) -> None:
    ann.page.wait_for_selector(FINAL, timeout=LONG_MS)
    assert ann.page.get_attribute("#job", "data-status") == "Done", ann.page.inner_text("main")[:2000]


def walk(ann: Person, server, tmp_path) -> None:
    page = ann.page
    x, y = blobs(400, features=4)
    blobs_csv = write_csv(tmp_path / "blobs.csv", x, y, target="side")
    lx, ly, _ = linear(200)
    linear_npy = tmp_path / "linear.npy"
    np.save(linear_npy, np.column_stack([lx, ly]).astype(np.float32))
    npz = tmp_path / "blobs.npz"
    np.savez(npz, features=x, labels=y)

    page.goto(server.url + "/")
    ann.settle()
    ann.click("text=Sign in")
    ann.settle()
    page.fill("#username", "ann")
    ann.submit_and_wait("form button[type=submit]", re.compile(re.escape(server.url) + r"/\??$"))
    ann.settle()

    # ---- New Generic Dataset: NumPy, regression (its target the .npy's last column) ----
    page.get_by_role("link", name="New Generic Dataset").click()
    page.wait_for_selector("#generic-dataset-form")
    ann.settle()
    page.set_input_files("#val_file", str(npz))  # chosen and cleared: the split is drawn from training
    page.set_input_files("#val_file", [])
    page.set_input_files("#train_file", str(linear_npy))
    page.select_option("#problem", "regression")
    page.fill("#val_percent", "25")
    page.fill("#dataset_name", "linear (npy)")
    ann.submit_and_wait("#generic-dataset-form button[type=submit]", JOB_URL)
    done(ann)
    assert page.locator("#target-histogram-train tbody tr").count() > 0
    ann.settle()
    page.locator("details summary").first.click()  # status history
    ann.click("button:has-text('Rename / notes')")
    regression_url = page.url
    page.fill("#edit-notes", "a linear target")
    ann.submit_and_wait("#edit-job button[type=submit]", regression_url)
    assert page.inner_text("#job-notes") == "a linear target"

    # ---- New Generic Dataset: CSV, classification, a validation file of its own (NumPy's .npz refused) ----
    page.goto(server.url + "/")
    page.get_by_role("link", name="New Generic Dataset").click()
    page.wait_for_selector("#generic-dataset-form")
    page.set_input_files("#train_file", blobs_csv)
    page.select_option("#problem", "regression")
    page.select_option("#problem", "classification")
    page.fill("#target_column", "side")
    page.fill("#dataset_name", "blobs")
    ann.submit_and_wait("#generic-dataset-form button[type=submit]", JOB_URL)
    done(ann)
    dataset_url = page.url
    assert page.locator("#class-counts-train tbody tr").count() == 2
    ann.settle()

    # The rows explorer of each split, paging both ways.
    for split in ("train", "val"):
        page.goto(dataset_url)
        ann.click(f"a:has-text('Explore {split} rows')")
        page.wait_for_selector("#generic-rows")
        ann.settle()
        first = page.locator("#generic-rows tbody tr td").first.inner_text()
        nxt = page.get_by_role("link", name="Next")
        if nxt.count():
            nxt.click()
            page.wait_for_selector("#generic-rows")
            assert page.locator("#generic-rows tbody tr td").first.inner_text() != first
            page.get_by_role("link", name="Previous").click()
            page.wait_for_selector("#generic-rows")
            assert page.locator("#generic-rows tbody tr td").first.inner_text() == first

    # ---- New Generic Model: every option of the form, then the MLP trained ----
    page.goto(dataset_url)
    ann.click("#new-generic-model")
    page.wait_for_selector("#generic-model-form")
    ann.settle()
    page.select_option("#dataset", index=1)
    page.select_option("#dataset", index=0)
    ann.click("label[for=method-custom]")
    page.check("#framework-caffe")
    page.check("#framework-torch")
    ann.click("label[for=method-standard]")
    ann.click("label[for=net-mlp]")  # already chosen: clicked as a person would
    page.fill("#mlp_hidden_sizes", "16,8")
    page.fill("#mlp_dropout", "0.1")
    for select in ("#lr_policy", "#solver_type"):
        first = page.locator(f"{select} option").first.get_attribute("value")
        chosen = page.input_value(select)
        page.select_option(select, first)
        page.select_option(select, chosen)
    page.locator("#lr-policy-params summary").click()
    page.select_option("#solver_type", "ADAM")
    page.select_option("#lr_policy", "fixed")
    page.uncheck("#shuffle")
    page.check("#shuffle")
    page.select_option("#best_monitor", "val_accuracy")
    page.check("#early_stopping")
    page.uncheck("#early_stopping")
    page.fill("#train_epochs", "60")
    page.fill("#snapshot_interval", "20")
    page.fill("#model_name", "blobs mlp")
    ann.settle()
    ann.submit_and_wait("#generic-model-form button[type=submit]", JOB_URL)
    model_url = page.url

    # Abort at once, then resume to the end.
    ann.click("#abort-form button")
    page.wait_for_selector(FINAL, timeout=LONG_MS)
    if page.get_attribute("#job", "data-status") == "Aborted":
        ann.settle()
        ann.submit_and_wait("#resume-form button", model_url)
    done(ann)
    page.wait_for_selector("#test-model:not([hidden])")
    ann.settle()

    # The charts' controls, the metrics downloads.
    for action in ("zoom-in", "pan-left", "pan-right", "zoom-out", "reset"):
        ann.click(f"[data-chart-action={action}]")
    page.check("#chart-log-scale")
    page.uncheck("#chart-log-scale")
    page.fill("#chart-smoothing", "0.6")
    page.fill("#chart-smoothing", "0")
    assert b"epoch" in ann.download("#downloads a:has-text('metrics.csv')")[:200]
    assert ann.download("#downloads a:has-text('TensorBoard')")[:2] == b"\x1f\x8b"

    # Predict one: the fields, an older snapshot; then a pasted row.
    for i, value in enumerate((3.0, 2.9, 3.2, 3.1)):
        page.fill(f"#feature_{i}", str(value))
    page.select_option("#predict-one-epoch", index=1)
    ann.submit_and_wait("#predict-one-form button[type=submit]", re.compile("predict_one"))
    assert page.inner_text("#predicted strong") == "right"
    ann.settle()
    ann.click("a:has-text('Back to the model')")
    page.wait_for_selector("#predict-one-form")
    page.fill("#predict-row", "-3,-3.1,-2.8,-3")
    ann.submit_and_wait("#predict-one-form button[type=submit]", re.compile("predict_one"))
    assert page.inner_text("#predicted strong") == "left"
    page.goto(model_url)

    # Predict many from a CSV, an older snapshot, then the CSV export.
    page.set_input_files("#predict-many-file", blobs_csv)
    page.select_option("#predict-many-epoch", index=1)
    ann.submit_and_wait("#predict-many-form button:has-text('Predict many')", re.compile("predict_many"))
    assert page.locator("#predictions tbody tr").count() == 400
    ann.settle()
    ann.click("a:has-text('Back to the model')")
    page.wait_for_selector("#predict-many-form")
    page.set_input_files("#predict-many-file", blobs_csv)
    exported = ann.download("#predict-many-form button:has-text('Download as CSV')").decode()
    rows = list(csv.DictReader(exported.splitlines()))
    assert len(rows) == 400 and np.mean([r["predicted"] == t for r, t in zip(rows, y, strict=True)]) >= 0.95

    # Rename and notes, the status history.
    ann.click("button:has-text('Rename / notes')")
    page.fill("#edit-notes", "MLP on two blobs")
    ann.submit_and_wait("#edit-job button[type=submit]", model_url)
    assert page.inner_text("#job-notes") == "MLP on two blobs"
    page.locator("details summary").first.click()
    ann.settle()

    # ---- clone: the same form filled, submitted as a custom Caffe network ----
    ann.click("a:has-text('Clone')")
    page.wait_for_selector("#generic-model-form")
    assert page.input_value("#mlp_hidden_sizes") == "16,8"
    ann.click("label[for=method-custom]")
    page.check("#framework-caffe")
    page.fill("#custom_network", CAFFE_MLP)
    page.fill("#train_epochs", "2")
    page.fill("#snapshot_interval", "1")
    page.select_option("#best_monitor", "none")
    page.fill("#model_name", "blobs caffe")
    ann.submit_and_wait("#generic-model-form button[type=submit]", JOB_URL)
    done(ann)
    clone_url = page.url
    ann.settle()

    # ---- an external run: made and fed by digits.client, its page's controls ----
    run = Run(server.url, None, "external <i>script</i>", user="ann", epochs=4, settings={"hidden": 32})
    for i in range(40):
        run.log(epoch=(i + 1) / 10, loss=2.0 / (1 + i), lr=0.1)
    run.log(epoch=4, val_loss=0.5, val_accuracy=0.8)
    run.flush()
    page.goto(f"{server.url}/runs/{run.id}")
    page.wait_for_selector("#latest-metrics:not([hidden])")
    run_url = page.url
    assert page.locator("#job h1").inner_text().startswith("external <i>script</i>")
    ann.settle()
    for action in ("zoom-in", "pan-left", "pan-right", "zoom-out", "reset"):
        ann.click(f"[data-chart-action={action}]")
    page.check("#chart-log-scale")
    page.uncheck("#chart-log-scale")
    page.fill("#chart-smoothing", "0.5")
    page.fill("#chart-smoothing", "0")
    ann.click("button:has-text('Rename / notes')")
    page.fill("#edit-name", "external script, renamed")
    ann.submit_and_wait("#edit-job button[type=submit]", run_url)
    page.locator("details summary").first.click()
    ann.click("#abort-form button")
    page.wait_for_selector("#job[data-status=Aborted]", timeout=LONG_MS)
    with pytest.warns(UserWarning, match="ended on the server"):
        run.finish()  # the server says the run ended there: the client stops
    ann.settle()

    # ---- compare the two generic models and the run: every model ticked on the home page, the comparison's controls
    page.goto(server.url + "/")
    boxes = page.locator('input[type=checkbox][form="compare-form"]')
    assert boxes.count() == 3
    for i in range(boxes.count()):
        boxes.nth(i).check()
    ann.submit_and_wait("#compare-models", re.compile(r"/models/compare\?"))
    page.wait_for_selector("#compare[data-loaded=true]")
    ann.settle()
    for button in page.locator("#compare-table thead button").all():
        button.click()
    for box in page.locator("#compare-shown input[type=checkbox]").all():
        box.uncheck()
        box.check()
    for action in ("zoom-in", "pan-left", "pan-right", "zoom-out", "reset"):
        ann.click(f"#compare [data-chart-action={action}]")
    page.check("#compare-log-scale")
    page.uncheck("#compare-log-scale")
    compared = ann.download("#compare-csv").decode()
    assert compared.startswith("id,name,status,") and "blobs caffe" in compared and "external script" in compared
    ann.submit_and_wait("#compare-json", re.compile(r"/models/compare/json\?"))
    page.go_back()
    page.wait_for_selector("#compare[data-loaded=true]")

    # ---- delete: the run, the clone, the model, the datasets ----
    for url in (run_url, clone_url, model_url, dataset_url, regression_url):
        page.goto(url)
        ann.click("form[data-confirm] button:has-text('Delete')")
        page.wait_for_url(server.url + "/")
    assert page.locator("tr[data-job-id]").count() == 0
    ann.settle()

    ann.watch.check()
    unused = ann.ledger.unused(LEFT_ALONE)
    assert not unused, "controls no step of this walk used:\n" + "\n".join(
        f"  {kind}: {', '.join(keys)}" for kind, keys in sorted(unused.items())
    )
    kinds = {page_kind(urlparse(u).path) for u in ann.links_followed}
    assert {"/models/<id>", "/datasets/<id>", "/runs/<id>"} <= kinds, kinds
