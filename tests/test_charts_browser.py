"""The model page's charts in Chromium against the real server and a real LeNet run: smoothing and the log scale
(keyboard, labels, remembered by the browser, and what uPlot is handed), and a long history (50,000 points a
series) drawn decimated at once, with every point of a zoomed range fetched and drawn."""

from __future__ import annotations

import json
import math
import os
import random

import pytest

from tests.support.browser import PageWatch, shot
from tests.support.imagegen import make_shapes
from tests.support.live import LiveServer
from tests.support.waiting import LONG_S

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("charts")
    server = LiveServer(root / "jobs").start()
    make_shapes(str(root / "images"), per_class=20, size=(24, 40))
    http = server.sign_in()
    server.dataset_id = server.folder_dataset(http, root / "images", folder_pct_val="25")
    fields = {"train_epochs": "2", "batch_size": "4", "random_seed": "3"}
    server.model_id = server.create_model(http, server.dataset_id, model_name="charts", **fields)
    assert server.wait_status(server.model_id, timeout=LONG_S)["status"] == "Done"
    yield server
    server.stop()


def open_model(browser, server, job_id, viewport=None, context=None):
    page = (context or browser.new_context()).new_page()
    page.set_viewport_size(viewport or {"width": 1280, "height": 1000})
    watch = PageWatch(page)
    page.goto(f"{server.url}/models/{job_id}")
    page.wait_for_function("document.getElementById('model-charts').dataset.history === 'loaded'")
    page.wait_for_function("DIGITS.modelCharts.group.charts.every((c) => c.u && c.u.data[0].length > 0)")
    return page, watch


# Every uPlot series of the loss chart: its label, its stroke, and its points as [x, y] without the gaps.
LOSS_SERIES = """() => {
  const u = DIGITS.modelCharts.group.charts[0].u;
  return u.series.slice(1).map((s, i) => ({
    label: s.label,
    stroke: typeof s.stroke === "function" ? s.stroke(u, i + 1) : s.stroke,
    points: u.data[0].map((x, j) => [x, u.data[i + 1][j]]).filter((p) => p[1] != null),
  }));
}"""


def ema(values: list[float], weight: float) -> list[float]:
    """TensorBoard's smoothing, written out here independently of the page's."""
    out, last = [], 0.0
    for n, v in enumerate(values, start=1):
        last = last * weight + (1 - weight) * v
        out.append(last / (1 - weight**n))
    return out


def test_smoothing_and_log_scale_by_keyboard_remembered_by_the_browser(server, browser):
    context = browser.new_context()
    page, watch = open_model(browser, server, server.model_id, context=context)
    try:
        smoothing = page.get_by_label("Smoothing", exact=True)
        log_scale = page.get_by_label("Log scale (loss)")
        assert smoothing.input_value() == "0" and not log_scale.is_checked()
        raw = {s["label"]: s for s in page.evaluate(LOSS_SERIES)}
        assert "train loss" in raw and not any(label.endswith("(raw)") for label in raw)
        unsmoothed = len(raw)

        # The keyboard: End is the strongest smoothing, each ArrowLeft takes off 0.01.
        smoothing.focus()
        page.keyboard.press("End")
        for _ in range(9):
            page.keyboard.press("ArrowLeft")
        assert smoothing.input_value() == "0.9"
        assert page.inner_text("#chart-smoothing-value") == "0.90"
        page.wait_for_function(
            "(n) => DIGITS.modelCharts.group.charts[0].u.series.length === 1 + 2 * n", arg=unsmoothed
        )
        page.wait_for_function("DIGITS.modelCharts.group.frame === 0")
        drawn = {s["label"]: s for s in page.evaluate(LOSS_SERIES)}
        held = page.evaluate("DIGITS.modelCharts.held('train/loss')")
        assert len(held["x"]) > 10
        expected = dict(zip(held["x"], ema(held["y"], 0.9), strict=True))
        # Behind: the raw points, faint (the colour at a quarter of its opacity); in front: their moving average.
        assert drawn["train loss (raw)"]["points"] == [[x, y] for x, y in zip(held["x"], held["y"], strict=True)]
        assert drawn["train loss (raw)"]["stroke"].lower() == drawn["train loss"]["stroke"].lower() + "40"
        smoothed = drawn["train loss"]["points"]
        assert [x for x, _ in smoothed] == held["x"]
        assert all(y == pytest.approx(expected[x], rel=1e-9) for x, y in smoothed)
        assert smoothed[0][1] == pytest.approx(held["y"][0]), "debiased: the first point is not pulled to zero"
        assert max(abs(a - b) for a, b in zip(held["y"][1:], held["y"][:-1], strict=True)) > max(
            abs(a[1] - b[1]) for a, b in zip(smoothed[1:], smoothed[:-1], strict=True)
        ), "the smoothed line moves less than the raw one"
        legend = page.locator("#chart-loss .u-legend .u-series:visible").all_inner_texts()
        assert not any("(raw)" in text for text in legend) and any("train loss" in text for text in legend)

        # The log scale, by Space on the focused switch: the loss axis places values by their logarithm.
        log_scale.focus()
        page.keyboard.press("Space")
        assert log_scale.is_checked()
        page.wait_for_function("DIGITS.modelCharts.group.charts[0].u.scales.loss.distr === 3")
        gaps = page.evaluate(
            """() => {
              const u = DIGITS.modelCharts.group.charts[0].u, pos = (v) => u.valToPos(v, "loss");
              return [pos(0.01) - pos(0.1), pos(0.1) - pos(1)];
            }"""
        )
        assert gaps[0] == pytest.approx(gaps[1], rel=1e-6) and gaps[0] > 0, "each decade takes the same height"
        assert page.evaluate("DIGITS.modelCharts.group.charts[1].u.scales.lr.distr") == 1, "the learning rate stays"
        shot(page, "charts-smoothed-log")

        # Remembered by this browser: a new page in the same context starts smoothed and logarithmic.
        again, again_watch = open_model(browser, server, server.model_id, context=context)
        assert again.get_by_label("Smoothing", exact=True).input_value() == "0.9"
        assert again.get_by_label("Log scale (loss)").is_checked()
        assert again.evaluate("DIGITS.modelCharts.group.charts[0].u.scales.loss.distr") == 3
        assert "train loss (raw)" in [s["label"] for s in again.evaluate(LOSS_SERIES)]
        # Back to none: the raw points alone, as at first.
        again.get_by_label("Smoothing", exact=True).focus()
        again.keyboard.press("Home")
        again.wait_for_function("(n) => DIGITS.modelCharts.group.charts[0].u.series.length === 1 + n", arg=unsmoothed)
        assert again.evaluate("localStorage.getItem('digits.charts.smoothing')") == "0"
        again_watch.check()
        watch.check()
    finally:
        context.close()


