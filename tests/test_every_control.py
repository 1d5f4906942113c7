"""Every page a person reaches from the home page, and every control on it, used in Chromium against the real
server with real workers: the navigation, the dataset and model forms (each tab and option), explore with its
filters and paging, rename and notes, clone, abort and resume, the charts' controls, downloads of each epoch,
classify one (with visualizations) / many / top-N, and delete. Every link on every page is followed too.

The suite fails on any page error, console error, failed request or 4xx/5xx answer it did not cause on purpose
(tests/support/browser.py PageWatch), and on any control that it saw on a page and never used
(tests/support/clicks.py ControlLedger): a control added without a test that uses it fails here."""

from __future__ import annotations

import io
import os
import re
import tarfile
import zipfile
from urllib.parse import urljoin, urlparse

import pytest

from tests.support.browser import PageWatch, fill_folder, shot
from tests.support.clicks import ControlLedger, page_kind
from tests.support.imagegen import make_shapes
from tests.support.live import LiveServer
from tests.support.waiting import LONG_MS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

JOB_URL = re.compile(r"/(datasets|models)/\d{8}-\d{6}-[0-9a-f]{4}$")

# Controls this suite sees and deliberately leaves alone, with the reason.
LEFT_ALONE = {
    # Signing out ends the session the rest of the suite uses; tests/test_auth_sessions.py signs out in Chromium.
    "*": {"button:Sign out"},
    # A dataset of 90 small images is built before a click could land; the same Abort form (jobs/_header.html,
    # one route for every job) is used on the model page here and in tests/test_live_pages.py.
    "/datasets/<id>": {"button:Abort"},
    # The navigation bar's "Sign in" on the sign-in page itself leads where the person already is.
    "/login": {"a:Sign in"},
}


@pytest.fixture
def server(tmp_path):
    s = LiveServer(tmp_path / "jobs", entry=["-m", "digits"], env={"DIGITS_INFERENCE_WORKERS": "1"}).start()
    yield s
    s.stop()


class Person:
    """One browser context driven like a person: a page, what went wrong on it, and what it used."""

    def __init__(self, browser, server):
        self.server = server
        self.context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        self.ledger = ControlLedger(self.context)
        self.page = self.context.new_page()
        self.watch = PageWatch(self.page)
        self.page.on("dialog", lambda d: d.accept())  # "Delete …?"
        self.links_followed: set[str] = set()

    def click(self, selector: str, **options):
        self.page.locator(selector).first.click(**options)

    def submit_and_wait(self, selector: str, url_pattern) -> None:
        with self.page.expect_navigation(url=url_pattern):
            self.click(selector)

    def download(self, selector: str) -> bytes:
        with self.page.expect_download() as info:
            self.click(selector)
        path = info.value.path()
        assert info.value.failure() is None, info.value.failure()
        with open(path, "rb") as fh:
            return fh.read()

    def follow_links(self) -> None:
        """GET every same-origin link on the page (once per link in the suite), as the browser would."""
        hrefs = self.page.eval_on_selector_all("main a[href]", "els => els.map(e => e.getAttribute('href'))")
        for href in hrefs:
            url = urljoin(self.page.url, href)
            if urlparse(url).netloc != urlparse(self.server.url).netloc or href.startswith("#"):
                continue
            url = url.split("#")[0]
            if url in self.links_followed or "/logout" in url:
                continue
            self.links_followed.add(url)
            r = self.page.request.get(url)
            assert r.status < 400, f"{url} (linked from {self.page.url}) answered {r.status}"

    def settle(self) -> None:
        """Take stock of the controls now shown and follow the page's links."""
        self.ledger.note_inventory(self.page)
        self.follow_links()


def test_every_control_a_person_reaches_from_home(server, browser, tmp_path):
    person = Person(browser, server)
    try:
        walk(person, server, tmp_path)
    except BaseException:
        shot(person.page, "every-control-failure")  # what the page showed when the step failed
        raise


