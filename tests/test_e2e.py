"""The whole loop in a real browser (Debian's Chromium through Playwright) against the real server: sign in,
build a dataset through the form, train LeNet through the form while the loss chart fills, classify an image
from the model page, open a layer's visualizations, delete both jobs. Mostly driven by the keyboard.
Screenshots of each step go to test-artifacts/e2e-*.png (the README's pictures come from docs/walkthrough/shoot.py)."""

from __future__ import annotations

import re

import pytest

from tests.support.browser import fill_folder, sign_in
from tests.support.browser import shot as screenshot
from tests.support.imagegen import make_shapes
from tests.support.live import LiveServer, team_server
from tests.support.waiting import LONG_MS

pytestmark = pytest.mark.browser
# The plain devserver, as `make run` starts it.
PLAIN = ["-m", "digits"]


@pytest.fixture
def server(tmp_path):
    s = LiveServer(tmp_path / "jobs", entry=PLAIN, env={"DIGITS_INFERENCE_WORKERS": "1"}).start()
    yield s
    s.stop()


def shot(page, name: str) -> None:
    screenshot(page, f"e2e-{name}")


@pytest.mark.slow
def test_the_whole_loop_in_a_browser(server, browser, tmp_path):
    make_shapes(str(tmp_path / "images"), per_class=30, size=(24, 40))
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda d: d.accept())  # "Delete ...?" confirmations

    page.goto(server.url + "/")
    page.get_by_role("link", name="Sign in").click()
    page.focus("#username")  # autofocus may land after the first keystrokes
    page.keyboard.type("ann")
    page.keyboard.press("Enter")
    page.wait_for_url(server.url + "/")
    shot(page, "1-console")

    page.get_by_role("link", name="New Dataset").click()
    fill_folder(page, "#folder_train", str(tmp_path / "images"))
    page.select_option("#resize_channels", "1")
    page.fill("#resize_width", "28")
    page.fill("#resize_height", "28")
    page.focus("#dataset_name")
    page.keyboard.type("shapes")
    page.keyboard.press("Enter")  # submits the form
    page.wait_for_url(re.compile(r"/datasets/\d{8}-\d{6}-[0-9a-f]{4}$"))
    page.wait_for_selector("#job[data-status=Done]", timeout=LONG_MS)
    assert page.locator("#class-distribution tbody tr").count() == 3
    shot(page, "2-dataset")

    page.get_by_role("link", name="Home").click()
    page.get_by_role("link", name="New Model").click()
    page.fill("#train_epochs", "6")
    page.fill("#batch_size", "8")
    page.focus("#model_name")
    page.keyboard.type("lenet-shapes")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/models/\d{8}-\d{6}-[0-9a-f]{4}$"))
    page.wait_for_function(
        "() => /\\((\\d+) points\\)/.test(document.getElementById('chart-readout').textContent)"
        " && +document.getElementById('chart-readout').textContent.match(/\\((\\d+) points\\)/)[1] > 3",
        timeout=LONG_MS,
    )
    shot(page, "3-training")
    page.wait_for_selector("#model-charts[data-status=Done]", timeout=LONG_MS)
    page.reload()
    page.wait_for_selector("#classify-one-form")
    shot(page, "4-trained")

    image = tmp_path / "images" / "circle" / "0001.png"
    page.set_input_files("#classify-one-file", str(image))
    page.check("#classify-one-vis")
    page.locator("#classify-one-form button[type=submit]").press("Enter")
    page.wait_for_selector("#predictions")
    top = page.locator("#predictions tbody tr").first.locator("th").inner_text()
    assert top in ("circle", "square", "triangle")
    assert page.get_by_text("Grad-CAM").count() >= 1
    second = page.locator("#layers button[data-bs-toggle=collapse]").nth(1)
    second.focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#layer-2.show img.layer-picture")
    shot(page, "5-classified")

    page.go_back()
    page.wait_for_selector("#job")
    model_url = page.url
    page.locator("form[data-confirm] button", has_text="Delete").click()
    page.wait_for_url(server.url + "/")
    page.get_by_role("link", name="shapes").click()
    page.locator("form[data-confirm] button", has_text="Delete").click()
    page.wait_for_url(server.url + "/")
    assert page.locator("tr[data-job-id]").count() == 0
    assert page.goto(model_url).status == 404
    shot(page, "6-deleted")
    assert errors == []


def test_two_people_share_the_job_list_and_only_the_owner_deletes(tmp_path, browser):
    make_shapes(str(tmp_path / "images"), per_class=6, size=(24, 40))
    # A team server reads server folders only inside its data roots.
    server = team_server(tmp_path / "jobs", "alice", "bob", args=["--data-root", str(tmp_path / "images")])
    server.entry = PLAIN
    server.start()
    try:
        pages = {}
        for name in ("alice", "bob"):
            page = browser.new_page()
            page.goto(server.url + "/")
            assert "/login" in page.url  # a team server sends strangers to the sign-in page
            sign_in(page, server.url, name)
            pages[name] = page
        alice, bob = pages["alice"], pages["bob"]
        alice.get_by_role("link", name="New Dataset").click()
        fill_folder(alice, "#folder_train", str(tmp_path / "images"))
        alice.fill("#resize_width", "16")
        alice.fill("#resize_height", "16")
        alice.fill("#dataset_name", "alices-shapes")
        alice.locator("#dataset-form button[type=submit]").click()
        alice.wait_for_selector("#job[data-status=Done]", timeout=LONG_MS)
        dataset_url = alice.url

        for page in (alice, bob):
            page.goto(server.url + "/")
            assert page.locator("tr[data-job-id]", has_text="alices-shapes").count() == 1
        bob.goto(dataset_url)
        assert bob.locator("#read-only").inner_text().startswith("alice's job")
        assert bob.locator("form[data-confirm] button", has_text="Delete").count() == 0
        shot(bob, "7-someone-elses-job")
        assert alice.locator("form[data-confirm] button", has_text="Delete").count() == 0  # on the console
        alice.goto(dataset_url)
        assert alice.locator("form[data-confirm] button", has_text="Delete").count() == 1
    finally:
        server.stop()
