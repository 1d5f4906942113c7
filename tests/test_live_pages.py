"""Job pages stay true without a reload, in Chromium against the real server and real workers: a model page
opened before training shows "Test a model" and each snapshot as it is written, ends with the latest epoch
selected and marked, ticks Elapsed and ETA; Abort reads "Aborting…" at once and Resume continues; a dataset
page's tasks and tables follow the job. Each test checks that the page was never reloaded (a marker set on
`window` survives) and that nothing failed on it (tests/support/browser.py PageWatch)."""

from __future__ import annotations

import re

import pytest

from tests.support.browser import PageWatch, shot
from tests.support.forms import dataset_form, model_form
from tests.support.imagegen import make_shapes
from tests.support.live import JSON, LiveServer
from tests.support.waiting import LONG_MS, SHORT_S

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NEVER_RELOADED = "() => window.__notReloaded === true"


@pytest.fixture
def server(tmp_path):
    s = LiveServer(tmp_path / "jobs", entry=["-m", "digits"], env={"DIGITS_INFERENCE_WORKERS": "1"}).start()
    yield s
    s.stop()


@pytest.fixture
def images(tmp_path):
    make_shapes(str(tmp_path / "images"), per_class=30, size=(24, 40))
    return tmp_path / "images"


def post_json(http, url, form) -> str:
    r = http.post(url, data=form, headers=JSON, timeout=SHORT_S)
    assert r.status_code == 200, r.text
    return r.json()["id"]


def open_page(browser, server, path):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    watch = PageWatch(page)
    page.goto(server.url + "/login")
    page.fill("#username", "ann")  # the owner: Abort and Resume are hers
    page.keyboard.press("Enter")
    page.wait_for_url(server.url + "/")
    page.goto(server.url + path)
    page.evaluate("() => { window.__notReloaded = true; }")
    return page, watch


def select_texts(page, selector):
    return page.locator(f"{selector} option").all_inner_texts()


def test_a_model_page_opened_before_training_follows_it_to_the_end(server, browser, images):
    http = server.sign_in("ann")
    # The model waits for its dataset, so its page is open before anything was trained.
    dataset = post_json(http, server.url + "/datasets/images/classification/json", dataset_form(images))
    model = post_json(
        http, server.url + "/models/images/classification/json", model_form(dataset, train_epochs="3", batch_size="8")
    )
    page, watch = open_page(browser, server, f"/models/{model}")
    assert page.locator("#test-model").is_hidden()
    assert page.locator("#no-snapshots").is_visible()

    # Elapsed ticks while it runs, and an ETA is given once there is progress to go on.
    page.wait_for_selector("#job-elapsed[data-ticking=true]", timeout=LONG_MS)
    first = page.inner_text("#job-elapsed")
    page.wait_for_function(f"() => document.getElementById('job-elapsed').textContent !== {first!r}", timeout=LONG_MS)

    page.wait_for_selector("#job[data-status=Done]", timeout=LONG_MS)
    page.wait_for_function(NEVER_RELOADED)
    assert page.locator("#test-model").is_visible()
    for select in ("#classify-one-epoch", "#classify-many-epoch"):
        assert select_texts(page, select) == ["Epoch 3 (latest)", "Epoch 2", "Epoch 1"]
        assert page.locator(select).input_value() == "3"
    page.wait_for_function("() => document.querySelectorAll('#snapshots li').length === 3")
    assert page.locator("#snapshots li").all_inner_texts() == ["epoch 1", "epoch 2", "epoch 3"]
    assert select_texts(page, "#download-epoch")[0] == "epoch 3 (latest)"
    assert page.inner_text("#job-status") == "Done"
    assert page.locator("#abort-form").count() == 0  # no Abort for a finished job
    assert page.locator("#job-eta").count() == 0
    assert page.locator("#job-tasks .task-status").all_inner_texts() == ["Done"]
    assert page.locator("#latest-metrics tr[data-metric='val accuracy']").count() == 1
    assert re.fullmatch(r"\d+s|\d+m \d+s", page.inner_text("#job-elapsed"))

    # The Test section that appeared without a reload works: classify one of the training images.
    page.set_input_files("#classify-one-file", str(images / "circle" / "0001.png"))
    page.locator("#classify-one-form button[type=submit]").click()
    page.wait_for_selector("#predictions")

    # Rename / notes opens at once with the name focused: nothing slides under the pointer, so a click on Save
    # right away is a click on Save (a sliding form once moved it between press and release, 1 click in 3).
    page.goto(server.url + f"/models/{model}")
    page.locator("button:has-text('Rename / notes')").click()
    assert page.evaluate("() => document.activeElement.id") == "edit-name"
    assert page.get_attribute("button[aria-controls=edit-job]", "aria-expanded") == "true"
    page.fill("#edit-notes", "three epochs")
    with page.expect_navigation(url=server.url + f"/models/{model}"):
        page.locator("#edit-job button[type=submit]").click()
    assert page.inner_text("#job-notes") == "three epochs"
    assert page.locator("#edit-job").is_hidden()
    watch.check()


