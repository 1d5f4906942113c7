import json
import os
import re

from digits.job import Job, Task, is_job_id, new_job_id
from digits.status import Status
from digits.store import JobStore, write_json_atomic


def make_job(**kw) -> Job:
    job = Job(
        id=new_job_id(),
        type="fake-dataset",
        category="dataset",
        name="cats",
        owner="ann",
        form={"resize_width": 28},
        tasks=[Task("parse", "fake", args={"n": 1})],
        **kw,
    )
    return job


def test_ids_sort_by_time_and_are_checked():
    a = new_job_id(1_700_000_000)
    b = new_job_id(1_700_000_001)
    assert re.match(r"^\d{8}-\d{6}-[0-9a-f]{4}$", a) and a[:15] < b[:15]
    assert is_job_id(a) and not is_job_id("../../etc") and not is_job_id(a + "/x")


def test_job_round_trips_through_job_json(tmp_path):
    store = JobStore(str(tmp_path))
    job = make_job()
    job.history.set(Status.WAITING)
    job.history.set(Status.ERROR, "it broke")
    store.add(job)
    with open(tmp_path / job.id / "job.json") as fh:
        data = json.load(fh)
    assert data["schema_version"] == 1 and data["status"] == "Error"
    assert data["history"][-1]["message"] == "it broke"
    again = JobStore(str(tmp_path))
    (loaded,) = again.load_all()
    assert loaded.to_dict() == job.to_dict()


def test_nothing_absolute_is_stored(tmp_path):
    store = JobStore(str(tmp_path))
    job = make_job()
    store.add(job)
    assert str(tmp_path) not in (tmp_path / job.id / "job.json").read_text()


def test_corrupt_job_json_is_skipped_and_kept(tmp_path, caplog):
    store = JobStore(str(tmp_path))
    good = make_job()
    store.add(good)
    bad_id = new_job_id()
    while bad_id == good.id:
        bad_id = new_job_id()
    os.makedirs(tmp_path / bad_id)
    (tmp_path / bad_id / "job.json").write_text('{"schema_version": 1, "id": ')
    wrong_version = make_job()
    store.add(wrong_version)
    data = json.loads((tmp_path / wrong_version.id / "job.json").read_text())
    data["schema_version"] = 99
    (tmp_path / wrong_version.id / "job.json").write_text(json.dumps(data))

    loaded = JobStore(str(tmp_path)).load_all()
    assert [j.id for j in loaded] == [good.id]
    assert (tmp_path / bad_id / "job.json").read_text() == '{"schema_version": 1, "id": '
    assert bad_id in caplog.text and wrong_version.id in caplog.text


def test_atomic_write_leaves_no_temp_files_and_keeps_old_file_on_failure(tmp_path):
    path = tmp_path / "x.json"
    write_json_atomic(str(path), {"a": 1})
    try:
        write_json_atomic(str(path), {"a": object()})
    except TypeError:
        pass
    assert json.loads(path.read_text()) == {"a": 1}
    assert os.listdir(tmp_path) == ["x.json"]
