"""Upload a pretrained model in a real browser: from the home page's link, fill the form, wait for the import to
finish on the model's page, and classify an image there with its layers shown."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
import torch
from PIL import Image

from digits.model.standard import get_network
from tests.support.browser import PageWatch, sign_in
from tests.support.live import LiveServer
from tests.support.waiting import LONG_MS

pytestmark = [pytest.mark.browser, pytest.mark.slow]
LABELS = ["circle", "square", "triangle"]


@pytest.fixture
def server(tmp_path):
    s = LiveServer(tmp_path / "jobs", entry=["-m", "digits"], env={"DIGITS_INFERENCE_WORKERS": "1"}).start()
    yield s
    s.stop()


def lenet_files(folder) -> dict[str, str]:
    """The standard PyTorch LeNet's network.py and a state dict of it (3 classes), with labels, as files."""
    text = get_network("lenet").text("torch")
    namespace: dict = {}
    exec(compile(text, "network.py", "exec"), namespace)
    torch.manual_seed(2)
    module = namespace["build_model"](num_classes=3, channels=1, height=28, width=28)
    paths = {"model_def": folder / "network.py", "weights": folder / "lenet.pth", "labels": folder / "labels.txt"}
    paths["model_def"].write_text(text)
    buf = io.BytesIO()
    torch.save(module.state_dict(), buf)
    paths["weights"].write_bytes(buf.getvalue())
    paths["labels"].write_text("\n".join(LABELS) + "\n")
    image = np.zeros((28, 28), dtype=np.uint8)
    image[6:22, 6:22] = 230
    paths["image"] = folder / "square.png"
    Image.fromarray(image).save(paths["image"])
    return {k: str(v) for k, v in paths.items()}


def test_upload_a_pretrained_model_and_classify_with_it(server, browser, tmp_path):
    files = lenet_files(tmp_path)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    watch = PageWatch(page)
    sign_in(page, server.url, "ann")
    page.goto(server.url + "/")
    page.get_by_role("link", name="Upload Pretrained Model").click()
    page.wait_for_url(server.url + "/pretrained_models/new")
    page.get_by_label("Framework").select_option("torch")
    page.get_by_label("Network definition").set_input_files(files["model_def"])
    page.get_by_label("Weights file").set_input_files(files["weights"])
    page.get_by_label("Labels file").set_input_files(files["labels"])
    page.get_by_label("Image type").select_option("1")
    page.get_by_label("Width").fill("28")
    page.get_by_label("Height").fill("28")
    page.get_by_label("Model name").fill("lenet <imported>")
    page.get_by_role("button", name="Upload").click()
    page.wait_for_url(re.compile(r"/models/\d{8}-\d{6}-[0-9a-f]{4}$"))
    page.wait_for_selector("#job[data-status=Done]", timeout=LONG_MS)
    page.reload()
    assert "imported, not trained here: PyTorch state dict (lenet.pth)" in page.locator("#imported-from").inner_text()
    assert page.locator("h1").first.inner_text().startswith("lenet <imported>")  # escaped, shown as typed
    assert page.locator("#model-charts").count() == 0

    page.get_by_label("Upload an image").set_input_files(files["image"])
    page.get_by_label("Show visualizations and statistics").check()
    page.locator("#classify-one-form button[type=submit]").press("Enter")
    page.wait_for_selector("#predictions", timeout=LONG_MS)
    rows = page.locator("#predictions tbody tr")
    assert rows.count() == 3
    assert {rows.nth(i).locator("th").inner_text() for i in range(3)} == set(LABELS)
    assert page.locator("#layers button[data-bs-toggle=collapse]").count() >= 8  # data + LeNet's layers
    watch.check()
