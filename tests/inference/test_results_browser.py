"""Testing a model from its page in a real browser (Debian's Chromium) against the real server: classify many from
a list and from a zip, sort, filter, the mistakes gallery, CSV and JSON exports checked against the JSON twin,
paging through hundreds of images; errors shown in place under the forms; layer pictures that enlarge; Grad-CAM
of a chosen layer. Any page error, console error, failed request or 4xx/5xx the test did not cause fails it."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.support.browser import Chromium, PageWatch
from tests.support.imagegen import make_shapes
from tests.support.live import LiveServer
from tests.support.waiting import LONG_MS, LONG_S, SHORT_S
from tests.support.zips import folder_zip

pytestmark = [pytest.mark.browser, pytest.mark.slow]
# The dialog has finished opening (Bootstrap moves focus into it then; Escape works from there).
OPENED = "() => document.getElementById('tile-modal').contains(document.activeElement)"
MODEL_PAGE = re.compile(r"/models/\d{8}-\d{6}-[0-9a-f]{4}$")


@dataclass
class Trained:
    server: LiveServer
    http: requests.Session
    model: str
    val_list: str
    images: str
    tmp: object

    @property
    def model_url(self) -> str:
        return f"{self.server.url}/models/{self.model}"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A plain server with one inference worker and LeNet trained 2 epochs on gray 28x28 shapes."""
    tmp = tmp_path_factory.mktemp("results-browser")
    make_shapes(str(tmp / "images"), per_class=30, size=(24, 40))
    server = LiveServer(tmp / "jobs", entry=["-m", "digits"], env={"DIGITS_INFERENCE_WORKERS": "1"}).start()
    try:
        http = server.sign_in("ann")
        dataset = server.folder_dataset(http, tmp / "images")
        model = server.create_model(http, dataset)
        assert server.wait_status(model, timeout=LONG_S)["status"] == "Done"
        with open(tmp / "jobs" / dataset / "val.txt") as fh:
            val_list = fh.read()
        yield Trained(server, http, model, val_list, str(tmp / "images"), tmp)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def chromium(playwright_module):
    browser = Chromium(playwright_module)
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def playwright_module():
    from tests.support.browser import MISSING, available

    if not available():
        pytest.skip(MISSING)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture
def watched(chromium, trained):
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    watch = PageWatch(page)
    page.goto(trained.server.url + "/login")
    page.fill("#username", "ann")
    page.keyboard.press("Enter")
    page.wait_for_url(trained.server.url + "/")
    page.goto(trained.model_url)
    page.wait_for_selector("#classify-many-form")
    yield page, watch
    context.close()
    watch.check()


def classify_many(page, trained, list_text: str | None = None, zip_bytes: bytes | None = None) -> None:
    tmp = trained.tmp
    if list_text is not None:
        (tmp / "list.txt").write_text(list_text)
        page.set_input_files("#classify-many-list", str(tmp / "list.txt"))
    if zip_bytes is not None:
        (tmp / "images.zip").write_bytes(zip_bytes)
        page.set_input_files("#classify-many-zip", str(tmp / "images.zip"))
    page.get_by_role("button", name="Classify many").click()
    page.wait_for_url(re.compile(r"/classify_many/many-[0-9a-f]{16}$"), timeout=LONG_MS)


def column(page, cls: str) -> list[str]:
    return [t.strip() for t in page.locator(f"#classifications tbody td.{cls}").all_inner_texts()]


