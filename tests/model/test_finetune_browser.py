"""A fine-tuned model's page in Chromium against the real server: the "Started from" section fills in while the
model trains (the live region) and lists the layers loaded, new and frozen."""

from __future__ import annotations

import os

import pytest

from digits.model.standard import get_network
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


def test_the_fine_tuned_models_page_shows_what_it_started_from(server, browser, tmp_path):
    make_shapes(str(tmp_path / "three"), per_class=12, size=(24, 40))
    make_shapes(str(tmp_path / "four"), per_class=10, size=(24, 40), classes=("circle", "square", "triangle", "star"))
    http = server.sign_in("ann")
    three = server.folder_dataset(http, tmp_path / "three")
    four = server.folder_dataset(http, tmp_path / "four", dataset_name="shapes4")
    a = server.create_model(http, three, framework="caffe", train_epochs="1", model_name="A")
    assert server.wait_status(a, timeout=LONG_S)["status"] == "Done"
    start = os.path.join(server.jobs_dir, a, "snapshot_epoch_1.pt")
    renamed = get_network("lenet").text("caffe").replace('name: "ip2"', 'name: "ip2_new"')
    b = server.create_model(
        http,
        four,
        framework="caffe",
        method="custom",
        custom_network=renamed,
        custom_network_snapshot=start,
        frozen_layers="conv",
        train_epochs="2",
        model_name="B",
    )

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    watch = PageWatch(page)
    sign_in(page, server.url, "ann")
    page.goto(f"{server.url}/models/{b}")
    section = page.get_by_role("region", name="Started from")
    section.wait_for(timeout=LONG_MS)  # written by the worker; the page swaps it in without a reload
    assert section.locator("#started-from-source").inner_text().startswith("Weights of model " + a)
    loaded = page.get_by_role("list", name="Loaded (3)")
    assert loaded.locator("li").all_inner_texts() == ["conv1", "conv2", "ip1"]
    assert page.get_by_role("list", name="New (initialized fresh) (1)").inner_text() == "ip2_new: not in the file"
    frozen = page.get_by_role("list", name="Frozen (2)").locator("li").all_inner_texts()
    assert frozen == ["conv1 (Frozen layers field)", "conv2 (Frozen layers field)"]
    assert page.get_by_role("list", name="In the file, not in the network (not used) (1)").inner_text() == "ip2"
    section.get_by_role("link", name=f"model {a}").click()
    page.wait_for_url(f"{server.url}/models/{a}")
    assert page.get_by_role("region", name="Started from").count() == 0  # A started from nothing it records
    watch.check()
