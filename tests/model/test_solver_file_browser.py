"""New Model's "Fill from a Caffe solver.prototxt", in Chromium against the real server: Caffe's own LeNet solver
fills the Solver fields (the inv schedule as percents of training) and the page says what it filled and what the
form takes elsewhere; a broken file is named with its line, beside the control."""

from __future__ import annotations

import pytest

from tests.model.caffe.test_solver_file import LENET_SOLVER
from tests.support.browser import PageWatch, sign_in
from tests.support.live import LiveServer
from tests.support.waiting import LONG_MS

pytestmark = pytest.mark.browser


@pytest.fixture
def server(tmp_path):
    s = LiveServer(tmp_path / "jobs", entry=["-m", "digits"]).start()
    yield s
    s.stop()


def test_a_caffe_solver_fills_the_solver_fields(server, browser, tmp_path):
    solver = tmp_path / "lenet_solver.prototxt"
    solver.write_text(LENET_SOLVER)
    broken = tmp_path / "broken.prototxt"
    broken.write_text("base_lr: 0.1\nmomentum: : 0.9\n")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    watch = PageWatch(page)
    sign_in(page, server.url, "ann")
    page.goto(server.url + "/models/images/classification/new")

    page.get_by_label("Fill from a Caffe solver.prototxt (optional)").set_input_files(str(solver))
    status = page.locator("#solver-file-status")
    page.wait_for_function(
        "() => /Filled from/.test(document.getElementById('solver-file-status').textContent)", timeout=LONG_MS
    )
    assert page.input_value("#learning_rate") == "0.01" and page.input_value("#momentum") == "0.9"
    assert page.input_value("#weight_decay") == "0.0005" and page.input_value("#lr_policy") == "inv"
    assert page.input_value("#lr_inv_gamma") == "0.01"
    assert page.locator("#lr_inv_power").is_visible()  # the inv policy's fields are the ones shown
    text = status.inner_text()
    assert "Base learning rate" in text and "max_iter is 10,000 iterations" in text

    watch.allow(r"/models/solver/json$")  # refused on purpose: a 400 naming the line
    page.get_by_label("Fill from a Caffe solver.prototxt (optional)").set_input_files(str(broken))
    page.wait_for_function(
        "() => /line 2/.test(document.getElementById('solver-file-status').textContent)", timeout=LONG_MS
    )
    assert "text-danger" in status.get_attribute("class")
    assert page.input_value("#learning_rate") == "0.01"  # nothing changed by a file that cannot be read
    watch.check()
