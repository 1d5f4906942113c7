"""The network editor of the New Model page (CodeMirror over the custom_network textarea) in Chromium against the
real server: line numbers and highlighting for prototxt and Python, Customize, Visualize's and the form's errors
taking the cursor to their line, and a model created from exactly the editor's text."""

from __future__ import annotations

import re

import pytest
import requests

from digits.model.standard import get_network
from tests.support.browser import shot, sign_in
from tests.support.imagegen import make_shapes
from tests.support.live import LiveServer
from tests.support.waiting import LONG_S, SHORT_S, wait_until

pytestmark = pytest.mark.browser

NEW = "/models/images/classification/new"
CREATE = "/models/images/classification"
# A prototxt that shows every token kind the prototxt mode knows.
PROTOTXT = 'name: "tiny"  # a comment\nlayer {\n  name: "ip"\n  type: "InnerProduct"\n  pooling_param { pool: MAX }\n'
PYTHON = "from torch import nn\n\n\ndef build_model(*, num_classes, channels, height, width):\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The plain devserver (as `make run` starts it) with one shapes dataset built by its worker."""
    root = tmp_path_factory.mktemp("editor")
    make_shapes(str(root / "images"), per_class=8, size=(24, 40))
    s = LiveServer(root / "jobs", entry=["-m", "digits"]).start()
    try:
        s.dataset_id = s.folder_dataset(s.sign_in("ann"), root / "images")
        yield s
    finally:
        s.stop()


class Page:
    """A signed-in page that records page errors, console errors, failed requests and 4xx/5xx answers; `allow`
    lists the (method, path, status) a test causes on purpose."""

    def __init__(self, browser, server, width: int = 1280):
        self.server = server
        self.page = browser.new_page(viewport={"width": width, "height": 900})
        self.problems: list[str] = []
        self.allow: set[tuple[str, str, int]] = set()
        self.leaving = False
        page = self.page
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on("console", self._console)
        page.on("requestfailed", self._failed)
        page.on("response", self._response)
        sign_in(page, server.url, "ann")

    def _console(self, message) -> None:
        if message.type != "error":
            return
        # Chromium also logs each 4xx/5xx answer; one the test asked for is no problem.
        status = re.match(r"Failed to load resource: the server responded with a status of (\d+)", message.text)
        path = message.location.get("url", "").removeprefix(self.server.url).split("?")[0]
        if status and any((p, s) == (path, int(status[1])) for _, p, s in self.allow):
            return
        self.problems.append(f"console: {message.text}")

    def _failed(self, request) -> None:
        # Leaving a page cuts its Socket.IO long poll, and any fetch it was making, short: the browser's doing.
        if request.failure == "net::ERR_ABORTED" and (self.leaving or "/socket.io/" in request.url):
            return
        self.problems.append(f"failed: {request.method} {request.url} {request.failure}")

    def _response(self, response) -> None:
        path = response.url.removeprefix(self.server.url).split("?")[0]
        if response.status >= 400 and (response.request.method, path, response.status) not in self.allow:
            self.problems.append(f"{response.status}: {response.request.method} {response.url}")

    def new_model(self) -> None:
        self.leaving = True
        self.page.goto(self.server.url + NEW)
        self.leaving = False
        self.page.wait_for_selector(".cm-editor", state="attached")

    def custom_tab(self) -> None:
        self.page.click("label[for=method-custom]")
        self.page.wait_for_selector(".cm-editor .cm-content", state="visible")

    def editor_text(self) -> str:
        return self.page.evaluate("() => NetworkField.editor.text")

    def active_line(self) -> int:
        return int(self.page.inner_text(".cm-gutter.cm-lineNumbers .cm-activeLineGutter"))

    def focus_in_editor(self) -> bool:
        return self.page.evaluate("() => !!document.activeElement.closest('.cm-editor')")

    def check(self) -> None:
        assert self.problems == [], self.problems


@pytest.fixture
def page(browser, server):
    p = Page(browser, server)
    yield p
    p.check()


