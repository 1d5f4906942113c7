"""Live charts against the real server: a LeNet trains while Chromium and a Socket.IO client watch its room.

The server is the real devserver (gevent, real workers, the hardware monitor); the dataset is
built through the form. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import threading
import time

import pytest
import requests

from tests.support import JSON
from tests.support.browser import shot
from tests.support.imagegen import make_shapes
from tests.support.live import LiveServer, join_room
from tests.support.waiting import FINAL, LONG_MS, LONG_S, SHORT_S


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("live-charts")
    server = LiveServer(root / "jobs").start()
    make_shapes(str(root / "images"), per_class=40, size=(24, 40))
    server.dataset_id = server.folder_dataset(server.sign_in(), root / "images", folder_pct_val="25")
    yield server
    server.stop()


def train(server, epochs: int, batch_size: int, name: str = "lenet") -> str:
    fields = {"train_epochs": str(epochs), "batch_size": str(batch_size), "random_seed": "3"}
    return server.create_model(server.sign_in(), server.dataset_id, model_name=name, **fields)


def metric_points(server, job_id: str) -> list[tuple[str, str, float, float]]:
    metrics = requests.get(f"{server.url}/models/{job_id}/json", headers=JSON, timeout=SHORT_S).json()["metrics"]
    return [(ph, n, e, v) for ph, names in metrics.items() for n, pts in names.items() for e, v in pts]


@pytest.mark.slow
def test_a_client_in_the_room_receives_every_metric_of_a_run(server):
    job_id = train(server, epochs=2, batch_size=8, name="socketio")
    received: list[dict] = []
    finished = threading.Event()
    on = {"metric": received.append, "job_status": lambda d: d["status"] in FINAL and finished.set()}
    client = join_room(server.url, job_id, on, websocket=True)
    try:
        assert finished.wait(LONG_S)
    finally:
        client.disconnect()
    assert server.wait_status(job_id)["status"] == "Done"
    on_disk = metric_points(server, job_id)
    got = [(m["phase"], m["name"], m["epoch"], m["value"]) for m in received]
    assert got and set(got) <= set(on_disk)
    # The worker needs seconds to start, so the client joined before the first point: it heard every one.
    assert sorted(got) == sorted(on_disk)
    assert {(m["phase"], m["name"]) for m in received} >= {("train", "loss"), ("val", "accuracy")}
    assert all(m["job_id"] == job_id and m["time"] <= time.time() for m in received)


def counts(page) -> dict[str, int]:
    return page.evaluate("DIGITS.modelCharts.counts()")


def wait_points(page, key: str, more_than: int):
    """The count of `key`'s points on the page's charts once it is above `more_than` (the worker's pace)."""
    page.wait_for_function(
        "([key, n]) => DIGITS.modelCharts && DIGITS.modelCharts.counts()[key] > n",
        arg=[key, more_than],
        timeout=LONG_MS,
    )
    return counts(page)[key]


@pytest.mark.slow
@pytest.mark.browser
def test_model_page_charts_follow_a_run_and_survive_reloads(server, browser):
    job_id = train(server, epochs=300, batch_size=4, name="charts")  # far longer than the test: it is aborted
    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(f"{server.url}/models/{job_id}")
        first = wait_points(page, "train/loss", 2)
        grown = wait_points(page, "train/loss", first)
        assert grown > first
        page.wait_for_function("DIGITS.modelCharts.group.charts[0].u.data[0].length > 2")  # drawn, not just held
        assert counts(page)["train/learning_rate"] > 0
        assert "train loss" in page.inner_text("#chart-readout")
        assert "Epoch" in page.inner_text("#train-progress") and "of 300" in page.inner_text("#train-progress")
        assert page.get_attribute("#chart-loss", "aria-label").startswith("Chart of train and validation loss")
        page.wait_for_function("DIGITS.hardwarePanel.samples() > 0")
        assert "CPU" in page.inner_text("#hardware-readout") and "memory" in page.inner_text("#hardware-readout")
        shot(page, "live-charts-1-running")

        # Keyboard: Tab reaches the zoom buttons; Zoom in narrows the shared view, Reset shows everything again.
        page.focus("#charts-title")
        for _ in range(40):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.dataset.chartAction") == "zoom-in":
                break
        else:
            pytest.fail("Tab never reached the Zoom in button")
        page.keyboard.press("Enter")
        page.wait_for_function("DIGITS.modelCharts.group.view !== null")
        page.click("text=Reset zoom >> nth=0")
        page.wait_for_function("DIGITS.modelCharts.group.view === null")
        # Mouse: dragging across the loss chart zooms into that stretch of epochs.
        over = page.locator("#chart-loss .u-over")
        over.wait_for(state="visible")  # a redraw may be replacing it on a busy machine
        box = over.bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] / 2, steps=5)
        page.mouse.up()
        page.wait_for_function("DIGITS.modelCharts.group.view !== null")
        # Shift+drag pans the zoomed view: dragging to the right shows earlier epochs.
        start = page.evaluate("DIGITS.modelCharts.group.view.min")
        page.keyboard.down("Shift")
        page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] / 2, steps=5)
        page.mouse.up()
        page.keyboard.up("Shift")
        assert page.evaluate("DIGITS.modelCharts.group.view.min") < start
        page.dblclick("#chart-loss .u-over")
        page.wait_for_function("DIGITS.modelCharts.group.view === null")
        # A focused chart takes keys: + zooms, the arrows pan, 0 shows everything.
        page.focus("#chart-lr")
        page.keyboard.press("+")
        page.wait_for_function("DIGITS.modelCharts.group.view !== null")
        zoomed = page.evaluate("DIGITS.modelCharts.group.view.min")
        page.keyboard.press("ArrowLeft")
        assert page.evaluate("DIGITS.modelCharts.group.view.min") < zoomed
        page.keyboard.press("0")
        page.wait_for_function("DIGITS.modelCharts.group.view === null")

        before = counts(page)["train/loss"]
        page.reload()
        page.wait_for_function("document.getElementById('model-charts').dataset.history === 'loaded'")
        after_reload = counts(page)["train/loss"]
        assert after_reload >= before, "the history is drawn at once"
        shot(page, "live-charts-2-reloaded")
        wait_points(page, "train/loss", after_reload)  # then the stream goes on

        page.evaluate("window.notReloaded = true")
        r = server.sign_in().post(f"{server.url}/models/{job_id}/abort", headers=JSON, timeout=SHORT_S)
        assert r.status_code == 200
        page.wait_for_function("document.getElementById('job-status').textContent === 'Aborted'")
        # The page around the charts is refreshed in place: a finished job has no Abort button.
        page.wait_for_selector("form[action$='/abort']", state="detached")
        assert page.evaluate("window.notReloaded === true")
        page.wait_for_function("DIGITS.modelCharts.group.frame === 0")
        # No GPU here: a sample as a GPU server would send it draws a chart per reserved GPU.
        page.evaluate(
            """(jobId) => document.dispatchEvent(new CustomEvent("digits:hardware", {detail: {
                 job_id: jobId, task: "train", time: Date.now() / 1000 + 60, cpu_percent: 50, memory_bytes: 2 ** 30,
                 gpus: [{index: 0, utilization: 87, memory_used: 10 * 2 ** 30, memory_total: 80 * 2 ** 30,
                         temperature: 64}]}}))""",
            job_id,
        )
        page.wait_for_selector("#hardware-gpus figure .uplot")
        page.wait_for_function("document.getElementById('hardware-readout').textContent.includes('GPU 0: 87% busy')")
        assert "10.0 GiB of 80.0 GiB, 64 °C" in page.inner_text("#hardware-readout")
        shot(page, "live-charts-3-aborted")
        on_disk = metric_points(server, job_id)
        shown = counts(page)
        for key in ("train/loss", "train/learning_rate", "val/loss", "val/accuracy"):
            phase, name = key.split("/")
            assert shown[key] == sum(1 for p in on_disk if p[:2] == (phase, name)), f"{key}: gaps or duplicates"
        assert not errors, errors
    finally:
        page.close()
        server.sign_in().post(f"{server.url}/models/{job_id}/abort", headers=JSON, timeout=SHORT_S)


