"""Generic data in Chromium, as a person reaches it from the home page: New Generic Dataset from a CSV of two
Gaussian blobs (its label column chosen by name), the class distribution, "New model on it", the MLP trained to
Done, one row predicted through the per-feature fields, many from a CSV upload, and their CSV export. The page
offers a generic model's metrics, not the image models' archives. PageWatch fails on any page or console error
and on any 4xx/5xx answer."""

from __future__ import annotations

import csv
import io
import re

import numpy as np
import pytest

from tests.support.browser import PageWatch, shot, sign_in
from tests.support.generic_data import blobs, write_csv
from tests.support.live import LiveServer
from tests.support.waiting import LONG_MS

pytestmark = pytest.mark.browser

JOB_URL = re.compile(r"/(datasets|models)/\d{8}-\d{6}-[0-9a-f]{4}$")
FINAL_STATUS = "#job:is([data-status=Done], [data-status=Error], [data-status=Aborted])"


@pytest.fixture
def server(tmp_path):
    s = LiveServer(tmp_path / "jobs", env={"DIGITS_INFERENCE_WORKERS": "1"}).start()
    yield s
    s.stop()


def test_a_generic_dataset_and_model_from_the_home_page(server, browser, tmp_path):
    # The label column ("side") in the middle, so only the form's choice makes it the label.
    x, y = blobs(300, features=4)
    rows = [[*r[:2], label, *r[2:]] for r, label in zip(x.tolist(), y, strict=True)]
    data = tmp_path / "blobs.csv"
    with open(data, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["x0", "x1", "side", "x2", "x3"])
        out.writerows(rows)
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    watch = PageWatch(page)
    try:
        sign_in(page, server.url, "ann")
        page.get_by_role("link", name="New Generic Dataset").click()
        page.wait_for_selector("#generic-dataset-form")
        page.set_input_files("#train_file", str(data))
        page.select_option("#problem", "classification")
        page.get_by_label("Label / target column (CSV)").fill("side")
        page.fill("#val_percent", "20")
        page.fill("#dataset_name", "two <b>blobs</b>")
        with page.expect_navigation(url=JOB_URL):
            page.get_by_role("button", name="Create").click()
        page.wait_for_selector(FINAL_STATUS, timeout=LONG_MS)
        assert page.get_attribute("#job", "data-status") == "Done", page.inner_text("main")[:2000]
        assert page.locator("#job h1").inner_text().startswith("two <b>blobs</b>")  # escaped
        counts = page.locator("#class-counts-train tbody tr")
        assert counts.count() == 2
        per_class = {
            r.locator("td").nth(0).inner_text(): int(r.locator("td").nth(1).inner_text()) for r in counts.all()
        }
        val = {
            r.locator("td").nth(0).inner_text(): int(r.locator("td").nth(1).inner_text())
            for r in page.locator("#class-counts-val tbody tr").all()
        }
        assert set(per_class) == {"left", "right"} and sum(per_class.values()) + sum(val.values()) == 300
        assert page.locator("#feature-stats tbody tr").count() == 4

        # New model on it: the MLP, a few epochs.
        page.locator("#new-generic-model").click()
        page.wait_for_selector("#generic-model-form")
        assert "two <b>blobs</b>" in page.locator("#dataset option:checked").inner_text()
        page.check("#net-mlp")
        page.fill("#mlp_hidden_sizes", "16")
        page.fill("#train_epochs", "4")
        page.select_option("#solver_type", "ADAM")
        page.select_option("#lr_policy", "fixed")
        page.fill("#model_name", "blobs mlp")
        with page.expect_navigation(url=JOB_URL):
            page.get_by_role("button", name="Create").click()
        model_url = page.url
        page.wait_for_selector(FINAL_STATUS, timeout=LONG_MS)
        assert page.get_attribute("#job", "data-status") == "Done", page.inner_text("main")[:2000]
        page.wait_for_selector("#test-model:not([hidden])")
        # A generic model's page: no image rows in its settings, its metrics offered, no image archive.
        settings = page.locator("#model-info dt").all_inner_texts()
        assert "Mean" not in settings and "Crop" not in settings and "Epochs" in settings
        assert page.locator("#downloads a", has_text="metrics.csv").count() == 1
        assert page.locator("#downloads button").count() == 0 and page.locator("#download-epoch").count() == 0
        js = page.request.get(model_url + "/json").json()
        assert js["type"] == "Generic Model"

        # One row through the per-feature fields, each labelled by its feature's name: a point of the right blob.
        for name, value in zip(("x0", "x1", "x2", "x3"), (3.1, 2.8, 3.3, 2.9), strict=True):
            page.get_by_label(name, exact=True).fill(str(value))
        with page.expect_navigation(url=re.compile("predict_one")):
            page.get_by_role("button", name="Predict one").click()
        assert page.locator("#predicted strong").inner_text() == "right"
        assert page.locator("#predicted-probabilities tbody tr").count() == 2
        shot(page, "generic-predict-one")
        page.get_by_role("link", name="Back to the model").click()
        page.wait_for_selector("#predict-many-form")

        # Many rows from a CSV upload (its own column order, an extra column), then the same as a CSV download.
        probe_x, probe_y = blobs(20, features=4, seed=7)
        probe = tmp_path / "probe.csv"
        write_csv(probe, probe_x[:, ::-1], probe_y, names=["x3", "x2", "x1", "x0"], target="note")
        page.set_input_files("#predict-many-file", str(probe))
        with page.expect_navigation(url=re.compile("predict_many")):
            page.get_by_role("button", name="Predict many").click()
        table = page.locator("#predictions tbody tr")
        assert table.count() == 20
        predicted = [r.locator("td").nth(5).inner_text() for r in table.all()]
        assert np.mean(np.array(predicted) == probe_y) >= 0.95
        page.get_by_role("link", name="Back to the model").click()
        page.set_input_files("#predict-many-file", str(probe))
        with page.expect_download() as info:
            page.get_by_role("button", name="Download as CSV").click()
        assert info.value.failure() is None
        with open(info.value.path(), encoding="utf-8") as fh:
            exported = list(csv.DictReader(io.StringIO(fh.read())))
        assert len(exported) == 20
        assert [r["predicted"] for r in exported] == predicted, exported[0]
        watch.check()
    except BaseException:
        shot(page, "generic-browser-failure")
        raise
    finally:
        context.close()