def walk(ann: Person, server, tmp_path) -> None:
    make_shapes(str(tmp_path / "images" / "train"), per_class=24, size=(24, 40))
    make_shapes(str(tmp_path / "images" / "val"), per_class=6, size=(24, 40), seed=1)
    images = tmp_path / "images"
    page = ann.page

    # ---- home, sign in ----
    page.goto(server.url + "/")
    ann.settle()
    ann.click("text=Sign in")
    ann.settle()
    page.fill("#username", "ann")
    ann.submit_and_wait("form button[type=submit]", re.compile(re.escape(server.url) + r"/\??$"))
    ann.settle()

    # ---- New Dataset: both sources shown, the optional folders opened, then built from folders ----
    ann.click("a:has-text('New Dataset')")
    page.wait_for_selector("#dataset-form")
    ann.settle()
    ann.click("label[for=method-textfile]")
    assert page.locator("[data-method=textfile]").is_visible()
    ann.settle()
    lists = tmp_path / "lists.txt"
    lists.write_text("a.png 0\n")
    for check in ("#textfile_use_val", "#textfile_use_test", "#textfile_shuffle", "#textfile_use_local_files"):
        page.locator(check).click()
        page.locator(check).click()  # and back
    for field in ("#textfile_train_images", "#textfile_val_images", "#textfile_test_images", "#textfile_labels_file"):
        if page.locator(field).is_visible():
            page.set_input_files(field, str(lists))
            page.set_input_files(field, [])
    ann.settle()
    for check in ("#textfile_use_val", "#textfile_use_test"):  # fields shown only once checked
        page.locator(check).click()
        ann.settle()
        for field in ("#textfile_val_images", "#textfile_test_images"):
            if page.locator(field).is_visible():
                page.set_input_files(field, str(lists))
                page.set_input_files(field, [])
        page.locator(check).click()
    # Import Caffe LMDB: its fields used and left (tests/dataset/test_import_lmdb_browser.py imports one).
    ann.click("label[for=method-lmdb]")
    assert page.locator("#lmdb-image-note").is_visible() and not page.locator("#resize_channels").is_visible()
    ann.settle()
    page.fill("#lmdb_train", str(images / "train"))
    page.fill("#lmdb_val", str(images / "val"))
    for browse in page.locator("button[data-folder-picker]:visible").all():
        browse.click()  # the picker opens on the typed folder
        page.wait_for_selector(".folder-picker:not(.d-none) .folder-list")
        browse.click()  # and closes
    page.set_input_files("#lmdb_labels_file", str(lists))
    page.set_input_files("#lmdb_labels_file", [])
    ann.click("label[for=method-folder]")
    archive = tmp_path / "empty.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("x/readme.txt", "not an image")
    page.set_input_files("#folder_train_zip", str(archive))
    page.set_input_files("#folder_train_zip", [])
    fill_folder(page, "#folder_train", str(images / "train"))
    page.check("#has_val_folder")
    fill_folder(page, "#folder_val", str(images / "val"))
    page.check("#has_test_folder")
    for browse in page.locator("button[data-folder-picker]:visible").all():
        browse.click()  # the picker opens on the typed folder
        page.wait_for_selector(".folder-picker:not(.d-none) .folder-list")
        browse.click()  # and closes
    page.uncheck("#has_test_folder")
    page.select_option("#resize_channels", "1")
    page.select_option("#resize_mode", "crop")
    # HDF5 and its compression, chosen and left again (tests/dataset/test_form_browser.py builds an HDF5 dataset).
    page.select_option("#backend", "hdf5")
    page.select_option("#compression", "gzip")
    page.select_option("#backend", "lmdb")
    page.select_option("#encoding", "png")
    page.fill("#resize_width", "28")
    page.fill("#resize_height", "28")
    page.fill("#dataset_name", "shapes")
    ann.settle()
    ann.submit_and_wait("#dataset-form button[type=submit]", JOB_URL)
    page.wait_for_selector("#job[data-status=Done]", timeout=LONG_MS)
    dataset_url = page.url
    assert page.locator("#class-distribution tbody tr").count() == 3
    ann.settle()

    # Rename and notes.
    ann.click("button:has-text('Rename / notes')")
    page.fill("#edit-name", "shapes <b>renamed</b>")
    page.fill("#edit-notes", "made by the every-control suite")
    ann.submit_and_wait("#edit-job button[type=submit]", dataset_url)
    assert page.locator("#job h1").inner_text().startswith("shapes <b>renamed</b>")
    assert page.inner_text("#job-notes") == "made by the every-control suite"
    page.locator("details summary").first.click()  # status history
    ann.settle()
    ann.click("#clone-dataset")
    page.wait_for_selector("#dataset-form")
    assert page.input_value("#folder_train") == str(images / "train")
    assert page.input_value("#dataset_name").startswith("shapes <b>renamed</b>")
    page.goto(dataset_url)

    # ---- explore: a split, a class, paging both ways ----
    page.locator("#splits a:has-text('Explore')").first.click()
    page.wait_for_selector("#split")
    ann.settle()
    page.select_option("#split", "train")
    page.select_option("#label", index=1)
    ann.click("form button[type=submit]:has-text('Show')")
    page.wait_for_load_state()
    nxt = page.locator(".page-item:not(.disabled) a.page-link", has_text=re.compile("Next|›|»"))
    if nxt.count():
        nxt.first.click()
        page.wait_for_load_state()
        page.locator(".page-item:not(.disabled) a.page-link", has_text=re.compile("Prev|‹|«")).first.click()
        page.wait_for_load_state()
    ann.settle()
    page.goto(dataset_url)

    # ---- New Model: every network tab, Customize, Visualize, the framework choice; then train ----
    page.goto(server.url + "/")
    ann.click("a:has-text('New Model')")
    page.wait_for_selector("#model-form")
    ann.settle()
    page.select_option("#dataset", index=0)
    # A Caffe solver with the form's own defaults fills the Solver fields (tests/model/test_solver_file_browser.py).
    solver = tmp_path / "solver.prototxt"
    solver.write_text('base_lr: 0.01 momentum: 0.9 lr_policy: "step" stepsize: 33 gamma: 0.1 max_iter: 100\n')
    page.set_input_files("#solver_file", str(solver))
    page.wait_for_function("() => /Filled from/.test(document.getElementById('solver-file-status').textContent)")
    for framework in ("caffe", "torch"):
        page.check(f"#framework-{framework}")
        ann.click("label[for=method-previous]")
        ann.click("label[for=method-custom]")
        ann.click("label[for=method-standard]")
        customize = page.locator("#standard-networks button[data-customize]:visible")
        if customize.count():
            customize.first.click()  # fills the custom network and switches to it
            page.wait_for_selector("#custom_network", state="attached")
            if framework == "torch":  # Visualize draws Caffe networks; for a PyTorch one it says so (a 400)
                ann.watch.allow(r"/models/visualize/json$")
            ann.click("#visualize")
            page.wait_for_selector("#network-graph :is(svg, .alert, table, ol, ul)", timeout=LONG_MS)
            ann.click("label[for=method-standard]")
    # Visualize with a typed input and class count (tests/model/caffe/test_visualize_browser.py checks the shapes).
    page.check("#framework-caffe")
    page.locator("#visualize-input summary").click()
    typed = {"#input_channels": "1", "#input_height": "28", "#input_width": "28", "#num_classes": "3"}
    for field, value in typed.items():
        page.fill(field, value)
    ann.click("#visualize")
    page.wait_for_selector("#network-graph :is(svg, .alert)", timeout=LONG_MS)
    for field in ("#input_channels", "#input_height", "#input_width", "#num_classes"):
        page.fill(field, "")
    page.click("#framework-caffe")
    page.click("#framework-torch")
    for net in page.locator("#standard-networks input[name=standard_networks]").all():
        net.click()
    page.check("#net-lenet")
    page.locator("summary", has_text="Data augmentation").click()
    for check in ("#aug_flip", "#aug_hsv_use", "#aug_quad_rot", "#aug_whitening", "#shuffle"):
        if page.locator(check).is_visible():
            page.locator(check).click()
            page.locator(check).click()  # and back
    for select in ("#aug_flip", "#aug_quad_rot"):
        if page.locator(f"select{select}").count():
            page.select_option(select, index=0)
    page.check("#sweep_random")  # random search opens its fields (tests/model/test_sweep_browser.py runs one)
    page.uncheck("#sweep_random")
    for select in ("#lr_policy", "#solver_type", "#use_mean", "#caffe_engine"):
        first = page.locator(f"{select} option").first.get_attribute("value")
        chosen = page.input_value(select)
        page.select_option(select, first)
        page.select_option(select, chosen)
    page.fill("#train_epochs", "12")
    page.fill("#batch_size", "4")
    # The LR finder (tests/model/test_lr_finder_browser.py checks its answer): its rate used, then the default back.
    ann.click("#lr-finder-start")
    page.wait_for_selector("#lr-finder-use", state="visible", timeout=LONG_MS)
    ann.click("#lr-finder-use")
    assert page.input_value("#learning_rate") == page.locator("#lr-finder-suggestion").inner_text().split(" ")[3]
    page.fill("#learning_rate", "0.01")
    # Best epoch: val loss watched (no stopping: the walk aborts and resumes all 12 epochs).
    page.select_option("#best_monitor", "val_loss")
    page.check("#early_stopping")
    page.fill("#early_stopping_patience", "3")
    page.fill("#early_stopping_min_delta", "0.001")
    page.uncheck("#early_stopping")
    page.fill("#model_name", "lenet-every-control")
    ann.settle()
    ann.submit_and_wait("#model-form button[type=submit]", JOB_URL)
    model_url = page.url

    # Abort once there is a snapshot, then resume to the end.
    page.wait_for_function("() => document.querySelectorAll('#classify-one-epoch option').length >= 1", timeout=LONG_MS)
    ann.click("#abort-form button")
    page.wait_for_selector("#job[data-status=Aborted]", timeout=LONG_MS)
    ann.settle()
    ann.submit_and_wait("#resume-form button", model_url)
    page.wait_for_selector("#job[data-status=Done]", timeout=LONG_MS)
    ann.settle()

    # The charts' controls.
    for action in ("zoom-in", "pan-left", "pan-right", "zoom-out", "reset"):
        ann.click(f"[data-chart-action={action}]")
    page.check("#chart-log-scale")
    page.uncheck("#chart-log-scale")
    page.fill("#chart-smoothing", "0.6")
    page.fill("#chart-smoothing", "0")

    # Downloads of each epoch, both archive kinds, and the metrics.
    epochs = page.locator("#download-epoch option").evaluate_all("os => os.map(o => o.value)")
    assert len(epochs) >= 12
    exported = {}
    for epoch in (epochs[0], epochs[-1]):
        page.select_option("#download-epoch", epoch)
        tar = ann.download("#downloads button:has-text('tar.gz')")
        assert tar[:2] == b"\x1f\x8b"
        exported[epoch] = tar
        archive = tmp_path / f"model-{epoch}.zip"
        archive.write_bytes(ann.download("#downloads button:has-text('zip')"))
        with zipfile.ZipFile(archive) as z:
            assert any(n.endswith(f"snapshot_epoch_{epoch}.pt") for n in z.namelist()), z.namelist()
        onnx = ann.download("#downloads button:has-text('ONNX')")
        assert b"DIGITS" in onnx[:200] and len(onnx) > 100_000  # producer name early on, and LeNet's weights
    assert b"epoch" in ann.download("#downloads a:has-text('metrics.csv')")[:200]
    board = tmp_path / "tensorboard.tar.gz"
    board.write_bytes(ann.download("#downloads a:has-text('TensorBoard')"))
    with tarfile.open(board) as tf:
        runs = {os.path.dirname(n).rsplit("/", 1)[-1] for n in tf.getnames() if "tfevents" in n}
    assert runs == {"train", "val"}, tf.getnames()

    # ---- classify one, with visualizations, an older epoch ----
    page.select_option("#classify-one-epoch", index=1)
    page.set_input_files("#classify-one-file", str(images / "val" / "circle" / "0001.png"))
    page.check("#classify-one-vis")
    ann.submit_and_wait("#classify-one-form button[type=submit]", re.compile("classify_one"))
    page.wait_for_selector("#predictions")
    for toggle in page.locator("#layers button[data-bs-toggle=collapse]").all():
        toggle.click()
    ann.settle()
    enlarged = set()
    for _ in range(2):  # the layers shown, then (each toggled again) the ones that were folded
        for enlarge in page.locator("button[aria-label^='Enlarge']:visible").all():
            if enlarge.get_attribute("aria-label") in enlarged:
                continue
            enlarged.add(enlarge.get_attribute("aria-label"))
            enlarge.click()
            page.wait_for_selector("#tile-modal.show")
            page.locator("#tile-modal [data-bs-dismiss=modal]").first.click()
            page.wait_for_selector("#tile-modal", state="hidden")
        for toggle in page.locator("#layers button[data-bs-toggle=collapse]").all():
            toggle.click()
        page.wait_for_function("() => !document.querySelector('#layers .collapsing')")  # folding has ended
    layers = page.locator("#gradcam-layer option").evaluate_all("os => os.map(o => o.value)")
    for layer in layers:
        page.select_option("#gradcam-layer", layer)
        page.wait_for_function("() => !document.querySelector('#gradcam-layer').disabled")
    page.goto(model_url)
    page.wait_for_selector("#classify-one-form")

    # ---- classify many (a list with classes) and top-N ----
    listing = tmp_path / "list.txt"
    listing.write_text(
        "".join(
            f"{p} {i}\n"
            for i, c in enumerate(("circle", "square", "triangle"))
            for p in sorted((images / "val" / c).iterdir())
        )
    )
    page.set_input_files("#classify-many-list", str(listing))
    ann.submit_and_wait("#classify-many-form button:has-text('Classify many')", re.compile("classify_many"))
    page.wait_for_selector("main table")
    ann.settle()
    # The results: sort by each column, filter by each field, page size, the mistakes, both exports.
    for header in page.locator("th[data-sort-key] a").all():
        header.click()
        page.wait_for_load_state()
    page.select_option("#filter-truth", index=1)
    page.select_option("#filter-predicted", index=0)
    page.select_option("#filter-outcome", index=1)
    page.select_option("#filter-per-page", index=0)
    ann.submit_and_wait("button:has-text('Apply')", re.compile("classify_many"))
    ann.click("a:has-text('Clear')")
    page.wait_for_load_state()
    assert b"path" in ann.download("a:has-text('Export CSV')")[:300].lower()
    assert ann.download("a:has-text('Export JSON')")[:1] in (b"{", b"[")
    ann.settle()
    shot(page, "every-control-classify-many")
    page.goto(model_url)
    page.wait_for_selector("#classify-many-form")
    # A zip of images, with an older snapshot.
    images_zip = tmp_path / "val.zip"
    with zipfile.ZipFile(images_zip, "w") as z:
        for p in sorted((images / "val" / "circle").iterdir()):
            z.write(p, f"circle/{p.name}")
    page.set_input_files("#classify-many-zip", str(images_zip))
    page.select_option("#classify-many-epoch", index=1)
    ann.submit_and_wait("#classify-many-form button:has-text('Classify many')", re.compile("classify_many"))
    page.wait_for_selector("main table")
    page.goto(model_url)
    page.wait_for_selector("#classify-many-form")
    page.set_input_files("#classify-many-zip", [])
    page.set_input_files("#classify-many-list", str(listing))
    page.fill("#classify-many-topn", "2")
    ann.submit_and_wait("#classify-many-form button:has-text('Top-N')", re.compile("top_n"))
    ann.settle()
    page.goto(model_url)
    page.wait_for_selector("#classify-many-form")

    # ---- clone the model, and submit the clone ----
    ann.click("a:has-text('Clone')")
    page.wait_for_selector("#model-form")
    assert page.input_value("#train_epochs") == "12"
    page.fill("#train_epochs", "1")
    page.fill("#model_name", "the clone")
    ann.submit_and_wait("#model-form button[type=submit]", JOB_URL)
    page.wait_for_selector("#job[data-status=Done]", timeout=LONG_MS)
    clone_url = page.url
    ann.settle()

    # ---- upload a pretrained model: the model's own TorchScript export and labels, from its download ----
    with tarfile.open(fileobj=io.BytesIO(exported[epochs[-1]])) as tar:
        for member in tar.getmembers():
            if os.path.basename(member.name) in ("model.ts", "labels.txt"):
                (tmp_path / os.path.basename(member.name)).write_bytes(tar.extractfile(member).read())
    page.goto(server.url + "/")
    ann.click("#upload-pretrained")
    page.wait_for_selector("#pretrained-form")
    ann.settle()
    page.select_option("#framework", "torch")
    for optional in ("#model_def_file", "#mean_file"):  # chosen and cleared: a TorchScript archive needs neither
        page.set_input_files(optional, str(listing))
        page.set_input_files(optional, [])
    page.set_input_files("#weights_file", str(tmp_path / "model.ts"))
    page.set_input_files("#labels_file", str(tmp_path / "labels.txt"))
    page.select_option("#image_type", "1")
    page.fill("#width", "28")
    page.fill("#height", "28")
    page.select_option("#resize_mode", "crop")
    page.select_option("#resize_mode", "squash")
    page.fill("#job_name", "lenet, uploaded")
    ann.submit_and_wait("#upload-model", JOB_URL)
    page.wait_for_selector("#job[data-status=Done]", timeout=LONG_MS)
    pretrained_url = page.url
    ann.settle()

    # Rename and notes on the model; its status history.
    page.goto(model_url)
    ann.click("button:has-text('Rename / notes')")
    page.fill("#edit-notes", "LeNet on shapes")
    ann.submit_and_wait("#edit-job button[type=submit]", model_url)
    assert page.inner_text("#job-notes") == "LeNet on shapes"
    page.locator("details summary").first.click()
    ann.settle()

    # ---- compare: every model ticked on the home page (the first from the keyboard), the comparison's controls ----
    page.goto(server.url + "/")
    boxes = page.locator('input[type=checkbox][form="compare-form"]')
    assert boxes.count() >= 3
    boxes.first.focus()
    page.keyboard.press("Space")
    for i in range(1, boxes.count()):
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
    assert ann.download("#compare-csv").startswith(b"id,name,status,")
    ann.submit_and_wait("#compare-json", re.compile(r"/models/compare/json\?"))
    page.go_back()
    page.wait_for_selector("#compare[data-loaded=true]")

    # ---- delete: the clone, the model, then the dataset ----
    for url in (pretrained_url, clone_url, model_url, dataset_url):
        page.goto(url)
        ann.click("form[data-confirm] button:has-text('Delete')")
        page.wait_for_url(server.url + "/")
    assert page.locator("tr[data-job-id]").count() == 0
    ann.settle()

    ann.watch.check()
    unused = ann.ledger.unused(LEFT_ALONE)
    assert not unused, "controls no step of this suite used:\n" + "\n".join(
        f"  {kind}: {', '.join(keys)}" for kind, keys in sorted(unused.items())
    )
    assert {page_kind(urlparse(u).path) for u in ann.links_followed} >= {"/models/<id>", "/datasets/<id>"}