@pytest.mark.browser
def test_sparklines_draw_and_follow_metric_events(live_server, browser):
    """sparkline.js on console-like markup: inline SVGs from data attributes, values pushed by events."""
    page = browser.new_page()
    try:
        page.goto(live_server.url + "/")
        page.wait_for_function("window.DIGITS && DIGITS.sparklines")
        page.evaluate(
            """() => {
              const tr = document.createElement("tr");
              tr.dataset.jobId = "20990101-000000-abcd";
              tr.innerHTML = `<td class="sparkline-cell"><span class="metric-latest"></span>
                <span class="sparkline" data-sparkline data-name="loss" data-values='[2.0, 1.5, 1.1]'></span></td>`;
              document.querySelector("#console-tables table tbody").append(tr);
            }"""
        )
        page.wait_for_function("document.querySelector('tr[data-job-id=\"20990101-000000-abcd\"] svg polyline')")
        points = "document.querySelector('tr[data-job-id=\"20990101-000000-abcd\"] polyline').getAttribute('points')"
        assert len(page.evaluate(points).split()) == 3
        page.evaluate(
            """() => {
              const id = "20990101-000000-abcd";
              DIGITS.sparklines.onMetric({job_id: id, phase: "train", name: "loss", value: 0.9, epoch: 1});
              DIGITS.sparklines.onMetric({job_id: id, phase: "val", name: "accuracy", value: 0.5, epoch: 1});
              DIGITS.sparklines.onMetric({job_id: id, phase: "val", name: "accuracy", value: 0.75, epoch: 2});
              DIGITS.sparklines.onMetric({job_id: id, phase: "train", name: "loss", value: 0.2, epoch: 2.1});
            }"""
        )
        row = 'tr[data-job-id="20990101-000000-abcd"]'
        page.wait_for_function(f"document.querySelector('{row} .sparkline').dataset.name === 'accuracy'")
        page.wait_for_function(f"{points}.split(' ').length === 2")  # accuracy replaced loss; loss is ignored now
        assert page.inner_text(f"{row} .metric-latest") == "75.0%"
        assert "accuracy" in page.get_attribute(f"{row} .sparkline", "aria-label")
    finally:
        page.close()


