"""Visualize on the New Model page in Chromium against the real server: a V1 network is drawn with the upgrade
notice shown, two layers of one name are drawn as two boxes, and a refused layer type says why."""

from __future__ import annotations

import pytest

from tests.support.browser import PageWatch
from tests.support.live import LiveServer
from tests.support.waiting import LONG_MS

pytestmark = pytest.mark.browser

V1_NET = """name: "old"
input: "data"
input_dim: 1 input_dim: 1 input_dim: 12 input_dim: 12
layers { name: "conv" type: CONVOLUTION bottom: "data" top: "conv" blobs_lr: 1 blobs_lr: 2
  convolution_param { num_output: 4 kernel_size: 3 } }
layers { name: "fc" type: INNER_PRODUCT bottom: "conv" top: "h" inner_product_param { num_output: 6 } }
layers { name: "fc" type: INNER_PRODUCT bottom: "h" top: "out" inner_product_param { num_output: 2 } }
layers { name: "prob" type: SOFTMAX bottom: "out" top: "prob" }
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = LiveServer(tmp_path_factory.mktemp("visualize") / "jobs", entry=["-m", "digits"]).start()
    yield s
    s.stop()


def test_visualize_shows_the_upgrade_notice_and_both_layers_of_one_name(browser, server):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    watch = PageWatch(page)
    page.goto(server.url + "/login")
    page.fill("#username", "ann")
    page.keyboard.press("Enter")
    page.wait_for_url(server.url + "/")
    page.goto(server.url + "/models/images/classification/new")
    page.wait_for_selector(".cm-editor", state="attached")
    page.click("label[for=method-custom]")
    page.wait_for_selector(".cm-editor .cm-content", state="visible")
    page.evaluate("text => NetworkField.setText(text)", V1_NET)
    page.click("#visualize")
    page.wait_for_selector("#network-graph svg", timeout=LONG_MS)
    notice = page.locator("#network-graph .alert-info")
    assert "upgraded from V1 layer format" in notice.inner_text()
    assert page.locator("#network-graph .alert-danger").count() == 0
    texts = "els => els.map((e) => e.textContent)"  # SVG text has no innerText
    names = page.locator("#network-graph .net-node .net-name").evaluate_all(texts)
    assert names == ["input", "conv", "fc", "fc", "prob"]
    # The two "fc" boxes sit at different depths: one row per layer of this chain.
    ys = {page.locator("#network-graph .net-node").nth(i).get_attribute("transform") for i in range(5)}
    assert len(ys) == 5
    shapes = page.locator("#network-graph .net-node text:nth-of-type(3)").evaluate_all(texts)
    assert shapes[1] == "4×10×10" and shapes[3] == "2"

    # A Python layer: the server refuses it with a 400 and the page says why.
    watch.allow(r"/models/visualize/json$")
    page.evaluate(
        "text => NetworkField.setText(text)",
        'layer { name: "in" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 } } }\n'
        'layer { name: "py" type: "Python" bottom: "data" top: "py" python_param { module: "m" layer: "L" } }\n',
    )
    page.click("#visualize")
    alert = page.locator("#network-graph .alert-warning")
    alert.wait_for(timeout=LONG_MS)
    assert "never code" in alert.inner_text()
    watch.check()
