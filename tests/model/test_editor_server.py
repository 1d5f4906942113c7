"""What the network editor needs from the server, without a browser: the page keeps the textarea as the form field
and loads the bundled editor, Visualize names the faulty line of the text as the editor numbers it, and a network
posted from a browser (line breaks as CRLF) is kept as typed."""

from __future__ import annotations

import re

import pytest

from digits.model.forms import read_model_form
from digits.model.standard import get_network
from tests.support import HTML
from tests.support.forms import model_form

NEW = "/models/images/classification/new"


def test_the_page_keeps_the_textarea_and_loads_the_bundled_editor(signed_in):
    page = signed_in.get(NEW, headers=HTML).get_data(as_text=True)
    # Without scripts the textarea is the editor: it is the form field, labelled.
    assert re.search(r'<textarea [^>]*id="custom_network" name="custom_network"', page)
    assert '<label class="form-label" for="custom_network" id="custom_network-label">' in page
    # The editor comes from this server (never a CDN), before the form's script that attaches it.
    scripts = re.findall(r'<script src="([^"]+)"', page)
    assert scripts.index("/static/vendor/codemirror/editor.js") < scripts.index("/static/js/model-form.js")
    assert all(s.startswith("/static/") for s in scripts)
    with signed_in.get("/static/vendor/codemirror/editor.js") as bundle:  # built by `make install`
        assert bundle.status_code == 200 and b"DIGITSEditor" in bundle.data
    assert 'id="customize-previous"' in page and 'id="custom_network-keys"' in page


def test_the_page_of_a_failed_post_marks_the_network_field(signed_in, dataset):
    text = get_network("lenet").text("caffe").replace("    kernel_size: 5\n", "    kernel_size: 500\n", 1)
    form = model_form(dataset.id, framework="caffe", method="custom", custom_network=text)
    r = signed_in.post("/models/images/classification", data=form, headers=HTML)
    assert r.status_code == 400
    page = r.get_data(as_text=True)
    line = text.splitlines().index("    kernel_size: 500") + 1
    assert re.search(r'<textarea class="[^"]*is-invalid[^"]*" id="custom_network"', page)
    assert 'aria-describedby="custom_network-error"' in page
    # model-form.js reads the line where the message starts (errorLine): keep that shape.
    feedback = re.search(r'<div class="invalid-feedback d-block" id="custom_network-error">([^<]*)</div>', page)
    assert feedback and re.match(rf"line {line}, column \d+: layer &#39;conv1&#39;", feedback[1]), feedback


@pytest.mark.parametrize(
    "old, new, line, layer",
    [
        ('  bottom: "pool1"\n', '  bottom: "pool9"\n', 59, "conv2"),  # the layer's first line
        ("    pool: MAX\n    kernel_size: 2\n", "    pool: MAX\n    colour: 2\n", 55, "pool1"),  # the field's line
        ('  top: "conv2"\n', '  top: "conv2\n', 63, None),  # a syntax error: where the string starts
    ],
)
def test_visualize_names_the_line_as_the_editor_numbers_it(client, old, new, line, layer):
    text = get_network("lenet").text("caffe").replace(old, new, 1)
    for breaks in ("\n", "\r\n"):  # a FormData may carry either
        body = {"framework": "caffe", "custom_network": text.replace("\n", breaks)}
        graph = client.post("/models/visualize/json", data=body).get_json()
        assert graph["error"]["line"] == line and graph["error"]["layer"] == layer, graph["error"]
        assert isinstance(graph["error"]["column"], int)


def test_a_network_posted_with_crlf_is_kept_as_typed(workspace, dataset):
    typed = get_network("lenet").text("caffe").replace('name: "conv1"', 'name: "first-conv"')
    values = model_form(dataset.id, framework="caffe", method="custom", custom_network=typed.replace("\n", "\r\n"))
    form, errors = read_model_form(values, workspace.store, [], workspace.settings)
    assert errors == {} and form.network_text == typed
    python = "from torch import nn\n\n\ndef build_model(**shapes):\n    return nn.Flatten()"
    values = model_form(dataset.id, framework="torch", method="custom", custom_network=python.replace("\n", "\r\n"))
    form, errors = read_model_form(values, workspace.store, [], workspace.settings)
    assert errors == {} and form.network_text == python + "\n"