def highlighted(page, cls: str, text: str) -> None:
    """Wait until `text` is one of the editor's tokens of class `cls` (the parser runs after the text changes)."""
    tokens = page.locator(f".cm-content .{cls}")
    wait_until(lambda: text in tokens.all_inner_texts(), SHORT_S, f"{text!r} highlighted as {cls}")


def gutter_numbers(page) -> list[str]:
    return page.locator(".cm-gutter.cm-lineNumbers .cm-gutterElement").all_inner_texts()


def test_the_editor_numbers_lines_and_highlights_prototxt_and_python(page):
    page.new_model()
    p = page.page
    assert not p.is_visible("#custom_network")  # the editor stands in for the textarea (still the form field)
    page.custom_tab()
    assert p.is_visible("#custom_network-keys") and "Esc then Tab" in p.inner_text("#custom_network-keys")
    editor = p.get_by_role("textbox", name=re.compile("^Network definition"))
    editor.click()
    p.keyboard.type(PROTOTXT)
    # Typing indents inside braces on its own; the text is what was typed, less the spaces it would double.
    typed = page.editor_text()
    assert [line.strip() for line in typed.split("\n")] == [line.strip() for line in PROTOTXT.split("\n")]
    assert p.input_value("#custom_network") == typed  # written back on every change
    assert gutter_numbers(p)[-6:] == ["1", "2", "3", "4", "5", "6"]
    for cls, token in [
        ("tok-comment", "# a comment"),
        ("tok-string", '"tiny"'),
        ("tok-propertyName", "name"),
        ("tok-typeName", "layer"),
        ("tok-typeName", "pooling_param"),
        ("tok-atom", "MAX"),
    ]:
        highlighted(p, cls, token)
    assert page.active_line() == 6

    # PyTorch: the same editor speaks Python.
    p.check("#framework-torch")
    assert p.is_checked("#method-custom")
    editor.click()
    p.keyboard.press("Control+a")
    p.keyboard.type(PYTHON)  # Enter after "...):" indents the next line
    assert page.editor_text().endswith("):\n    ")
    p.keyboard.press("Tab")  # Tab indents in the editor, Shift+Tab dedents...
    assert page.editor_text().endswith("):\n        ")
    p.keyboard.press("Shift+Tab")
    p.keyboard.type("return nn.Linear(1, num_classes)  # 2")
    text = page.editor_text()
    assert text.endswith("\n    return nn.Linear(1, num_classes)  # 2")
    assert p.input_value("#custom_network") == text
    for cls, token in [
        ("tok-keyword", "from"),
        ("tok-keyword", "def"),
        ("tok-keyword", "return"),
        ("tok-definition", "build_model"),
        ("tok-comment", "# 2"),
        ("tok-number", "1"),
    ]:
        highlighted(p, cls, token)
    assert page.active_line() == 5
    # ...and Escape then Tab leaves it for the next control: the keyboard is never trapped.
    p.keyboard.press("Escape")
    p.keyboard.press("Tab")
    assert not page.focus_in_editor()
    assert page.editor_text() == text
    p.keyboard.press("Shift+Tab")
    assert page.focus_in_editor()

    # Visualize draws Caffe networks only, and says so in place.
    page.allow.add(("POST", "/models/visualize/json", 400))
    p.click("#visualize")
    assert "Visualize draws Caffe networks" in p.locator("#network-graph .alert-warning").inner_text()
    assert p.locator("[data-goto-line]").count() == 0

    # Back to Caffe: prototxt colours again.
    p.check("#framework-caffe")
    editor.click()
    p.keyboard.press("Control+a")
    p.keyboard.type('layer { type: "ReLU" }\n')
    highlighted(p, "tok-typeName", "layer")
    highlighted(p, "tok-string", '"ReLU"')
    assert p.locator(".cm-content .tok-keyword").count() == 0
    shot(p, "editor")


