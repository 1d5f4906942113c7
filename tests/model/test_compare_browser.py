"""In Chromium against the real server: two models picked on the home page (keyboard and checkboxes), compared: both
models' curves overlaid while one still trains (its points and its status follow live), only the settings that
differ, the table sorted from the keyboard, a model's lines hidden and shown, and the table downloaded as CSV."""

from __future__ import annotations

import csv
import io
import re

import pytest

from tests.support import JSON
from tests.support.browser import PageWatch, shot, sign_in
from tests.support.imagegen import make_shapes
from tests.support.live import LiveServer
from tests.support.waiting import LONG_MS, LONG_S, SHORT_S

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The plain devserver with a shapes dataset and a model trained 2 epochs on it."""
    root = tmp_path_factory.mktemp("compare")
    make_shapes(str(root / "images"), per_class=8, size=(24, 40))
    s = LiveServer(root / "jobs", entry=["-m", "digits"]).start()
    try:
        s.http = s.sign_in("ann")
        s.dataset_id = s.folder_dataset(s.http, root / "images")
        s.done_id = s.create_model(s.http, s.dataset_id, model_name="steady", learning_rate="0.01", batch_size="4")
        assert s.wait_status(s.done_id, timeout=LONG_S)["status"] == "Done"
        yield s
    finally:
        s.stop()


def cell_values(page, column: int) -> list[str]:
    return page.eval_on_selector_all("#compare-rows tr", f"rows => rows.map(r => r.cells[{column}].dataset.value)")


def test_two_models_picked_on_the_home_page_compared_live_sorted_and_downloaded(server, browser):
    # A second model that trains long enough to be running while the page follows it (aborted below).
    running_id = server.create_model(
        server.http, server.dataset_id, model_name="quick", learning_rate="0.05", batch_size="8", train_epochs="500"
    )
    server.wait_progress(running_id)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    watch = PageWatch(page)
    try:
        sign_in(page, server.url, "ann")
        done_box = page.get_by_role("checkbox", name="Compare steady")
        running_box = page.get_by_role("checkbox", name="Compare quick")
        done_box.focus()
        page.keyboard.press("Space")  # from the keyboard
        assert done_box.is_checked()
        page.get_by_role("button", name="Compare").click()  # one is not a comparison: said, and the page stays
        assert page.get_by_role("alert").inner_text() == "Tick one more model to compare."
        assert page.url == server.url + "/"
        running_box.check()
        page.focus("#compare-models")
        with page.expect_navigation(url=re.compile(r"/models/compare\?")):
            page.keyboard.press("Enter")
        # The ids in the order the list shows them (running jobs first).
        assert page.url.endswith(f"/models/compare?job_id={running_id}&job_id={server.done_id}")
        assert page.locator("#compare-rows tr").count() == 2

        # Only the settings that differ are columns; the shared ones are said once.
        titles = page.locator("#compare-table thead button").all_inner_texts()
        assert titles[:5] == ["Model", "Status", "Progress", "Training epochs", "Batch size"]
        assert "Base learning rate" in titles and "Momentum" not in titles and "Best val accuracy" in titles
        assert "Network lenet" in page.inner_text("#compare-same")

        # Both models' curves, one colour each; the running one's points keep coming.
        page.wait_for_selector("#compare[data-loaded=true]")
        page.wait_for_selector("#compare-loss-chart canvas")
        page.wait_for_selector("#compare-accuracy-chart canvas", timeout=LONG_MS)
        legend = page.locator("#compare-loss-chart .u-legend .u-series").all_inner_texts()
        assert any(t.startswith("steady val loss") for t in legend) and any(
            t.startswith("steady train loss") for t in legend
        )
        points = int(page.get_attribute("#compare", "data-points"))
        page.wait_for_function(f"() => Number(document.getElementById('compare').dataset.points) > {points + 2}")
        page.wait_for_function(
            "() => /quick val loss/.test(document.querySelector('#compare-loss-chart .u-legend').textContent)",
            timeout=LONG_MS,
        )
        shot(page, "compare")
        r = server.http.post(f"{server.url}/models/{running_id}/abort", headers=JSON, timeout=SHORT_S)
        assert r.status_code == 200, r.text
        page.wait_for_selector(f"#compare-rows tr[data-job-id='{running_id}'][data-status=Aborted]", timeout=LONG_MS)

        # Sorting by the learning rate: ascending, then (Enter on the focused button) descending.
        column = titles.index("Base learning rate")
        button = page.get_by_role("button", name="Base learning rate")
        button.click()
        assert [float(v) for v in cell_values(page, column)] == [0.01, 0.05]
        assert page.get_attribute(f"#compare-table thead th:nth-child({column + 1})", "aria-sort") == "ascending"
        button.focus()
        page.keyboard.press("Enter")
        assert [float(v) for v in cell_values(page, column)] == [0.05, 0.01]
        assert page.get_attribute(f"#compare-table thead th:nth-child({column + 1})", "aria-sort") == "descending"
        page.get_by_role("button", name="Best val accuracy", exact=True).click()
        best = [float(v) for v in cell_values(page, titles.index("Best val accuracy")) if v]
        assert best == sorted(best) and best

        # A model's lines hidden and shown again, on both charts.
        shown = "() => document.querySelectorAll('#compare-loss-chart .u-legend .u-series').length"
        before = page.evaluate(shown)
        page.get_by_role("checkbox", name="quick").uncheck()
        page.wait_for_function(f"{shown} === {before - 2}")
        assert "quick" not in page.inner_text("#compare-accuracy-chart")
        page.get_by_role("checkbox", name="quick").check()
        page.wait_for_function(f"{shown} === {before}")
        page.click("[data-chart-action=zoom-in]")
        page.click("[data-chart-action=reset]")
        page.check("#compare-log-scale")
        page.wait_for_selector("#compare-loss-chart canvas")

        # The table as CSV.
        with page.expect_download() as info:
            page.click("#compare-csv")
        assert info.value.failure() is None
        with open(info.value.path(), encoding="utf-8") as fh:
            rows = list(csv.reader(io.StringIO(fh.read())))
        assert rows[0][:3] == ["id", "name", "status"] and "Base learning rate" in rows[0]
        assert [r[:3] for r in rows[1:]] == [[running_id, "quick", "Aborted"], [server.done_id, "steady", "Done"]]
        assert [r[rows[0].index("Base learning rate")] for r in rows[1:]] == ["0.05", "0.01"]
        watch.check()
    finally:
        context.close()
