"""The classify page shows activations, kernels, statistics and Grad-CAM for AlexNet too (227x227 crops)."""

import io
import subprocess
import sys

from PIL import Image

from tests.conftest import ROOT
from tests.model.conftest import add_ready_dataset
from tests.support.imagegen import make_shapes

HTML = {"Accept": "text/html"}


def test_alexnet_layers_on_the_classify_page(served, tmp_path):
    make_shapes(str(tmp_path / "src"), per_class=2, classes=("circle", "square"), size=(60, 120))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "digits.tools.create_db",
            str(tmp_path / "ds"),
            "--folder",
            str(tmp_path / "src"),
            "--channels",
            "3",
            "--width",
            "256",
            "--height",
            "256",
            "--pct-val",
            "50",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    dataset = add_ready_dataset(served.workspace, str(tmp_path / "ds"), name="big-shapes")
    form = {
        "dataset": dataset.id,
        "model_name": "alexnet",
        "method": "standard",
        "standard_networks": "alexnet",
        "framework": "caffe",
        "train_epochs": "1",
        "batch_size": "2",
        "random_seed": "1",
    }
    r = served.client.post("/models/images/classification/json", data=form)
    assert r.status_code == 200, r.get_data(as_text=True)
    job_id = r.get_json()["id"]
    assert served.recorder.wait_status(job_id, timeout=300) == "Done"

    buf = io.BytesIO()
    Image.open(tmp_path / "src" / "circle" / "0001.png").save(buf, "PNG")
    page = served.client.post(
        "/models/images/classification/classify_one",
        data={"job_id": job_id, "image_file": (io.BytesIO(buf.getvalue()), "circle.png"), "show_visualizations": "on"},
        headers=HTML,
    )
    assert page.status_code == 200, page.get_data(as_text=True)[:500]
    html = page.get_data(as_text=True)
    assert "Grad-CAM" in html and "Predictions" in html
    for layer in ("conv1", "norm1", "conv5", "pool5", "fc6", "fc8"):
        assert f">{layer}<" in html or f"{layer} " in html, layer
    assert html.count("data:image/png;base64,") >= 20  # activations and kernels, tiled
    assert "std" in html