def test_abort_reads_aborting_at_once_and_resume_continues_to_the_latest_epoch(server, browser, images):
    http = server.sign_in("ann")
    dataset = server.folder_dataset(http, images)
    # Long enough to abort twice: 90 images a snapshot, one image a step, for up to 300 epochs.
    model = server.create_model(http, dataset, train_epochs="300", batch_size="1", snapshot_interval="1")
    page, watch = open_page(browser, server, f"/models/{model}")
    page.wait_for_function(
        "() => document.querySelectorAll('#classify-one-epoch option').length >= 2", timeout=LONG_MS
    )  # snapshots written while the page was open
    assert page.locator("#test-model").is_visible()
    page.evaluate(
        """() => {
        window.__badges = [];
        const watch = () => window.__badges.push(document.getElementById('job-status').textContent);
        new MutationObserver(watch).observe(document.getElementById('main'), {subtree: true, childList: true,
                                                                               characterData: true});
    }"""
    )
    page.locator("#abort-form button").click()
    page.wait_for_selector("#job[data-status=Aborted]", timeout=LONG_MS)
    badges = page.evaluate("() => window.__badges")
    assert "Aborting…" in badges and badges.index("Aborting…") < badges.index("Aborted")
    page.wait_for_function(NEVER_RELOADED)
    stopped = float(page.locator("#classify-one-epoch option[data-latest]").get_attribute("value"))
    resume = page.locator("#resume-form button")
    label = re.fullmatch(r"Resume from epoch (\d+(?:\.\d{1,2})?)", resume.inner_text())
    assert label, resume.inner_text()  # an epoch as people read it, never "4.0638"
    assert abs(float(label.group(1)) - stopped) < 0.01
    shot(page, "live-aborted")

    resume.click()  # a form: the browser loads the page again
    page.wait_for_selector("#job[data-status=Running]", timeout=LONG_MS)
    page.evaluate("() => { window.__notReloaded = true; }")
    # A snapshot past the one it stopped at becomes the latest, selected and the only one marked.
    page.wait_for_function(
        f"() => parseFloat(document.querySelector('#classify-one-epoch option[data-latest]').value) >= {stopped} + 1",
        timeout=LONG_MS,
    )
    for select in ("#classify-one-epoch", "#classify-many-epoch"):
        texts = select_texts(page, select)
        assert texts[0].endswith(" (latest)") and sum("(latest)" in t for t in texts) == 1, texts
        assert float(page.locator(select).input_value()) >= stopped + 1
    page.locator("#abort-form button").click()
    page.wait_for_selector("#job[data-status=Aborted]", timeout=LONG_MS)
    page.wait_for_function(NEVER_RELOADED)
    watch.check()


def test_a_dataset_page_follows_its_tasks(server, browser, images):
    http = server.sign_in("ann")
    dataset = post_json(http, server.url + "/datasets/images/classification/json", dataset_form(images))
    page, watch = open_page(browser, server, f"/datasets/{dataset}")
    page.wait_for_selector("#job[data-status=Done]", timeout=LONG_MS)
    page.wait_for_function(NEVER_RELOADED)
    statuses = page.locator("#job-tasks .task-status").all_inner_texts()
    assert statuses and set(statuses) == {"Done"}, statuses
    assert set(page.locator("#job-tasks .task-progress").all_inner_texts()) == {"100%"}
    assert page.locator("#class-distribution tbody tr").count() == 3
    assert page.inner_text("#job-status") == "Done"
    watch.check()
