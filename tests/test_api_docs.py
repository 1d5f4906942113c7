"""docs/API.md is true: it names every route the app serves, and its curl examples, run by the real curl against
the real server (a team server with a real dataset and a trained model), answer the status each one states.

The conventions this test reads are written at the top of docs/API.md: ```sh blocks are examples; each request
in one is followed by a `# HTTP <status>` line; $DIGITS, $TOKEN and the other placeholders are filled here from
jobs made for the purpose. Blocks run in the document's order; those that delete work on jobs of their own.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from werkzeug.exceptions import HTTPException

from digits.webapp import create_app
from tests.support import ROOT
from tests.support.accounts import password_of
from tests.support.apps import app_settings
from tests.support.caffe_lmdb import convert_imageset, shape_images
from tests.support.forms import dataset_form, model_form
from tests.support.generic_data import blobs, write_csv
from tests.support.imagegen import make_shapes
from tests.support.live import team_server
from tests.support.waiting import LONG_S, SHORT_S

API_MD = ROOT / "docs" / "API.md"
METHODS = ("GET", "POST", "PUT", "DELETE")
# A route as the document names it, in a code span: `GET /jobs/<job_id>` or `GET|POST /models/customize`.
DOC_ROUTE = re.compile(r"`((?:GET|POST|PUT|DELETE)(?:\|(?:GET|POST|PUT|DELETE))*) (/[^`\s]*)`")
BLOCK = re.compile(r"^```(sh|bash)([^\n]*)\n(.*?)^```", re.S | re.M)
EXPECTED = re.compile(r"^\s*# HTTP (\d{3})\b", re.M)
# curl prints this after each request (the curlrc below); an example's own output never has it.
STATUS_MARK = "@@digits-api-status "
STATUS_LINE = re.compile(r"^@@digits-api-status (\d{3})$", re.M)


def plain_rule(rule: str) -> str:
    """A Flask rule as the document writes it: each variable by its name only (`<any(a, b):kind>` -> `<kind>`)."""
    return re.sub(r"<(?:[^<>:]*:)?([^<>:]+)>", r"<\1>", rule)


@contextmanager
def served_app():
    """The app create_app builds (on a throwaway jobs folder): its url_map is what the server serves."""
    jobs = Path(tempfile.mkdtemp(prefix="api-docs-")) / "jobs"
    app = create_app(app_settings(jobs))
    try:
        yield app
    finally:
        app.extensions["digits"].close()
        shutil.rmtree(jobs.parent, ignore_errors=True)


def app_routes(app) -> set[tuple[str, str]]:
    """(method, rule) of every route of the app, static files aside."""
    return {
        (method, plain_rule(rule.rule))
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }


def documented_routes(text: str) -> set[tuple[str, str]]:
    return {(method, path) for methods, path in DOC_ROUTE.findall(text) for method in methods.split("|")}


def test_every_route_is_documented():
    with served_app() as app:
        served = app_routes(app)
    documented = documented_routes(API_MD.read_text())
    missing = sorted(f"{m} {p}" for m, p in served - documented)
    assert not missing, "routes the app serves that docs/API.md does not name (as `METHOD /path`):\n" + "\n".join(
        missing
    )
    stale = sorted(f"{m} {p}" for m, p in documented - served)
    assert not stale, "routes docs/API.md names that the app does not serve:\n" + "\n".join(stale)


@dataclass
class Example:
    heading: str
    code: str
    expected: list[int]
    runs: bool


def examples(text: str) -> list[Example]:
    """Every ```sh block, with the heading it is under and the statuses its `# HTTP` lines state."""
    out = []
    for match in BLOCK.finditer(text):
        before = text[: match.start()]
        headings = re.findall(r"^#{2,4} (.+)$", before, re.M)
        code = match.group(3)
        out.append(
            Example(
                headings[-1] if headings else "(top)",
                code,
                [int(s) for s in EXPECTED.findall(code)],
                "not-run" not in match.group(2),
            )
        )
    return out


