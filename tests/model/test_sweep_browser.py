"""In Chromium against the real server: a random-search sweep submitted from New Model, its group page's table
(live, sortable) and overlaid chart (drawn, zoomed, log scale), and the previous model's snapshot picker."""

from __future__ import annotations

import re

import pytest

from tests.support import JSON
from tests.support.browser import PageWatch, shot, sign_in
from tests.support.forms import model_form
from tests.support.imagegen import make_shapes
from tests.support.live import LiveServer
from tests.support.waiting import LONG_MS, LONG_S, SHORT_S

pytestmark = pytest.mark.browser

NEW = "/models/images/classification/new"
CREATE = "/models/images/classification"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The plain devserver with a shapes dataset and a model trained 2 epochs on it (a snapshot each epoch)."""
    root = tmp_path_factory.mktemp("sweeps")
    make_shapes(str(root / "images"), per_class=8, size=(24, 40))
    s = LiveServer(root / "jobs", entry=["-m", "digits"]).start()
    try:
        http = s.sign_in("ann")
        s.dataset_id = s.folder_dataset(http, root / "images")
        r = http.post(s.url + CREATE + "/json", data=model_form(s.dataset_id, model_name="prev"), timeout=SHORT_S)
        assert r.status_code == 200, r.text
        s.previous_id = r.json()["id"]
        assert s.wait_status(s.previous_id, timeout=LONG_S)["status"] == "Done"
        s.http = http
        yield s
    finally:
        s.stop()


def open_page(browser, server):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    watch = PageWatch(page)
    sign_in(page, server.url, "ann")
    return page, watch


def cell_values(page, column: int) -> list[str]:
    return page.eval_on_selector_all("#sweep-rows tr", f"rows => rows.map(r => r.cells[{column}].dataset.value)")


def test_a_random_search_from_new_model_and_its_group_page(server, browser):
    page, watch = open_page(browser, server)
    watch.allow(r"/models/images/classification$")  # the form sent back with its error, on purpose (400)
    page.goto(server.url + NEW)
    assert page.is_hidden("#random-search-fields")
    page.focus("#sweep_random")
    page.keyboard.press("Space")  # from the keyboard
    assert page.is_visible("#sweep_count")
    page.click("label[for=framework-torch]")
    page.fill("#model_name", "rs")
    page.fill("#train_epochs", "1")
    page.fill("#sweep_count", "2")
    page.fill("#sweep_seed", "9")
    page.fill("#sweep_lr_min", "0.05")
    page.fill("#sweep_lr_max", "0.005")  # backwards: refused, named by its label
    page.click("#model-form button[type=submit]")
    page.wait_for_selector("#form-errors")
    assert "Learning rate to" in page.inner_text("#form-errors")
    assert page.is_visible("#sweep_lr_max.is-invalid")  # the search stays open on the fields it holds
    page.fill("#sweep_lr_min", "0.005")
    page.fill("#sweep_lr_max", "0.05")
    page.click("#model-form button[type=submit]")
    page.wait_for_url(re.compile(r"/models/sweeps/[0-9a-f]+$"))
    assert page.inner_text("#sweep-search").startswith("Random search, seed 9: 2 models")
    assert page.locator("#sweep-rows tr").count() == 2

    # The table follows both models live to Done; the chart overlays their curves.
    page.wait_for_function(
        "() => document.querySelectorAll('#sweep-rows tr[data-status=Done]').length === 2", timeout=LONG_MS
    )
    page.wait_for_selector("#sweep[data-curves='4']", timeout=LONG_MS)
    page.wait_for_selector("#sweep-chart canvas")
    legend = page.locator("#sweep-chart .u-legend .u-series").all_inner_texts()
    assert sum("learning_rate" in t and "loss" in t for t in legend) == 2
    assert sum("learning_rate" in t and "accuracy" in t for t in legend) == 2
    shot(page, "sweep-group")

    # Sorting by the learning rate (column 1): ascending, then descending; aria-sort says which.
    button = page.get_by_role("button", name="learning_rate")
    button.click()
    rates = [float(v) for v in cell_values(page, 1)]
    assert rates == sorted(rates)
    assert page.get_attribute("#sweep-table thead th:nth-child(2)", "aria-sort") == "ascending"
    button.focus()
    page.keyboard.press("Enter")
    assert [float(v) for v in cell_values(page, 1)] == sorted(rates, reverse=True)
    assert page.get_attribute("#sweep-table thead th:nth-child(2)", "aria-sort") == "descending"
    page.get_by_role("button", name="Best val accuracy").click()
    best = [float(v) for v in cell_values(page, 4)]
    assert best == sorted(best)

    # Zoom, pan and reset move the chart's epoch axis; the log switch redraws it.
    scale = "() => { const u = document.querySelector('#sweep-chart .uplot'); return u ? u.textContent.length : 0; }"
    assert page.evaluate(scale) > 0
    page.click("[data-chart-action=zoom-in]")
    page.click("[data-chart-action=pan-left]")
    page.click("[data-chart-action=pan-right]")
    page.click("[data-chart-action=zoom-out]")
    page.click("[data-chart-action=reset]")
    page.focus("#sweep-chart")
    page.keyboard.press("+")
    page.keyboard.press("0")
    page.focus("#sweep-log-scale")
    page.keyboard.press("Space")
    assert page.is_checked("#sweep-log-scale")
    page.wait_for_selector("#sweep-chart canvas")

    # A model's page leads back to its group.
    page.click("#sweep-rows tr a")
    page.wait_for_url(re.compile(r"/models/\d{8}-\d{6}-[0-9a-f]{4}$"))
    page.click("#sweep-link")
    page.wait_for_url(re.compile(r"/models/sweeps/[0-9a-f]+$"))
    page.wait_for_selector("#sweep[data-loaded=true]")
    watch.check()


def test_the_snapshot_picker_starts_a_model_from_the_chosen_epoch(server, browser):
    page, watch = open_page(browser, server)
    page.goto(server.url + NEW)
    assert page.is_hidden("#previous-snapshot-box")
    page.click("label[for=method-previous]")
    page.select_option("#previous_networks", server.previous_id)
    field = f"{server.previous_id}-snapshot"
    picker = page.locator(f"select[name='{field}']")
    assert picker.is_visible()
    assert page.get_by_label("Start from its snapshot").get_attribute("name") == field  # labelled
    options = picker.locator("option")
    assert [options.nth(i).get_attribute("value") for i in range(options.count())] == ["2", "1", "0"]
    assert options.nth(0).inner_text() == "Epoch 2 (latest)" and picker.input_value() == "2"
    picker.select_option("1")
    page.fill("#model_name", "from epoch 1")
    page.fill("#train_epochs", "1")
    page.click("#model-form button[type=submit]")
    page.wait_for_url(re.compile(r"/models/\d{8}-\d{6}-[0-9a-f]{4}$"))
    job_id = page.url.rsplit("/", 1)[1]
    info = server.http.get(f"{server.url}/models/{job_id}/json", timeout=SHORT_S).json()
    assert info["solver"]["pretrained"] == f"../{server.previous_id}/snapshot_epoch_1.pt"
    assert server.http.post(f"{server.url}/models/{job_id}/abort", headers=JSON, timeout=SHORT_S).status_code == 200
    server.wait_status(job_id, timeout=LONG_S)
    watch.check()
