"""New Dataset's "Import Caffe LMDB" in Chromium against the real server: the method chosen, a refused folder
named beside its labelled field, the LMDB paths filled in, a labels file uploaded, and the import reaching Done
with its classes and where they came from on the dataset page."""

from __future__ import annotations

import re

import pytest

from tests.support.browser import PageWatch, sign_in
from tests.support.caffe_lmdb import convert_imageset, shape_images
from tests.support.live import LiveServer
from tests.support.waiting import LONG_MS

pytestmark = pytest.mark.browser
DATASET_PAGE = re.compile(r"/datasets/(\d{8}-\d{6}-[0-9a-f]{4})$")


@pytest.fixture
def server(tmp_path):
    s = LiveServer(tmp_path / "jobs").start()
    yield s
    s.stop()


def test_an_lmdb_is_chosen_filled_in_and_imported(server, browser, tmp_path):
    train = convert_imageset(tmp_path / "train_lmdb", shape_images(9), encoded=True)
    val = convert_imageset(tmp_path / "val_lmdb", shape_images(3, seed=1), encoded=True)
    names = tmp_path / "synsets.txt"
    names.write_text("circle\nsquare\ntriangle\n")
    not_lmdb = tmp_path / "plain"
    not_lmdb.mkdir()

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    watch = PageWatch(page).allow(r"/datasets/images/classification$")  # the refused form answers 400
    sign_in(page, server.url, "ann")
    page.get_by_role("link", name="New Dataset").click()
    page.get_by_text("Import Caffe LMDB").click()
    assert page.locator("#lmdb-image-note").is_visible()
    assert not page.get_by_label("Image type").is_visible()  # the records' own settings are used
    assert not page.get_by_label("Training images", exact=True).is_visible()

    page.get_by_label("Training LMDB", exact=True).fill(str(not_lmdb))
    page.get_by_label("Dataset name").fill("imported")
    page.get_by_role("button", name="Create").click()
    error = page.locator("#lmdb_train-error")
    error.wait_for()
    assert f"{not_lmdb} is not an LMDB: it holds no data.mdb" in error.inner_text()
    page.wait_for_function("() => document.activeElement.id === 'lmdb_train'")  # the focus on the field
    assert "Training LMDB: " in page.locator("#form-errors").inner_text()
    assert page.get_by_label("Training LMDB", exact=True).get_attribute("aria-invalid") == "true"

    page.get_by_label("Training LMDB", exact=True).fill(train)
    page.get_by_label("Validation LMDB", exact=True).fill(val)
    page.get_by_label("LMDB labels file to upload").set_input_files(str(names))
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(DATASET_PAGE)
    page.wait_for_selector("#job[data-status=Done]", timeout=LONG_MS)
    page.reload()
    assert page.locator("#class-distribution tbody th").all_inner_texts() == ["circle", "square", "triangle"]
    assert page.locator("#splits tr[data-split=train] .entries").inner_text() == "9"
    assert page.locator("#splits tr[data-split=val] .entries").inner_text() == "3"
    assert "Class names from the labels file synsets.txt." in page.locator("#import-labels").inner_text()
    assert train in page.locator("#import-sources").inner_text()
    assert page.locator("img.mean-image").evaluate("img => img.complete && img.naturalWidth") == 20
    watch.check()
