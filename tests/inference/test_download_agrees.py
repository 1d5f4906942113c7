"""The accuracy a person sees in the app is the accuracy they get outside it: the downloaded predict.py gives the
server's own predictions (same labels, probabilities as far as the server's 2 decimals tell) on the val images."""

import io
import json
import subprocess
import sys
import tarfile

import pytest

from tests.inference.conftest import FRAMEWORKS
from tests.model.test_download import standalone_env

pytestmark = pytest.mark.slow  # every test uses LeNet trained twice by the `served` fixture


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_downloaded_predict_py_gives_the_servers_predictions(served, framework, tmp_path):
    job_id = served.models[framework]
    archive = served.client.get(f"/models/{job_id}/download")
    assert archive.status_code == 200, archive.get_data(as_text=True)[:300]
    with tarfile.open(fileobj=io.BytesIO(archive.data), mode="r:gz") as tf:
        top = tf.getnames()[0].split("/")[0]
        tf.extractall(tmp_path, filter="data")
    lines = served.val_list().splitlines()[:100]
    paths = [line.rsplit(" ", 1)[0] for line in lines]

    server = served.classify_many(framework, "\n".join(lines) + "\n").get_json()["classifications"]
    run = subprocess.run(
        [sys.executable, "-S", "predict.py", "--json", *paths],
        cwd=tmp_path / top,
        env=standalone_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    for result in json.loads(run.stdout):
        theirs = server[result["path"]]
        ours = result["predictions"][: len(theirs)]
        assert [label for label, _ in ours] == [label for label, _ in theirs], result["path"]
        for (_, probability), (_, percent) in zip(ours, theirs, strict=True):
            # the server answers percentages with DIGITS' 2 decimals: within 0.005 points
            assert probability == pytest.approx(percent / 100, abs=5e-5 + 1e-6), result["path"]