def test_examples_state_their_statuses():
    """Every example states one status per request (so the run below checks each of them)."""
    found = examples(API_MD.read_text())
    assert found, "docs/API.md has no ```sh examples"
    for ex in found:
        requests_made = len(re.findall(r"(?:^|[\s;&|(])curl\s", ex.code))
        assert requests_made, f"an example under {ex.heading!r} makes no request:\n{ex.code}"
        assert len(ex.expected) == requests_made, (
            f"the example under {ex.heading!r} makes {requests_made} request(s) but states "
            f"{len(ex.expected)} status(es) (a '# HTTP <status>' line after each):\n{ex.code}"
        )


DATA_FLAGS = {"-d", "--data", "--data-urlencode", "--data-binary", "--data-raw", "-F", "--form"}


def requests_of(code: str) -> list[tuple[str, str]]:
    """(method, path) of each curl request in an example, as curl sends it (-X, else POST with data unless -G,
    else GET), the path with every $PLACEHOLDER as a plain word and without its query."""
    out = []
    for line in code.replace("\\\n", " ").splitlines():
        if not line.strip().startswith("curl "):
            continue
        words = shlex.split(line, comments=True)
        method = "GET"
        if any(w in DATA_FLAGS for w in words) and not {"-G", "--get"} & set(words):
            method = "POST"
        for flag in ("-X", "--request"):
            if flag in words:
                method = words[words.index(flag) + 1]
        for word in words:
            if word.startswith("$DIGITS"):
                path = re.sub(r"\$\{?[A-Z_]+\}?", "x", word.removeprefix("$DIGITS")).split("?")[0]
                out.append((method, path or "/"))
    return out


def test_every_route_has_an_example():
    """Some example that runs calls each route: its URL and method are routed to that rule by the app's own map."""
    found = [ex for ex in examples(API_MD.read_text()) if ex.runs]
    with served_app() as app:
        served = app_routes(app)
        adapter = app.url_map.bind("localhost")
        called = set()
        for ex in found:
            for method, path in requests_of(ex.code):
                try:
                    rule, _ = adapter.match(path, method, return_rule=True)
                except HTTPException:
                    continue  # /socket.io/ is not a Flask route
                called.add((method, plain_rule(rule.rule)))
    missing = sorted(f"{m} {p}" for m, p in served - called)
    assert not missing, "routes no example of docs/API.md calls:\n" + "\n".join(missing)


# ---- the examples, run ---------------------------------------------------------------------------------------
def _post(server, path: str, data=None, files=None, headers=None) -> dict:
    r = requests.post(
        server.url + path, data=data, files=files, headers={**server.headers, **(headers or {})}, timeout=LONG_S
    )
    assert r.status_code == 200, f"{path}: {r.status_code} {r.text[:2000]}"
    return r.json()


def _dataset(server, images: Path, name: str) -> str:
    return _post(server, "/datasets/images/classification/json", dataset_form(images, dataset_name=name))["id"]


def _model(server, dataset_id: str, **fields) -> str:
    return _post(server, "/models/images/classification/json", model_form(dataset_id, **fields))["id"]