@pytest.mark.parametrize("framework, language_class", [("caffe", "tok-typeName"), ("torch", "tok-keyword")])
def test_customize_opens_a_standard_network_in_the_editor(page, server, framework, language_class):
    page.new_model()
    p = page.page
    p.check(f"#framework-{framework}")
    p.click("[data-customize=lenet]")
    p.wait_for_function("() => NetworkField.editor.text.length > 100")
    expected = requests.get(server.url + f"/models/networks/{framework}/lenet", timeout=SHORT_S).text
    assert expected == get_network("lenet").text(framework)
    assert page.editor_text() == expected
    assert p.input_value("#custom_network") == expected
    assert p.is_checked("#method-custom") and p.is_visible(".cm-editor")
    assert page.focus_in_editor()
    p.locator(f".cm-content .{language_class}").first.wait_for()  # highlighted once the parser has run
    assert page.active_line() == 1
    p.keyboard.press("Control+End")  # the line numbers run to the network's last line
    assert page.active_line() == expected.count("\n") + 1
    assert gutter_numbers(p)[-1] == str(expected.count("\n") + 1)


def test_visualize_takes_the_cursor_to_the_faulty_line(page, server):
    text = get_network("lenet").text("caffe").replace('  bottom: "pool1"\n', '  bottom: "pool9"\n', 1)
    line = text.splitlines().index('  bottom: "pool9"') + 1
    layer_line = line - 3  # the error names the layer conv2, which starts there
    page.new_model()
    p = page.page
    page.custom_tab()
    p.evaluate("text => NetworkField.setText(text)", text)
    assert p.input_value("#custom_network") == text
    p.click("#visualize")
    alert = p.locator("#network-graph .alert-danger")
    alert.wait_for()
    assert "pool9" in alert.inner_text() and f"line {layer_line}" in alert.inner_text()
    # The faulty line is marked in the editor at once, and the cursor waits on it without taking the focus.
    assert p.locator(".cm-marked-line").count() == 1
    assert page.active_line() == layer_line and not page.focus_in_editor()
    p.locator(".cm-content").click()  # the person moves elsewhere...
    p.keyboard.press("Control+Home")
    assert page.active_line() == 1
    button = alert.get_by_role("button", name=f"Go to line {layer_line}")
    button.focus()
    p.keyboard.press("Enter")  # ...and the button takes them back
    assert page.active_line() == layer_line and page.focus_in_editor()
    assert p.locator(".cm-marked-line").inner_text() == "layer {"
    assert p.locator(".cm-marked-line").is_visible()
    shot(p, "editor-error-line")
    # New text drops the mark; a network that works draws without an error.
    p.evaluate("text => NetworkField.setText(text)", get_network("lenet").text("caffe"))
    assert p.locator(".cm-marked-line").count() == 0
    p.click("#visualize")
    p.wait_for_selector("#network-graph svg")
    assert p.locator("#network-graph .alert-danger").count() == 0


def test_the_forms_error_on_the_network_offers_its_line(page, server):
    text = get_network("lenet").text("caffe").replace("    kernel_size: 5\n", "    kernel_size: 500\n", 2)
    line = text.splitlines().index("    kernel_size: 500") + 1
    page.new_model()
    p = page.page
    page.custom_tab()
    p.evaluate("text => NetworkField.setText(text)", text)
    p.fill("#model_name", "too-wide")
    page.allow.add(("POST", CREATE, 400))  # the form comes back with its error
    p.click("#model-form button[type=submit]")
    feedback = p.locator("#custom_network-error")
    feedback.wait_for()
    assert f"line {line}" in feedback.inner_text()
    # The page came back with the text in the editor and the faulty line marked.
    assert page.editor_text().replace("\r\n", "\n") == text
    assert p.locator(".cm-marked-line").count() == 1
    assert page.active_line() == line
    p.locator(".cm-content").click()
    p.keyboard.press("Control+End")
    assert page.active_line() != line
    p.get_by_role("button", name=f"Go to line {line}").click()
    assert page.active_line() == line and page.focus_in_editor()
    # The error list at the top leads there too.
    p.keyboard.press("Control+Home")
    p.locator('#form-errors a[href="#custom_network"]').click()
    assert page.active_line() == line and page.focus_in_editor()