def test_classify_many_sort_filter_mistakes_and_exports_agree_with_the_json_twin(watched, trained):
    page, watch = watched
    classify_many(page, trained, trained.val_list)
    n = len(trained.val_list.splitlines())
    assert page.locator("#accuracy").is_visible()
    assert page.locator("#classifications tbody tr").count() == n
    # Thumbnails: small, lazy, served by the run; none inline.
    thumbs = page.locator("#classifications img.result-thumb")
    assert thumbs.count() == n and thumbs.first.get_attribute("loading") == "lazy"
    assert "data:" not in page.content().split('id="classifications"', 1)[1]
    page.wait_for_function("() => document.querySelector('#classifications img.result-thumb').naturalWidth > 0")

    # Sort by confidence: click the header (ascending), then again (descending).
    page.locator("#classifications th[data-sort-key=confidence] a").click()
    page.wait_for_selector("#classifications th[data-sort-key=confidence][aria-sort=ascending]")
    up = [float(t.rstrip("%")) for t in column(page, "result-confidence")]
    assert up == sorted(up) and len(up) == n
    page.locator("#classifications th[data-sort-key=confidence] a").press("Enter")
    page.wait_for_selector("#classifications th[data-sort-key=confidence][aria-sort=descending]")
    down = [float(t.rstrip("%")) for t in column(page, "result-confidence")]
    assert down == sorted(up, reverse=True)

    # Filter: true class "circle" and at least 40% confidence.
    page.select_option("#filter-truth", "circle")
    page.fill("#filter-min", "40")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r"truth=circle"))
    truths = column(page, "result-truth")
    assert truths and all(t.startswith("circle") for t in truths)
    assert all(float(t.rstrip("%")) >= 40 for t in column(page, "result-confidence"))
    assert page.locator("#filter-truth").input_value() == "circle"  # the filter stays chosen

    # Right or wrong: only the wrong ones (maybe none), each marked wrong.
    page.get_by_role("link", name="Clear").click()
    page.select_option("#filter-outcome", "wrong")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r"outcome=wrong"))
    twin = trained.http.post(
        trained.server.url + "/models/images/classification/classify_many/json",
        data={"job_id": trained.model},
        files={"image_list": ("val.txt", trained.val_list.encode())},
        timeout=SHORT_S,
    ).json()
    truth = {line.rsplit(" ", 1)[0]: line.rsplit(" ", 1)[1] for line in trained.val_list.splitlines()}
    labels = twin["confusion_matrix"]["labels"]
    wrong = {p for p, top in twin["classifications"].items() if labels[int(truth[p])] != top[0][0]}
    assert page.locator("#classifications tbody tr").count() == len(wrong)

    # The mistakes gallery: only the wrongly classified, true vs predicted.
    page.get_by_role("link", name=re.compile(r"^Mistakes \(\d+\)$")).click()
    page.wait_for_selector("#mistakes-gallery")
    cards = page.locator("#mistakes-gallery figure")
    assert cards.count() == len(wrong)
    for i in range(cards.count()):
        card = cards.nth(i)
        assert card.locator(".result-truth").inner_text() != card.locator(".result-predicted").inner_text()
        assert card.locator("img").get_attribute("alt") in wrong

    # Exports: every image, the same scores as the JSON twin (the same model and images give the same numbers).
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert len(rows) == n
    for row in rows:
        top = twin["classifications"][row["path"]]
        assert row["predicted_class"] == top[0][0] and float(row["confidence"]) == top[0][1]
        assert row["true_class"] == labels[int(truth[row["path"]])]
        assert row["correct"] == ("no" if row["path"] in wrong else "yes")
        assert [row[f"class_{n}"] for n in range(1, len(top) + 1)] == [label for label, _ in top]
    with page.expect_download() as download:
        page.get_by_role("link", name="Export JSON").click()
    exported = json.loads(Path(download.value.path()).read_text())
    for key in ("classifications", "top1_accuracy", "top5_accuracy", "confusion_matrix", "per_class_accuracy"):
        assert exported[key] == twin[key], key
    assert len(exported["images"]) == n and exported["errors"] == twin["errors"] == []


def test_classify_many_from_a_zip(watched, trained):
    page, watch = watched
    classify_many(page, trained, zip_bytes=folder_zip(trained.images))
    assert "90 images classified" in page.locator("#classify-many-meta").inner_text()
    assert page.locator("#classifications tbody tr").count() == 50  # the first page of 90
    assert page.locator("#results-pages").is_visible()


