"""An external run's page in Chromium while a real script reports to it: the charts draw each batch as it comes,
the status follows (Running, then Done or Error with the script's message) without a reload, and the comparison
page of two runs follows their batches too."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from tests.support import ROOT
from tests.support.browser import PageWatch
from tests.support.live import LiveServer
from tests.support.waiting import LONG_MS, SHORT_S

pytestmark = pytest.mark.browser

# The script waits for a line on stdin before each stage, so the page is open and live before any point exists.
SCRIPT = """
import sys
from digits.client import Run

run = Run(sys.argv[1], None, sys.argv[2], user="ann", epochs=3, settings={{"hidden": int(sys.argv[3])}}, batch=1000)
print(run.id, flush=True)
sys.stdin.readline()
with run:
    for epoch in range(1, 4):
        for i in range(50):
            run.log(epoch=epoch - 1 + (i + 1) / 50, loss=2.0 / (epoch + i / 50), lr=0.1 / epoch)
        run.log(epoch=epoch, val_loss=1.0 / epoch, val_accuracy=0.3 * epoch)
    run.flush()
    print("logged", flush=True)
    sys.stdin.readline()
{end}
"""
# Counts the rooms a page's DIGITS.live connection has joined (the server answers each join with `joined`).
JOINED = """
let digits;
Object.defineProperty(window, "DIGITS", {
  configurable: true,
  get: () => digits,
  set: (value) => {
    const live = value.live;
    value.live = (rooms, handlers) => live(rooms, { ...handlers, joined: (ev) => {
      window.testJoined = (window.testJoined || 0) + 1;
      if (handlers.joined) handlers.joined(ev);
    } });
    digits = value;
  },
});
"""
COUNTS = "(want) => { const c = DIGITS.modelCharts.counts(); return Object.keys(want).every((k) => c[k] === want[k]); }"


@pytest.fixture
def server(tmp_path):
    server = LiveServer(tmp_path / "jobs", env={"DIGITS_RUN_HEARTBEAT_S": "30"}).start()
    yield server
    server.stop()


@pytest.fixture
def scripts():
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=SHORT_S)


def start(tmp_path, server, scripts, name: str, hidden: int, end: str = "") -> tuple[subprocess.Popen, str]:
    path = tmp_path / f"{name}.py"
    path.write_text(SCRIPT.format(end=textwrap.indent(end, "    ")))
    proc = subprocess.Popen(
        [sys.executable, str(path), server.url, name, str(hidden)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    scripts.append(proc)
    return proc, proc.stdout.readline().strip()


def go(proc: subprocess.Popen) -> None:
    proc.stdin.write("go\n")
    proc.stdin.flush()


def live_page(browser, url: str, rooms: int = 1):
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    watch = PageWatch(page)
    page.add_init_script(JOINED)
    page.goto(url)
    page.wait_for_function("(n) => window.testJoined >= n", arg=rooms)
    return page, watch


def test_the_run_page_draws_a_script_s_points_live_and_ends_done(tmp_path, server, browser, scripts):
    proc, run_id = start(tmp_path, server, scripts, "steady", 16)
    other, other_id = start(tmp_path, server, scripts, "wider", 64)
    page, watch = live_page(browser, f"{server.url}/runs/{run_id}")
    page.wait_for_selector("#model-charts[data-history=loaded]")
    assert page.inner_text("#job-status") == "Running"
    assert page.evaluate("DIGITS.modelCharts.counts()['train/loss']") == 0
    page.evaluate("window.sameDocument = true")

    compare, compare_watch = live_page(browser, f"{server.url}/models/compare?job_id={run_id}&job_id={other_id}", 2)
    compare.wait_for_selector("#compare[data-loaded=true]")
    assert compare.locator("#compare-rows tr").count() == 2
    before = int(compare.get_attribute("#compare", "data-points"))

    go(proc)
    assert proc.stdout.readline().strip() == "logged"
    want = {"train/loss": 150, "train/learning_rate": 150, "val/loss": 3, "val/accuracy": 3}
    page.wait_for_function(COUNTS, arg=want)
    held = page.evaluate("DIGITS.modelCharts.held('val/accuracy')")
    assert held["x"] == [1, 2, 3] and held["y"] == pytest.approx([0.3, 0.6, 0.9])
    assert page.evaluate("DIGITS.modelCharts.held('train/loss').x.at(-1)") == 3
    page.wait_for_function("() => DIGITS.modelCharts.group.charts.every((c) => c.u && c.u.data[0].length > 0)")
    # The comparison drew the same batch as the run's curves (train and val loss, val accuracy).
    compare.wait_for_function(f"() => Number(document.getElementById('compare').dataset.points) >= {before + 156}")

    go(proc)
    assert proc.wait(SHORT_S) == 0, proc.stderr.read()
    page.wait_for_function("() => document.getElementById('job-status').textContent.trim() === 'Done'")
    assert page.evaluate("window.sameDocument") is True  # followed live, not reloaded
    compare.wait_for_selector(f"#compare-rows tr[data-job-id='{run_id}'][data-status=Done]", timeout=LONG_MS)
    go(other)
    go(other)
    assert other.wait(SHORT_S) == 0, other.stderr.read()
    watch.check()
    compare_watch.check()


def test_a_crashed_script_shows_error_with_its_message(tmp_path, server, browser, scripts):
    proc, run_id = start(tmp_path, server, scripts, "crashy", 8, end='raise RuntimeError("CUDA out of <memory>")\n')
    page, watch = live_page(browser, f"{server.url}/runs/{run_id}")
    page.evaluate("window.sameDocument = true")
    go(proc)
    assert proc.stdout.readline().strip() == "logged"
    page.wait_for_function(COUNTS, arg={"train/loss": 150, "val/accuracy": 3})
    go(proc)
    assert proc.wait(SHORT_S) == 1
    page.wait_for_function("() => document.getElementById('job-status').textContent.trim() === 'Error'")
    page.wait_for_selector(".error-message")
    assert page.inner_text(".error-message") == "RuntimeError: CUDA out of <memory>"
    assert page.evaluate("window.sameDocument") is True
    watch.check()
