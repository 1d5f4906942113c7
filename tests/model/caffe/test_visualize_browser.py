"""Visualize on the New Model page in Chromium against the real server: a V1 network is drawn with the upgrade
notice shown, two layers of one name are drawn as two boxes, and a refused layer type says why."""

from __future__ import annotations

import pytest

from digits.model.standard import get_network
from tests.support.browser import PageWatch, sign_in
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
    sign_in(page, server.url, "ann")
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


def test_visualize_without_a_dataset_takes_the_input_and_class_count_typed_beside_it(browser, server):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    watch = PageWatch(page)
    sign_in(page, server.url, "ann")
    page.goto(server.url + "/models/images/classification/new")
    page.wait_for_selector(".cm-editor", state="attached")
    page.click("label[for=method-custom]")
    page.wait_for_selector(".cm-editor .cm-content", state="visible")
    page.evaluate("text => NetworkField.setText(text)", get_network("lenet").text("caffe"))
    texts = "els => els.map((e) => e.textContent)"  # SVG text has no innerText

    def shapes() -> dict[str, str]:
        nodes = page.locator("#network-graph .net-node")
        names = nodes.locator(".net-name").evaluate_all(texts)
        return dict(zip(names, nodes.locator("text:nth-of-type(3)").evaluate_all(texts), strict=False))

    # No dataset, nothing typed: 3x256x256 and no class count; the layer DIGITS fills says what it needs.
    page.click("#visualize")
    page.wait_for_selector("#network-graph svg", timeout=LONG_MS)
    assert "number of classes" in page.locator("#network-graph").inner_text()
    # Typed beside Visualize: a 1x28x28 input and 10 classes.
    page.locator("#visualize-input summary").click()
    page.get_by_label("Input channels").fill("1")
    page.get_by_label("Input height").fill("28")
    page.get_by_label("Input width").fill("28")
    page.get_by_label("Number of classes").fill("10")
    page.click("#visualize")
    page.wait_for_function("() => !/number of classes/.test(document.getElementById('network-graph').textContent)")
    page.wait_for_selector("#network-graph svg", timeout=LONG_MS)
    drawn = shapes()
    assert drawn["conv1"] == "20×24×24" and drawn["ip2"] == "10", drawn
    # Half an input is refused by its label.
    watch.allow(r"/models/visualize/json$")
    page.get_by_label("Input width").fill("")
    page.click("#visualize")
    alert = page.locator("#network-graph .alert-warning")
    alert.wait_for(timeout=LONG_MS)
    assert "Input width" in alert.inner_text()
    watch.check()