def build_world(root: Path):
    """A team server (ann: an admin who may run code) with a data root of shapes, a finished dataset, a trained
    model and its kept results, plus jobs of their own for the examples that abort, resume and delete: the
    environment the examples read."""
    data = root / "data"
    images = data / "shapes"
    made = make_shapes(str(images), per_class=10, size=(24, 40))
    server = team_server(
        root / "jobs",
        "ann",
        "bob",
        admins=("ann",),
        code=("ann",),
        args=["--data-root", str(data)],
        env={"DIGITS_INFERENCE_WORKERS": "1"},
    )
    server.entry = ["-m", "digits"]  # the plain server, as users start it (no test harness routes)
    server.start()
    try:
        dataset_id = _dataset(server, images, "shapes")
        spare_ids = [_dataset(server, images, f"spare {i}") for i in (1, 2)]
        for job_id in (dataset_id, *spare_ids):
            assert server.wait_status(job_id, timeout=LONG_S)["status"] == "Done", server.log()[-3000:]
        model_id = _model(server, dataset_id, model_name="lenet on shapes")
        done = server.wait_status(model_id, timeout=LONG_S)
        assert done["status"] == "Done", (done, server.log()[-3000:])

        # Kept results, as the model page's Test section makes them (their ids only: Prefer: return=minimal).
        minimal = {"Prefer": "return=minimal"}
        image = Path(made["circle"][1])
        with open(image, "rb") as fh:
            one = _post(
                server,
                "/models/images/classification/classify_one",
                {"job_id": model_id, "show_visualizations": "1"},
                {"image_file": (image.name, fh)},
                minimal,
            )
        listing = "\n".join(f"{p} {cls}" for cls, paths in made.items() for p in paths[:4])
        form = {"job_id": model_id, "image_list": listing}
        many = _post(server, "/models/images/classification/classify_many", form, headers=minimal)
        top = _post(server, "/models/images/classification/top_n", {**form, "top_n": "3"}, headers=minimal)
        # A confusion matrix where versions before kept results pages left one: results/confusion-<16 hex>.png.
        old_confusion = "confusion-0123456789abcdef.png"
        model_dir = root / "jobs" / model_id
        shutil.copy(model_dir / "results" / many["results_id"] / "confusion.png", model_dir / "results" / old_confusion)

        work = root / "work"
        work.mkdir()
        (work / ".curlrc").write_text(f'write-out = "\\n{STATUS_MARK}%{{http_code}}\\n"\n')
        shutil.copy(image, work / "circle.png")
        (work / "images.txt").write_text(listing + "\n")
        (work / "network.prototxt").write_text(
            requests.get(f"{server.url}/models/networks/caffe/lenet", headers=server.headers, timeout=SHORT_S).text
        )
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "CURL_HOME": str(work),
            "HOME": str(work),
            "DIGITS": server.url,
            "TOKEN": server.tokens["ann"],
            "BOB_TOKEN": server.tokens["bob"],
            "PASSWORD": password_of("ann"),
            "DATA": str(data),
            "IMAGES": str(images),
            "IMAGE_PATH": str(image),
            "DATASET_ID": dataset_id,
            "MODEL_ID": model_id,
            "RUN_ONE": one["results_id"],
            "RUN_MANY": many["results_id"],
            "RUN_TOPN": top["results_id"],
            "OLD_CONFUSION": old_confusion,
            "SPARE_DATASET_ID": spare_ids[0],
            "OTHER_SPARE_ID": spare_ids[1],
        }
        yield server, work, env
    finally:
        server.stop()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed (apt-get install curl; `make test` installs it when run as root)")
    yield from build_world(tmp_path_factory.mktemp("api-docs"))


def _aborted_model(server, env) -> str:
    """A model stopped before it finished, for the resume example (one epoch left to train)."""
    job_id = _model(server, env["DATASET_ID"], model_name="to resume", train_epochs="1")
    _post(server, f"/models/{job_id}/abort")
    assert server.wait_status(job_id, timeout=LONG_S)["status"] == "Aborted"
    return job_id


def _sweep_group(server, env) -> str:
    """The group of a sweep made by an earlier example, or of one made here."""
    index = requests.get(f"{server.url}/index/json", headers=server.headers, timeout=SHORT_S).json()
    for model in index["models"]:
        job = requests.get(f"{server.url}/jobs/{model['id']}/json", headers=server.headers, timeout=SHORT_S).json()
        if job["extra"].get("sweep_group"):
            return job["extra"]["sweep_group"]
    form = model_form(env["DATASET_ID"], model_name="sweep", train_epochs="1", learning_rate="[0.01, 0.02]")
    return _post(server, "/models/images/classification/json", form)["jobs"][0]["sweep_group"]


def _caffe_lmdb(server, env) -> str:
    """$DATA/caffe/train_lmdb, an LMDB as Caffe's convert_imageset writes it, and labels.txt beside it."""
    folder = Path(env["DATA"]) / "caffe"
    folder.mkdir(exist_ok=True)
    (folder / "labels.txt").write_text("circle\nsquare\ntriangle\n")
    return convert_imageset(folder / "train_lmdb", shape_images(9, size=(24, 24), gray=True))


def _generic_dataset(server, env) -> str:
    """A finished generic classification dataset: two blobs of 4 features (x0..x3) in $DATA/blobs.csv."""
    x, names = blobs(80, features=4)
    path = write_csv(Path(env["DATA"]) / "blobs.csv", x, names, target="side")
    job_id = _post(server, "/datasets/generic/json", {"dataset_name": "blobs", "train_path": path, "val_percent": "20"})
    assert server.wait_status(job_id["id"], timeout=LONG_S)["status"] == "Done", server.log()[-3000:]
    return job_id["id"]


