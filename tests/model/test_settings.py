"""Training settings are kept once, in the train task's arguments (schema_version 2); job folders written by the
code before (schema_version 1, settings also in extra) load, on the real server too."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import requests

from digits.job import SCHEMA_VERSION, Job
from digits.model.settings import TrainSettings, model_settings
from tests.support.live import LiveServer
from tests.support.waiting import SHORT_S

SCHEMA1 = Path(__file__).resolve().parents[1] / "fixtures" / "schema1"  # written by the code of 2026-11-29
DATASET, MODEL = "20261129-160325-699e", "20261129-160329-e4e7"


def v1_model() -> dict:
    return json.loads((SCHEMA1 / MODEL / "job.json").read_text())


def test_a_schema_1_model_keeps_its_settings_once():
    old = v1_model()
    assert old["schema_version"] == 1 and "settings" in old["extra"]
    job = Job.from_dict(old)
    args = job.task("train").args
    assert {k: v for k, v in old["extra"]["settings"].items()} == {k: args[k] for k in old["extra"]["settings"]}
    assert "dataset_dir" not in args and job.extra["dataset_id"] == DATASET
    assert not {"settings", "framework", "network_file"} & set(job.extra)
    settings = model_settings(job)
    assert (settings.framework, settings.network_file, settings.epochs) == ("torch", "network.py", 50)
    saved = job.to_dict()
    assert saved["schema_version"] == SCHEMA_VERSION == 2
    assert Job.from_dict(saved).to_dict() == saved


def test_settings_fill_in_their_defaults_and_ignore_what_they_do_not_know():
    s = TrainSettings.from_dict({"framework": "torch", "epochs": 3, "dataset_dir": "../x", "unknown": 1})
    assert (s.framework, s.network_file, s.epochs, s.learning_rate) == ("torch", "network.py", 3, 0.01)
    assert TrainSettings().network_file == "network.prototxt"


def test_a_job_from_a_newer_server_is_listed_as_unreadable(tmp_path):
    from digits.store import JobStore

    folder = tmp_path / "jobs" / MODEL
    shutil.copytree(SCHEMA1 / MODEL, folder)
    data = v1_model()
    data["schema_version"] = SCHEMA_VERSION + 1
    (folder / "job.json").write_text(json.dumps(data))
    store = JobStore(str(tmp_path / "jobs"))
    assert store.load_all() == []
    with pytest.raises(ValueError, match="schema_version"):
        Job.from_dict(data)


def test_the_real_server_reads_job_folders_of_schema_1(tmp_path):
    jobs = tmp_path / "jobs"
    shutil.copytree(SCHEMA1, jobs)
    server = LiveServer(jobs).start()
    try:
        model = requests.get(f"{server.url}/models/{MODEL}/json", timeout=SHORT_S).json()
        # It was training when that server stopped: now Aborted, with the settings it trained with.
        assert model["status"] == "Aborted" and model["framework"] == "torch"
        assert model["solver"]["epochs"] == 50 and model["dataset_id"] == DATASET
        listing = requests.get(f"{server.url}/index/json", timeout=SHORT_S).json()
        assert [m["id"] for m in listing["models"]] == [MODEL] and [d["id"] for d in listing["datasets"]] == [DATASET]
        # Saved again in the new shape (the restart recorded the abort).
        on_disk = json.loads((jobs / MODEL / "job.json").read_text())
        assert on_disk["schema_version"] == 2 and "settings" not in on_disk["extra"]
        assert on_disk["tasks"][0]["args"]["epochs"] == 50
    finally:
        server.stop()
