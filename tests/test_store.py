import json
import os
import re

import pytest

from digits.job import SCHEMA_VERSION, Job, Task, is_job_id, new_job_id
from digits.status import Status
from digits.store import JobStore, JobWriteError, write_json_atomic
from tests.support.disk import fill, small_disk


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
    assert data["schema_version"] == SCHEMA_VERSION and data["status"] == "Error"
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


def test_a_clashing_id_is_drawn_again_and_never_shares_a_folder(tmp_path, monkeypatch):
    import digits.store

    store = JobStore(str(tmp_path))
    theirs = make_job()
    store.add(theirs)
    (tmp_path / theirs.id / "upload.txt").write_text("theirs")
    ids = iter([theirs.id, theirs.id, "20240101-000000-0001"])
    monkeypatch.setattr(digits.store, "new_job_id", lambda: next(ids))  # the clock and the dice agree twice
    mine = store.reserve()
    assert mine == "20240101-000000-0001" and os.listdir(tmp_path / mine) == []
    store.release(mine)
    assert not os.path.exists(tmp_path / mine)
    store.release(theirs.id)  # not reserved by anyone: a release never removes another job's folder
    assert (tmp_path / theirs.id / "upload.txt").read_text() == "theirs"
    with pytest.raises(FileExistsError):
        store.add(Job(id=theirs.id, type="x", category="dataset", name="clash"))
    assert (
        store.get(theirs.id) is theirs and json.loads((tmp_path / theirs.id / "job.json").read_text())["name"] == "cats"
    )


def test_a_job_that_cannot_be_saved_is_not_kept(tmp_path):
    with small_disk(tmp_path / "disk") as disk:
        store = JobStore(disk)
        job_id = store.reserve()
        fill(disk)
        job = make_job(notes="x" * 100_000)
        job.id = job_id
        with pytest.raises(JobWriteError) as info:
            store.add(job)
        assert str(info.value).startswith(
            f"the disk holding the jobs folder is full: could not write {job_id}/job.json"
        )
        assert info.value.disk_full and store.get(job_id) is None and store.all() == []
        assert os.listdir(os.path.join(disk, job_id)) == []  # no half-written job.json, no temporary file
        store.release(job_id)
        assert sorted(os.listdir(disk)) == ["filler"]


def test_unreadable_jobs_are_listed_with_the_reason(tmp_path):
    store = JobStore(str(tmp_path))
    good = make_job()
    store.add(good)
    folders = {"20240101-000000-0001": '{"schema_version": 1, "id": ', "20240101-000000-0002": None}
    for folder, text in folders.items():
        os.makedirs(tmp_path / folder)
        if text is not None:
            (tmp_path / folder / "job.json").write_text(text)
    os.makedirs(tmp_path / "20240101-000000-0003")
    (tmp_path / "20240101-000000-0003" / "job.json").write_text(json.dumps({**good.to_dict(), "id": "x"}))
    again = JobStore(str(tmp_path))
    assert [j.id for j in again.load_all()] == [good.id]
    assert again.unreadable == {
        "20240101-000000-0001": "job.json is not valid JSON (Expecting value: line 1 column 29 (char 28))",
        "20240101-000000-0002": "it has no job.json",
        "20240101-000000-0003": "job.json is not a job this version reads (id 'x' is not a job id)",
    }
    assert (tmp_path / "20240101-000000-0001" / "job.json").read_text() == '{"schema_version": 1, "id": '
