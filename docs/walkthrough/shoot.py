"""Re-shoot the README's walkthrough pictures on MNIST, as a person does it, in Chromium at 1280 px wide, plus
the model page at 400 px: the devserver `make run` starts, on a fresh jobs folder, with MNIST written under a
temporary HOME (so the dataset form takes `~/mnist/train` exactly as the README says).

    .venv/bin/python docs/walkthrough/shoot.py [--epochs 10] [--chromium /usr/bin/chromium]

Writes docs/walkthrough/{2-dataset,3-trained,5-classified,6-classified-many,8-small-screen}.png and prints the
run's figures (dataset build and training seconds, final validation accuracy) as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
JOB_URL = re.compile(r"/(datasets|models)/\d{8}-\d{6}-[0-9a-f]{4}$")
LONG_MS = 1_800_000  # a busy 2-core machine builds MNIST and trains LeNet in minutes; allow half an hour


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(jobs: str, home: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "HOME": home}
    proc = subprocess.Popen(
        [sys.executable, "-m", "digits", "-p", str(port), "--jobs-dir", jobs],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            urllib.request.urlopen(url + "/", timeout=2)
            return proc, url
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("the devserver did not start")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--chromium", default="/usr/bin/chromium")
    args = p.parse_args()
    from playwright.sync_api import sync_playwright

    work = tempfile.mkdtemp(prefix="walkthrough-")
    home = os.path.join(work, "home")
    os.makedirs(home)
    subprocess.run(
        [sys.executable, "-m", "digits.download_data", "mnist", os.path.join(home, "mnist")], check=True, cwd=ROOT
    )
    server, url = start_server(os.path.join(work, "jobs"), home)
    figures = {}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(120_000)
            page.goto(url + "/login")
            page.fill("#username", "me")
            page.keyboard.press("Enter")
            page.wait_for_url(url + "/")

            page.get_by_role("link", name="New Dataset").first.click()
            page.fill("#folder_train", "~/mnist/train")
            page.check("#has_val_folder")
            page.fill("#folder_val", "~/mnist/test")
            page.select_option("#resize_channels", "1")
            page.fill("#resize_width", "28")
            page.fill("#resize_height", "28")
            page.fill("#dataset_name", "mnist")
            started = time.perf_counter()
            page.locator("#dataset-form button[type=submit]").click()
            page.wait_for_url(JOB_URL)
            page.wait_for_selector("#job[data-status=Done]", timeout=LONG_MS)
            figures["dataset_s"] = round(time.perf_counter() - started, 1)
            page.screenshot(path=os.path.join(HERE, "2-dataset.png"), full_page=True)

            page.goto(url + "/models/images/classification/new")
            page.check("#framework-caffe")
            page.check("#net-lenet")
            page.fill("#train_epochs", str(args.epochs))
            page.fill("#model_name", "lenet-mnist")
            started = time.perf_counter()
            page.locator("#model-form button[type=submit]").click()
            page.wait_for_url(JOB_URL)
            model_url = page.url
            page.wait_for_selector("#job[data-status=Done]", timeout=LONG_MS)
            figures["training_s"] = round(time.perf_counter() - started, 1)
            accuracy = page.locator("#latest-metrics tr[data-metric='val accuracy'] td").inner_text()
            figures["val_accuracy"] = float(accuracy)
            page.wait_for_function("() => document.getElementById('model-charts').dataset.history === 'loaded'")
            page.screenshot(path=os.path.join(HERE, "3-trained.png"), full_page=True)

            digit = os.path.join(home, "mnist", "test", "7")
            page.set_input_files("#classify-one-file", os.path.join(digit, sorted(os.listdir(digit))[0]))
            page.check("#classify-one-vis")
            page.locator("#classify-one-form button[type=submit]").click()
            page.wait_for_selector("#predictions")
            page.screenshot(path=os.path.join(HERE, "5-classified.png"), full_page=True)

            page.goto(model_url)
            listing = os.path.join(work, "some-of-test.txt")
            with open(listing, "w") as fh:
                for label in range(10):
                    folder = os.path.join(home, "mnist", "test", str(label))
                    for name in sorted(os.listdir(folder))[:50]:
                        fh.write(f"{os.path.join(folder, name)} {label}\n")
            page.set_input_files("#classify-many-list", listing)
            page.locator("#classify-many-form button", has_text="Classify many").click()
            page.wait_for_url(re.compile(r"/classify_many/"), timeout=LONG_MS)
            page.wait_for_selector("#results-count")
            page.screenshot(path=os.path.join(HERE, "6-classified-many.png"), full_page=False)

            small = browser.new_page(viewport={"width": 400, "height": 800})
            small.context.add_cookies(page.context.cookies())
            small.goto(model_url)
            small.wait_for_function("() => document.getElementById('model-charts').dataset.history === 'loaded'")
            small.screenshot(path=os.path.join(HERE, "8-small-screen.png"), full_page=False)
            browser.close()
    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({"name": "walkthrough", **figures}))


if __name__ == "__main__":
    main()
