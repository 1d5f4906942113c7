"""The classify page shows activations, kernels, statistics and Grad-CAM for AlexNet too (227x227 crops)."""

import io

import pytest
from PIL import Image

from tests.support import HTML
from tests.support.datasets import add_ready_dataset, create_db
from tests.support.forms import model_form
from tests.support.imagegen import make_shapes
from tests.support.waiting import LONG_S


@pytest.mark.slow
def test_alexnet_layers_on_the_classify_page(served, tmp_path):
    make_shapes(str(tmp_path / "src"), per_class=2, classes=("circle", "square"), size=(60, 120))
    create_db(tmp_path / "ds", tmp_path / "src", "--pct-val", "50", channels=3, width=256, height=256)
    dataset = add_ready_dataset(served.workspace, str(tmp_path / "ds"), name="big-shapes")
    form = model_form(dataset.id, model_name="alexnet", standard_networks="alexnet", framework="caffe")
    form.update(train_epochs="1", batch_size="2", random_seed="1")
    r = served.client.post("/models/images/classification/json", data=form)
    assert r.status_code == 200, r.get_data(as_text=True)
    job_id = r.get_json()["id"]
    assert served.recorder.wait_status(job_id, timeout=LONG_S) == "Done"

    buf = io.BytesIO()
    with Image.open(tmp_path / "src" / "circle" / "0001.png") as image:
        image.save(buf, "PNG")
    page = served.client.post(
        "/models/images/classification/classify_one",
        data={"job_id": job_id, "image_file": (io.BytesIO(buf.getvalue()), "circle.png"), "show_visualizations": "on"},
        headers=HTML,
        follow_redirects=True,
    )
    assert page.status_code == 200, page.get_data(as_text=True)[:500]
    html = page.get_data(as_text=True)
    assert "Grad-CAM" in html and "Predictions" in html
    for layer in ("conv1", "norm1", "conv5", "pool5", "fc6", "fc8"):
        assert f">{layer}<" in html or f"{layer} " in html, layer
    assert html.count("data:image/png;base64,") >= 20  # activations and kernels, tiled
    assert "std" in html
    assert '<option value="conv5" selected>conv5 (last convolution)</option>' in html