def test_paging_through_a_few_hundred_images(watched, trained):
    page, watch = watched
    lines = trained.val_list.splitlines()
    classify_many(page, trained, "\n".join((lines * 20)[:300]) + "\n")  # 300 images
    assert "300 images classified" in page.locator("#classify-many-meta").inner_text()
    assert page.locator("#results-count").inner_text().startswith("Showing 1–50 of 300")
    page.get_by_role("link", name="Next").click()
    page.wait_for_url(re.compile(r"page=2"))
    assert page.locator("#results-count").inner_text().startswith("Showing 51–100 of 300")
    first_line = page.locator("#classifications tbody tr").first.locator("td").nth(1).inner_text()
    assert first_line == "51"  # sorted by list line: the 51st image opens page 2
    page.get_by_role("link", name="Page 6").click()
    page.wait_for_url(re.compile(r"page=6"))
    assert page.locator("#results-count").inner_text().startswith("Showing 251–300 of 300")
    page.select_option("#filter-per-page", "200")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r"per_page=200"))
    assert page.locator("#classifications tbody tr").count() == 200
    assert page.locator("#classifications img.result-thumb").count() == 200


def test_errors_show_in_place_under_the_forms(watched, trained):
    page, watch = watched
    watch.allow(r"/models/images/classification/(classify_one|classify_many|top_n)$")
    (trained.tmp / "broken.png").write_bytes(b"this is not a picture")
    page.set_input_files("#classify-one-file", str(trained.tmp / "broken.png"))
    page.get_by_role("button", name="Classify one").click()
    error = page.locator("#classify-one-error .alert")
    error.wait_for()
    assert "not an image" in error.inner_text()
    assert page.locator("#classify-one-error").get_attribute("aria-live")
    assert MODEL_PAGE.search(page.url)  # still on the model page, the form ready again
    assert page.get_by_role("button", name="Classify one").is_enabled()

    (trained.tmp / "empty-list.txt").write_text("# nothing but a comment\n\n")
    page.set_input_files("#classify-many-list", str(trained.tmp / "empty-list.txt"))
    page.get_by_role("button", name="Top-N per class").click()
    many_error = page.locator("#classify-many-error .alert")
    many_error.wait_for()
    assert "names no images" in many_error.inner_text()
    page.get_by_role("button", name="Classify many").click()
    page.wait_for_function(
        "() => document.querySelector('#classify-many-error .alert') && "
        "!document.querySelector('#classify-many-form').getAttribute('aria-busy').includes('true')"
    )
    assert "names no images" in many_error.inner_text() and MODEL_PAGE.search(page.url)


def test_layer_pictures_enlarge_and_gradcam_takes_a_chosen_layer(watched, trained):
    page, watch = watched
    image = trained.val_list.splitlines()[0].rsplit(" ", 1)[0]
    page.set_input_files("#classify-one-file", image)
    page.check("#classify-one-vis")
    page.get_by_role("button", name="Classify one").click()
    page.wait_for_url(re.compile(r"/classify_one/one-[0-9a-f]{16}$"), timeout=LONG_MS)

    # A click enlarges a layer's activations in a dialog, pixels kept sharp; Escape closes it.
    tile = page.locator("#layers .tile-zoom").first
    tile.click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    page.wait_for_function(OPENED)
    big = page.locator("#tile-modal-image")
    assert big.get_attribute("src").startswith("data:image/png;base64,")
    assert page.evaluate("getComputedStyle(document.getElementById('tile-modal-image')).imageRendering") == "pixelated"
    assert big.bounding_box()["width"] > tile.locator("img").bounding_box()["width"] * 1.5
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")
    # ...and Enter on a focused picture does the same (here the second layer's, opened first).
    page.locator("#layers button[data-bs-toggle=collapse]").nth(1).click()
    second = page.locator("#layer-2 .tile-zoom").first
    second.wait_for()
    second.focus()
    page.keyboard.press("Enter")
    dialog.wait_for()
    page.wait_for_function(OPENED)
    assert page.locator("#tile-modal-title").inner_text().startswith("Activations of")
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")

    # Grad-CAM: the last convolution by default, another on request, with a legend.
    select = page.get_by_label("Grad-CAM layer")
    options = select.locator("option").all_inner_texts()
    assert len(options) == 2 and options[-1].endswith("(last convolution)")
    assert select.input_value() == "features.2"
    assert page.locator(".gradcam-legend .gradcam-scale").is_visible()
    before = page.locator("#gradcam-image").get_attribute("src")
    select.select_option("features.0")
    page.wait_for_function(
        "() => document.getElementById('gradcam-status').textContent === 'Grad-CAM of layer features.0.'"
    )
    assert page.locator("#gradcam-image").get_attribute("src") != before
    assert "features.0" in page.locator("#gradcam-image").get_attribute("alt")
