"""A first dataset without guesswork, in Chromium against the real server: a folder typed as ~/..., the preview of
its classes, the warning for a folder one level too high and its fix, an error beside its labelled field with the
focus on it, the lists a dataset was parsed into, and Clone to a filled-in form that builds again."""

from __future__ import annotations

import re

import pytest

from tests.support.imagegen import make_shapes
from tests.support.live import LiveServer
from tests.support.waiting import LONG_MS

pytestmark = pytest.mark.browser
DATASET_PAGE = re.compile(r"/datasets/(\d{8}-\d{6}-[0-9a-f]{4})$")


@pytest.fixture
def home(tmp_path):
    """The home folder of the account the server runs as: ~/pictures holds one folder of class folders."""
    folder = tmp_path / "home"
    make_shapes(str(folder / "pictures" / "shapes"), per_class=4, size=(20, 30))
    return folder


@pytest.fixture
def server(tmp_path, home):
    s = LiveServer(tmp_path / "jobs", env={"HOME": str(home)}).start()
    yield s
    s.stop()


class Problems:
    """Page errors, console errors, failed requests and answers of 400 or more, less those a test causes."""

    def __init__(self, page):
        self.seen: list[str] = []
        self.expected: list[re.Pattern] = []
        page.on("pageerror", lambda e: self.seen.append(f"page error: {e}"))
        page.on("console", self._console)
        page.on("requestfailed", self._failed)
        page.on("response", self._response)

    def expect(self, method: str, url: str) -> None:
        self.expected.append(re.compile(f"{method} {re.escape(url)}$"))

    def _failed(self, request) -> None:
        # A request in flight when the page navigates (a Socket.IO poll, the job page fetching itself to refresh its
        # live regions) is cut by the browser itself, as tests/support/browser.py PageWatch also allows.
        if "ERR_ABORTED" in (request.failure or ""):
            return
        self.seen.append(f"failed: {request.method} {request.url} {request.failure}")

    def _console(self, message) -> None:
        # Chromium also logs an answer of 400 or more as a console error; _response judges those.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.seen.append(f"console error: {message.text}")

    def _response(self, response) -> None:
        what = f"{response.request.method} {response.url}"
        if response.status >= 400 and not any(p.match(what) for p in self.expected):
            self.seen.append(f"HTTP {response.status}: {what}")

    def check(self) -> None:
        assert not self.seen, "\n".join(self.seen)


def signed_in_page(browser, server):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems = Problems(page)
    page.goto(server.url + "/login")
    page.fill("#username", "ann")
    page.keyboard.press("Enter")
    page.wait_for_url(server.url + "/")
    return page, problems


def test_a_home_folder_previewed_fixed_built_and_cloned(server, browser, home):
    page, problems = signed_in_page(browser, server)
    page.get_by_role("link", name="New Dataset").click()
    field = page.get_by_label("Training images", exact=True)
    field.click()
    page.keyboard.type("~/pictures")  # one level too high: it holds a single folder of class folders
    preview = page.locator("#folder_train-preview")
    meant = str(home / "pictures" / "shapes")
    warning = preview.locator(".folder-preview-warning")
    warning.wait_for()
    assert warning.get_attribute("data-kind") == "too_high"
    assert f"did you mean {meant}?" in warning.inner_text()
    assert preview.locator(".folder-preview-summary").inner_text() == "1 class, 12 images: shapes 12"
    warning.get_by_role("button", name=f"Use {meant}").click()
    assert field.input_value() == meant
    page.wait_for_function(
        "() => document.querySelector('#folder_train-preview .folder-preview-summary')?.textContent"
        " === '3 classes, 12 images: circle 4, square 4, triangle 4'"
    )
    assert preview.locator(".folder-preview-warning").count() == 0
    assert page.evaluate("document.activeElement.id") == "folder_train"

    page.get_by_label("Image type").select_option("1")
    page.get_by_label("Width", exact=True).fill("16")
    page.get_by_label("Height", exact=True).fill("16")
    page.get_by_label("Dataset name").fill("shapes")
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(DATASET_PAGE)
    first = DATASET_PAGE.search(page.url).group(1)
    page.wait_for_selector("#job[data-status=Done]", timeout=LONG_MS)
    page.reload()  # the page as it is once built (the lists are written by the parse task)

    lists = page.locator("#dataset-lists")
    assert lists.get_by_role("link").all_inner_texts() == ["labels.txt", "train.txt", "val.txt"]
    lists.get_by_role("link", name="labels.txt").click()
    assert page.locator("body").inner_text().split() == ["circle", "square", "triangle"]
    page.go_back()

    page.get_by_role("link", name="Clone", exact=True).click()
    page.wait_for_url(re.compile(rf"/datasets/images/classification/new\?clone={first}$"))
    assert page.get_by_label("Dataset name").input_value() == "shapes (clone)"
    assert page.get_by_label("Training images", exact=True).input_value() == meant
    assert page.get_by_label("Image type").input_value() == "1"
    assert page.get_by_label("Width", exact=True).input_value() == "16"
    assert "Filled in from shapes" in page.locator("#clone-note").inner_text()
    # The preview of the filled-in folder shows at once.
    page.wait_for_function(
        "() => document.querySelector('#folder_train-preview .folder-preview-summary')?.textContent"
        " === '3 classes, 12 images: circle 4, square 4, triangle 4'"
    )
    page.get_by_label("% for validation").fill("50")
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(DATASET_PAGE)
    assert DATASET_PAGE.search(page.url).group(1) != first
    assert page.locator("h1").inner_text().startswith("shapes (clone)")
    page.wait_for_selector("#job[data-status=Done]", timeout=LONG_MS)
    page.reload()
    assert page.locator("#splits tr[data-split=val] .entries").inner_text() == "6"
    problems.check()