def _generic_model(server, env) -> str:
    """The MLP trained on $GENERIC_DATASET_ID (3 epochs)."""
    if "GENERIC_DATASET_ID" not in env:
        env["GENERIC_DATASET_ID"] = _generic_dataset(server, env)
    form = {"dataset": env["GENERIC_DATASET_ID"], "model_name": "mlp on blobs", "train_epochs": "3"}
    job_id = _post(server, "/models/generic/json", {**form, "solver_type": "ADAM", "learning_rate": "0.01"})["id"]
    assert server.wait_status(job_id, timeout=LONG_S)["status"] == "Done", server.log()[-3000:]
    return job_id


def _lr_finder(server, env) -> str:
    """A finished LR finder, started by bob (ann's examples start and replace their own)."""
    r = requests.post(
        server.url + "/models/lr_finder/json",
        data=model_form(env["DATASET_ID"], model_name=None, batch_size="4"),
        headers={"Authorization": f"Bearer {server.tokens['bob']}"},
        timeout=LONG_S,
    )
    assert r.status_code == 202, r.text[:2000]
    assert server.wait_status(r.json()["id"], timeout=LONG_S)["status"] == "Done", server.log()[-3000:]
    return r.json()["id"]


# Jobs made when the first example that names them runs: a model training long enough for the abort example
# (made earlier, it would take a CPU from every example before it), one to resume, a sweep's group, an LMDB to import.
LAZY = {
    "RUNNING_ID": lambda server, env: _model(server, env["DATASET_ID"], model_name="to abort", train_epochs="10000"),
    "ABORTED_ID": _aborted_model,
    "SWEEP_GROUP": _sweep_group,
    "CAFFE_LMDB": _caffe_lmdb,
    "EXT_RUN_ID": lambda server, env: _post(server, "/runs/json", {"name": "external run", "epochs": "3"})["id"],
    "GENERIC_DATASET_ID": _generic_dataset,
    "GENERIC_MODEL_ID": _generic_model,
    "LR_FINDER_ID": _lr_finder,
}


def run_example(ex: Example, work: Path, env: dict[str, str]) -> tuple[list[int], str]:
    done = subprocess.run(
        ["bash", "-e", "-u", "-c", ex.code],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=LONG_S,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"the example under {ex.heading!r} failed ({done.returncode}):\n{ex.code}\n{output}"
    return [int(s) for s in STATUS_LINE.findall(done.stdout)], output


@pytest.mark.slow
def test_examples_answer_as_documented(world):
    server, work, env = world
    found = examples(API_MD.read_text())
    skipped = [ex for ex in found if not ex.runs]
    ran = 0
    failures = []
    for ex in found:
        if not ex.runs:
            continue
        for name, make in LAZY.items():
            if "$" + name in ex.code and name not in env:
                env[name] = make(server, env)
        statuses, output = run_example(ex, work, env)
        ran += 1
        if statuses != ex.expected:
            failures.append(f"under {ex.heading!r}: stated {ex.expected}, got {statuses}\n{ex.code}\n{output[-3000:]}")
    print(f"\n{ran} examples run, {len(skipped)} marked not-run")
    assert not failures, "\n\n".join(failures) + "\n\nserver log:\n" + server.log()[-3000:]
    # The examples that change things did: the deleted datasets are gone (the one in use is not), the running
    # model was stopped, the aborted one trains again.
    status = requests.get(f"{server.url}/index/json", headers=server.headers, timeout=SHORT_S).json()
    ids = {j["id"] for j in status["datasets"] + status["models"]}
    assert env["SPARE_DATASET_ID"] not in ids and env["OTHER_SPARE_ID"] not in ids
    assert env["MODEL_ID"] in ids and env["DATASET_ID"] in ids
    assert server.wait_status(env["RUNNING_ID"], timeout=LONG_S)["status"] == "Aborted"
    assert server.status(env["ABORTED_ID"])["status"] != "Aborted"
