"""Every page a person reaches is usable on a phone: at a 400x800 viewport in Chromium, against the real server
with a real dataset and a trained LeNet, no page scrolls sideways as a whole (wide tables scroll inside their
card), the navbar folds into a menu that opens, the console shows each job as a card, and the charts fit their
column. Nothing may fail on any page (tests/support/browser.py PageWatch). The model page at 400 px is shot into
test-artifacts/small-screen-model.png."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.browser import PageWatch, shot
from tests.support.imagegen import make_shapes
from tests.support.live import LiveServer
from tests.support.waiting import LONG_MS, LONG_S

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PHONE = {"width": 400, "height": 800}
# The page's width as laid out, and the widest thing that sticks out of it (for the failure message).
WIDTHS = """() => {
  const root = document.documentElement, w = root.clientWidth;
  const inScroller = (el) => {
    for (let p = el.parentElement; p; p = p.parentElement) {
      if (["auto", "scroll", "hidden"].includes(getComputedStyle(p).overflowX)) return true;
    }
    return false;
  };
  const out = [...document.querySelectorAll("body *")]
    .filter((el) => el.getBoundingClientRect().right > w + 1 && !inScroller(el))
    .map((el) => `${el.tagName.toLowerCase()}#${el.id}.${String(el.className).split(" ")[0]}`);
  return {scroll: root.scrollWidth, client: w, sticking_out: out.slice(0, 5)};
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("small-screens")
    server = LiveServer(root / "jobs", entry=["-m", "digits"], env={"DIGITS_INFERENCE_WORKERS": "1"}).start()
    make_shapes(str(root / "images"), per_class=12, size=(24, 40))
    http = server.sign_in()
    server.dataset_id = server.folder_dataset(http, root / "images", folder_pct_val="25")
    fields = {"train_epochs": "1", "batch_size": "8", "random_seed": "3", "model_name": "a model with a long name"}
    server.model_id = server.create_model(http, server.dataset_id, **fields)
    assert server.wait_status(server.model_id, timeout=LONG_S)["status"] == "Done"
    server.images = sorted((root / "images").glob("*/*.png"))
    server.image_list = root / "list.txt"
    server.image_list.write_text("".join(f"{p} {i % 3}\n" for i, p in enumerate(server.images[:9])))
    yield server
    server.stop()


def assert_fits(page, name: str) -> None:
    page.wait_for_load_state("networkidle")
    got = page.evaluate(WIDTHS)
    assert got["client"] == PHONE["width"]
    assert got["scroll"] <= got["client"] + 1, f"{name} scrolls sideways at 400 px: {got}"


def test_every_page_fits_a_phone(server, browser):
    page = browser.new_page(viewport=PHONE)
    watch = PageWatch(page)
    try:
        page.goto(server.url + "/login")
        assert_fits(page, "sign-in")
        # The navbar is folded: its menu opens from the toggler, by keyboard.
        sign_in = page.get_by_role("link", name="Sign in")
        assert not sign_in.is_visible()
        menu = page.get_by_role("button", name="Menu")
        menu.focus()
        page.keyboard.press("Enter")
        sign_in.wait_for(state="visible")
        assert menu.get_attribute("aria-expanded") == "true"
        page.fill("#username", "ann")
        page.keyboard.press("Enter")
        page.wait_for_url(server.url + "/")

        # The console: one card per job, its name, status, progress and metrics all inside the screen.
        assert_fits(page, "console")
        row = page.locator(f'tr[data-job-id="{server.model_id}"]')
        box = row.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
        for cell in ("td.job-name", "td.job-status", ".sparkline-cell", "td.elapsed"):
            part = row.locator(cell).bounding_box()
            assert part["x"] >= 0 and part["x"] + part["width"] <= PHONE["width"] + 1, cell
        labels = row.evaluate(
            "(tr) => [...tr.cells].map((td) => getComputedStyle(td, '::before').content).filter((c) => c !== 'none')"
        )
        assert labels == ['"Owner "', '"Accuracy "', '"Submitted "', '"Elapsed "'], "each value says what it is"
        shot(page, "small-screen-console")

        for name, path in [
            ("New Dataset", "/datasets/images/classification/new"),
            ("dataset page", f"/datasets/{server.dataset_id}"),
            ("explore", f"/datasets/{server.dataset_id}/explore?split=train"),
            ("New Model", "/models/images/classification/new"),
        ]:
            page.goto(server.url + path)
            assert_fits(page, name)

        # The model page: its charts and Test section fit the column.
        model_url = f"{server.url}/models/{server.model_id}"
        page.goto(model_url)
        page.wait_for_function("DIGITS.modelCharts.group.charts.every((c) => c.u && c.u.data[0].length > 0)")
        page.wait_for_selector("#test-model:not([hidden])")
        assert_fits(page, "model page")
        for chart in ("#chart-loss", "#chart-lr"):
            width = page.evaluate(f"document.querySelector('{chart} .uplot').getBoundingClientRect().right")
            assert width <= PHONE["width"], chart
        shot(page, "small-screen-model")

        page.set_input_files("#classify-one-file", str(server.images[0]))
        page.locator("#classify-one-form button[type=submit]").click()
        page.wait_for_url(re.compile(r"/classify_one/"), timeout=LONG_MS)
        assert_fits(page, "classify one")

        for button, url in (("Classify many", r"/classify_many/"), ("Top-N per class", r"/top_n/")):
            page.goto(model_url)
            page.set_input_files("#classify-many-list", str(Path(server.image_list)))
            page.get_by_role("button", name=button, exact=True).click()
            page.wait_for_url(re.compile(url), timeout=LONG_MS)
            assert_fits(page, button)
        watch.check()
    finally:
        page.close()