def test_a_refused_folder_is_named_by_its_label_beside_it_with_the_focus_on_it(server, browser, home):
    page, problems = signed_in_page(browser, server)
    page.goto(server.url + "/datasets/images/classification/new")
    page.get_by_label("Training images", exact=True).fill("~/pictures/shapes/circle")
    warning = page.locator("#folder_train-preview .folder-preview-warning")
    warning.wait_for()  # images but no class folders: the folder above is meant
    assert "pick the folder that holds one folder per class" in warning.inner_text()
    assert warning.get_by_role("button").all_inner_texts() == [f"Use {home / 'pictures' / 'shapes'}"]

    page.get_by_label("Training images", exact=True).fill("~/nothing/here")
    page.wait_for_function("() => /does not exist/.test(document.querySelector('#folder_train-preview')?.textContent)")
    page.get_by_label("Dataset name").fill("nothing")
    problems.expect("POST", server.url + "/datasets/images/classification")  # refused on purpose: a 400 page
    page.get_by_role("button", name="Create").click()
    page.wait_for_selector("#form-errors")
    message = f"~/nothing/here ({home}/nothing/here) does not exist"
    summary = page.locator("#form-errors")
    assert f"Training images: {message}" in summary.inner_text()
    assert "folder_train" not in summary.inner_text()
    # Beside the field, which is marked invalid, described by the message, and has the focus.
    page.wait_for_function("() => document.activeElement.id === 'folder_train'")
    field = page.get_by_label("Training images", exact=True)
    assert "is-invalid" in field.get_attribute("class") and field.get_attribute("aria-invalid") == "true"
    assert page.locator("#folder_train-error").inner_text() == message
    described = field.evaluate(
        "el => el.getAttribute('aria-describedby').split(' ').map(id => document.getElementById(id)?.textContent)"
    )
    assert message in described
    # The summary's link takes the focus to its field.
    page.get_by_label("Dataset name").focus()
    summary.get_by_role("link", name="Training images").click()
    assert page.evaluate("document.activeElement.id") == "folder_train"
    problems.check()


def test_an_hdf5_dataset_is_chosen_on_the_page_with_its_compression(server, browser, home):
    page, problems = signed_in_page(browser, server)
    page.goto(server.url + "/datasets/images/classification/new")
    compression = page.get_by_label("Compression")
    assert compression.is_hidden()  # an LMDB is never compressed
    page.get_by_label("Database backend").select_option("hdf5")
    assert compression.is_visible() and page.get_by_label("Image encoding").is_disabled()  # raw pixels in HDF5
    compression.select_option("gzip")
    page.get_by_label("Training images", exact=True).fill("~/pictures/shapes")
    page.get_by_label("Width", exact=True).fill("16")
    page.get_by_label("Height", exact=True).fill("16")
    page.get_by_label("Dataset name").fill("shapes in hdf5")
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(DATASET_PAGE)
    page.wait_for_selector("#job[data-status=Done]", timeout=LONG_MS)
    dataset_id = DATASET_PAGE.search(page.url).group(1)
    js = page.request.get(f"{server.url}/datasets/{dataset_id}/json").json()
    assert {(t["backend"], t["compression"]) for t in js["CreateDbTasks"]} == {("hdf5", "gzip")}
    assert "gzip" in page.locator("main").inner_text()
    # Back to LMDB, the encoding is chosen again and compression hides.
    page.goto(server.url + "/datasets/images/classification/new")
    page.get_by_label("Database backend").select_option("hdf5")
    page.get_by_label("Database backend").select_option("lmdb")
    assert page.get_by_label("Compression").is_hidden() and page.get_by_label("Image encoding").is_enabled()
    problems.check()