@pytest.mark.browser
def test_decimation_keeps_every_extreme_and_bounds_what_is_drawn(live_server, browser):
    page = browser.new_page()
    try:
        page.set_content(
            '<meta name="digits-root" content="">'
            + "".join(
                f'<script src="{live_server.url}/static/{path}"></script>'
                for path in ("vendor/uplot/uPlot.iife.min.js", "js/digits.js", "js/charts.js")
            )
        )
        page.wait_for_function("window.DIGITS && DIGITS.charts")
        got = page.evaluate(
            """() => {
              const {Series, decimate, align, ChartGroup} = DIGITS.charts;
              const s = new Series();
              for (let i = 0; i < 100000; i++) s.push(i / 100, Math.sin(i / 50) + (i === 54321 ? 5 : 0));
              const spike = Math.sin(54321 / 50) + 5;
              const late = s.push(10, 1);  // at or before the last point: already drawn
              const all = decimate(s, 0, 999.99, 500), zoomed = decimate(s, 100, 200, 500);
              const few = decimate(s, 100, 101, 500);
              const group = new ChartGroup();
              group.schedule = () => {};
              group.charts.push({series: new Map([["a", s]])});
              group.zoom(0.5);
              const zoomedIn = [group.view.min, group.view.max];
              group.pan(-10);
              const pannedToStart = [group.view.min, group.view.max];
              group.zoom(100);
              return {
                n: s.length, late, allN: all.x.length, spikeKept: Math.max(...all.y) === spike,
                allMin: Math.min(...all.y),
                increasing: all.x.every((x, i) => i === 0 || x > all.x[i - 1]),
                zoomed: [zoomed.x.length, zoomed.x[0], zoomed.x[zoomed.x.length - 1]],
                few: [few.x.length, few.x[0], few.x[few.x.length - 1]],
                aligned: align([{x: [1, 2, 4], y: [1, 2, 4]}, {x: [2, 3], y: [20, 30]}]),
                zoomedIn, pannedToStart, zoomedOut: group.view,
              };
            }"""
        )
    finally:
        page.close()
    assert got["n"] == 100_000 and got["late"] is False
    assert got["allN"] <= 2 * 501 and got["increasing"]  # two per column (the last one holds x1 itself)
    assert got["spikeKept"], "a one-point spike survives decimation"
    assert got["allMin"] == pytest.approx(-1, abs=1e-3)
    assert got["zoomed"][0] <= 2 * 501 + 2 and got["zoomed"][1] <= 100 and got["zoomed"][2] >= 200
    assert got["few"] == [103, pytest.approx(99.99), pytest.approx(101.01)]  # all, and one beyond each edge
    assert got["aligned"] == [[1, 2, 3, 4], [1, 2, None, 4], [None, 20, 30, None]]
    assert got["zoomedIn"] == pytest.approx([249.9975, 749.9925])
    assert got["pannedToStart"] == pytest.approx([0, 499.995])  # kept inside the data
    assert got["zoomedOut"] is None  # the whole extent again: follow new points