def extend_history(job_dir: str, points: int) -> dict[str, list[list[float]]]:
    """Append synthetic points to the run's metrics.jsonl until train loss and val accuracy hold `points` each,
    after the real ones, with one spike; returns the appended points by series."""
    rnd = random.Random(5)
    out: dict[str, list[list[float]]] = {"train/loss": [], "val/accuracy": []}
    with open(os.path.join(job_dir, "metrics.jsonl")) as fh:
        lines = [json.loads(line) for line in fh]
    start = max(m["epoch"] for m in lines)
    have = {key: sum(1 for m in lines if f"{m['phase']}/{m['name']}" == key) for key in out}
    with open(os.path.join(job_dir, "metrics.jsonl"), "a") as fh:
        for key in out:
            phase, name = key.split("/")
            extra = points - have[key]
            for i in range(extra):
                epoch = start + (i + 1) * 100.0 / extra
                if name == "loss":
                    value = 2 * math.exp(-i / extra * 4) + rnd.random() / 5 + (30.0 if i == extra // 3 else 0)
                else:
                    value = min(1.0, 0.5 + 0.5 * i / extra + rnd.gauss(0, 0.01))
                out[key].append([epoch, value])
                line = {"task": "train", "time": 1.0, "phase": phase, "name": name, "value": value, "epoch": epoch}
                fh.write(json.dumps({**line, "iteration": None}) + "\n")
    return out


def test_a_long_history_draws_decimated_and_zooming_fetches_every_point(server, browser, tmp_path):
    http = server.sign_in()
    fields = {"train_epochs": "1", "batch_size": "8", "random_seed": "4"}
    job_id = server.create_model(http, server.dataset_id, model_name="long history", **fields)
    assert server.wait_status(job_id, timeout=LONG_S)["status"] == "Done"
    job_dir = str(server.jobs_dir / job_id)
    extend_history(job_dir, 50_000)
    on_disk = http.get(f"{server.url}/models/{job_id}/json", headers={"Accept": "application/json"}).json()
    loss = [p for p in on_disk["metrics"]["train"]["loss"]]
    assert len(loss) == 50_000

    page, watch = open_model(browser, server, job_id)
    try:
        counts = page.evaluate("DIGITS.modelCharts.counts()")
        assert counts["train/loss"] == counts["val/accuracy"] == 50_000, "the page knows every point is there"
        held = page.evaluate("DIGITS.modelCharts.held('train/loss')")
        assert len(held["x"]) <= 2002, "the first draw got a decimated history"
        assert max(held["y"]) == max(v for _, v in loss) > 30, "the spike is drawn"
        assert (held["x"][0], held["x"][-1]) == (loss[0][0], loss[-1][0]), "from the first epoch to the last"
        assert f"({sum(counts.values()):,} points)" in page.inner_text("#chart-readout")

        # Zoom in by keyboard, eight times by half: about 200 points a series in view, each one fetched and drawn.
        page.focus("#chart-loss")
        for _ in range(8):
            page.keyboard.press("+")
        # One condition, read at one moment: a detail has come, none is asked or awaited, and the frame that drew
        # the last one has run (a frame that finds its view still wants detail asks again before it returns). Read
        # apart, a detail for a view the keys had since left could pass for the last.
        page.wait_for_function(
            "DIGITS.modelCharts.detailLoads() > 0 && !DIGITS.modelCharts.detailPending()"
            " && DIGITS.modelCharts.group.frame === 0"
        )
        view = page.evaluate("DIGITS.modelCharts.group.view")
        wanted = [[x, y] for x, y in loss if view["min"] <= x <= view["max"]]
        assert 100 < len(wanted) < 400
        drawn = {s["label"]: s for s in page.evaluate(LOSS_SERIES)}["train loss"]["points"]
        in_view = [p for p in drawn if view["min"] <= p[0] <= view["max"]]
        assert in_view == wanted, "every point of the zoomed range, none made up"
        shot(page, "charts-long-history-zoomed")
        page.keyboard.press("0")
        page.wait_for_function("DIGITS.modelCharts.group.view === null")
        watch.check()
    finally:
        page.close()
