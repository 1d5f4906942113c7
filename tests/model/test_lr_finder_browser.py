"""The LR finder and the Best epoch fields on New Model in Chromium against the real server: "Find a learning
rate" runs the ramp on the chosen dataset and network, the plot appears with the suggestion, "Use this rate"
fills Base learning rate; a form without a dataset is told so in place, naming the field; the model made with
early stopping shows its best snapshot."""

from __future__ import annotations

import pytest

from tests.support.browser import PageWatch, sign_in
from tests.support.imagegen import make_shapes
from tests.support.live import LiveServer
from tests.support.waiting import LONG_MS, LONG_S

pytestmark = pytest.mark.browser


@pytest.fixture
def server(tmp_path):
    s = LiveServer(tmp_path / "jobs", entry=["-m", "digits"]).start()
    yield s
    s.stop()


def test_find_a_learning_rate_and_use_it(server, browser, tmp_path):
    make_shapes(str(tmp_path / "shapes"), per_class=20, size=(24, 40))
    http = server.sign_in("ann")
    dataset = server.folder_dataset(http, tmp_path / "shapes")

    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    watch = PageWatch(page)
    sign_in(page, server.url, "ann")
    page.goto(f"{server.url}/models/images/classification/new")
    page.get_by_label("Dataset", exact=True).select_option(dataset)
    page.get_by_label("Batch size", exact=True).fill("2")
    page.get_by_role("button", name="Find a learning rate").click()
    use = page.get_by_role("button", name="Use this rate")
    use.wait_for(state="visible", timeout=LONG_MS)
    chart = page.get_by_role("img", name="Smoothed training loss against the learning rate (log scale)")
    assert chart.locator("canvas").count() == 1
    text = page.locator("#lr-finder-suggestion").inner_text()
    assert text.startswith("Suggested learning rate: ")
    suggested = text.removeprefix("Suggested learning rate: ").split(" ")[0]
    assert 1e-7 <= float(suggested) <= 10
    use.click()
    assert page.get_by_label("Base learning rate", exact=True).input_value() == suggested
    assert page.get_by_role("status").filter(has_text="Base learning rate set to").count() == 1

    # Best epoch fields, then Create: the model's page marks its best snapshot.
    page.get_by_label("Monitor", exact=True).select_option("val_loss")
    page.get_by_label("Stop early").check()
    page.get_by_label("Patience (validations)").fill("2")
    page.get_by_label("Min delta").fill("0.001")
    page.get_by_label("Training epochs", exact=True).fill("2")
    page.get_by_label("Batch size", exact=True).fill("")  # the network's own (64) to train
    page.get_by_label("Model name", exact=True).fill("best")
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(f"{server.url}/models/2*")
    model_id = page.url.rsplit("/", 1)[1]
    # While it trains, the classify selector marks the best snapshot as it comes (js/job.js, no reload).
    page.locator("#classify-one-epoch option[data-best]").wait_for(state="attached", timeout=LONG_MS)
    final = server.wait_status(model_id, timeout=LONG_S)
    assert final["status"] == "Done", (suggested, final)
    page.reload()
    assert "(best)" in page.locator("#snapshots").inner_text()
    assert page.locator("#best-epoch").inner_text().startswith("Best val loss: ")
    assert "(best)" in page.locator("#classify-one-epoch option:checked").inner_text()
    # The loss chart marks the best epoch with a line.
    best_epoch = float(page.locator("#best-epoch").get_attribute("data-epoch"))
    page.wait_for_function("() => DIGITS.modelCharts && DIGITS.modelCharts.counts()['val/loss'] > 0")
    marks = page.evaluate("() => DIGITS.modelCharts.group.charts[0].spec.markers()")
    assert marks == [{"x": best_epoch, "label": "best", "stroke": "#6f42c1"}]
    watch.check()


def test_the_lr_finder_names_the_field_at_fault(server, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    watch = PageWatch(page).allow(r"/models/lr_finder/json$")  # the refusal this test causes
    sign_in(page, server.url, "ann")
    page.goto(f"{server.url}/models/images/classification/new")  # no dataset yet
    page.get_by_role("button", name="Find a learning rate").click()
    alert = page.locator("#lr-finder-error")
    alert.wait_for(state="visible", timeout=LONG_MS)
    assert alert.inner_text().startswith("Dataset: This field is required.")
    assert page.get_by_role("button", name="Find a learning rate").is_enabled()
    watch.check()
