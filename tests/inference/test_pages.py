"""The HTML side: the "Test a model" form, result pages, escaping, and errors as pages."""

import io
import re

import pytest
from flask import render_template_string
from PIL import Image

from digits.model.info import model_json
from tests.support import HTML

pytestmark = pytest.mark.slow  # every test uses LeNet trained twice by the `served` fixture


def image_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("L", (40, 30), 30).save(buf, "PNG")
    return buf.getvalue()


def test_the_form_for_the_model_page(served):
    job = served.workspace.store.get(served.models["torch"])
    info = model_json(job, served.workspace.store.job_dir(job.id), served.dataset)
    with served.app.test_request_context("/"):
        html = render_template_string('{% include "inference/_classify_form.html" %}', job=job, info=info)
    assert 'action="/models/images/classification/classify_one"' in html
    assert 'action="/models/images/classification/classify_many"' in html
    assert 'formaction="/models/images/classification/top_n"' in html
    assert 'enctype="multipart/form-data"' in html and 'name="csrf_token"' in html
    for control in re.findall(r'<(?:input|select)[^>]*\bid="([^"]+)"', html):
        assert f'for="{control}"' in html, f"{control} has no label"
    assert re.search(r'<option value="2"[^>]*>Epoch 2 \(latest\)</option>', html)
    assert 'id="classify-one-error"' in html and 'id="classify-many-error"' in html  # errors shown in place
    assert "js/classify.js" in html


def test_classify_one_page_escapes_what_people_typed(served):
    form = {
        "job_id": served.models["caffe"],
        "image_file": (io.BytesIO(image_bytes()), '<script>alert("x")</script>.png'),
        "show_visualizations": "on",
    }
    r = served.client.post("/models/images/classification/classify_one", data=form, headers=HTML)
    assert r.status_code == 303 and re.search(r"/models/[\w-]+/classify_one/one-[0-9a-f]{16}$", r.headers["Location"])
    r = served.client.get(r.headers["Location"], headers=HTML)  # the kept result's page
    assert r.status_code == 200 and r.mimetype == "text/html"
    page = r.get_data(as_text=True)
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page
    assert "Predictions" in page and "Grad-CAM" in page
    assert '<option value="conv2" selected>conv2 (last convolution)</option>' in page and 'for="gradcam-layer"' in page
    assert page.count('data-bs-toggle="collapse"') >= 9  # a collapsible entry per layer
    assert 'aria-controls="layer-1"' in page


def test_classify_many_and_top_n_pages(served):
    form = {"job_id": served.models["torch"], "image_list": (io.BytesIO(served.val_list().encode()), "val.txt")}
    r = served.client.post("/models/images/classification/classify_many", data=form, headers=HTML)
    assert r.status_code == 303, r.get_data(as_text=True)
    r = served.client.get(r.headers["Location"], headers=HTML)
    page = r.get_data(as_text=True)
    assert "Confusion matrix" in page and re.search(r"/classify_many/many-[0-9a-f]{16}/confusion.png", page)
    rows = len(served.val_list().splitlines())
    assert page.count('<tr data-index="') == rows and page.count('class="result-thumb"') == rows and "Top-1" in page
    assert "data:image" not in page  # thumbnails are fetched, lazily, never inline
    form = {
        "job_id": served.models["torch"],
        "image_list": (io.BytesIO(served.val_list().encode()), "val.txt"),
        "top_n": "3",
    }
    r = served.client.post("/models/images/classification/top_n", data=form, headers=HTML, follow_redirects=True)
    page = r.get_data(as_text=True)
    assert "Top 3 images per class" in page and page.count("<figure>") == 9


def test_errors_are_pages_for_a_browser(served):
    form = {"job_id": served.models["torch"], "image_file": (io.BytesIO(b"junk"), "junk.png")}
    r = served.client.post("/models/images/classification/classify_one", data=form, headers=HTML)
    assert r.status_code == 400 and r.mimetype == "text/html"
    assert "not an image" in r.get_data(as_text=True)