@pytest.mark.slow
def test_a_model_is_created_with_exactly_the_editors_text_and_customized_again(page, server):
    page.new_model()
    p = page.page
    p.click("[data-customize=lenet]")
    p.wait_for_function("() => NetworkField.editor.text.length > 100")
    # Edit as a person would: a comment typed at the top, a layer renamed with the keyboard.
    p.keyboard.press("Control+Home")
    p.keyboard.type("# edited in the browser\n")
    p.keyboard.press("Control+Alt+g")  # CodeMirror's go-to-line box
    p.keyboard.type("35")
    p.keyboard.press("Enter")
    p.keyboard.press("End")
    p.keyboard.press("Shift+Home")
    p.keyboard.type('name: "first-conv"')
    text = page.editor_text()
    assert text.startswith("# edited in the browser\n# LeNet")
    assert text.splitlines()[33:36] == ["layer {", '  name: "first-conv"', '  type: "Convolution"']
    p.fill("#train_epochs", "1")
    p.fill("#model_name", "edited-lenet")
    p.click("#model-form button[type=submit]")
    p.wait_for_url(re.compile(r"/models/\d{8}-\d{6}-[0-9a-f]{4}$"))
    job_id = p.url.rsplit("/", 1)[1]
    saved = (server.jobs_dir / job_id / "network.prototxt").read_bytes().decode("utf-8")
    assert saved == text

    # Once trained, Customize of the previous network opens that same text.
    assert server.wait_status(job_id, timeout=LONG_S)["status"] == "Done"
    page.new_model()
    p.check("#framework-torch")  # Customize sets the previous model's framework back
    p.click("label[for=method-previous]")
    assert p.is_disabled("#customize-previous")
    p.select_option("#previous_networks", job_id)
    p.click("#customize-previous")
    wait_until(lambda: page.editor_text() == text, SHORT_S, "the previous network in the editor")
    assert p.is_checked("#framework-caffe") and p.is_checked("#method-custom")
    highlighted(p, "tok-typeName", "layer")


def test_at_400_px_the_editor_keeps_to_its_column(browser, server):
    page = Page(browser, server, width=400)
    p = page.page
    page.new_model()
    p.click("[data-customize=lenet]")
    p.wait_for_function("() => NetworkField.editor.text.length > 100")
    widths = p.evaluate(
        """() => { const ed = document.querySelector('.cm-editor'), box = ed.parentElement;
                   const scroller = ed.querySelector('.cm-scroller');
                   return [ed.getBoundingClientRect().width, box.clientWidth,
                           scroller.scrollWidth, scroller.clientWidth]; }"""
    )
    editor, column, inner, shown = widths
    assert 0 < editor <= column <= 400, widths
    assert inner > shown  # LeNet's long comment lines scroll inside the editor, not the page
    page.check()


def test_without_scripts_the_textarea_is_the_field(browser, server):
    page = browser.new_page(java_script_enabled=False)
    sign_in(page, server.url, "ann")
    page.goto(server.url + NEW)
    assert page.locator(".cm-editor").count() == 0 and page.is_visible("#custom_network")
    text = get_network("lenet").text("caffe").replace("    kernel_size: 5\n", "    kernel_size: 500\n", 1)
    page.check("#method-custom", force=True)  # a radio styled as a tab
    page.fill("#custom_network", text)
    page.fill("#model_name", "no-scripts")
    page.click("#model-form button[type=submit]")
    line = text.splitlines().index("    kernel_size: 500") + 1
    assert page.inner_text("#custom_network-error").startswith(f"line {line}, column 5: layer 'conv1'")
    assert page.input_value("#custom_network") == text  # the server had the text as typed, and sends it back
