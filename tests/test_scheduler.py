"""The scheduler with real worker processes (the fake worker speaks the real protocol)."""

import json
import os
import time
from pathlib import Path

from digits.status import Status
from tests.support.fakejobs import fake_job
from tests.support.waiting import record


def read_metrics(workspace, job):
    with open(os.path.join(workspace.store.job_dir(job.id), "metrics.jsonl")) as fh:
        return [json.loads(line) for line in fh]


def test_job_runs_its_tasks_in_order_and_records_everything(workspace, recorder):
    job = fake_job(tasks=[{"steps": 3, "garbage": True}, {"steps": 2}])
    workspace.add_job(job)
    assert recorder.wait_status(job.id) == "Done"
    assert [t.status for t in job.tasks] == [Status.DONE, Status.DONE]
    assert job.tasks[0].history.last_time(Status.DONE) <= job.tasks[1].history.first_time(Status.RUNNING)
    assert [c.status.value for c in job.history.changes] == ["Initialized", "Waiting", "Running", "Done"]
    metrics = read_metrics(workspace, job)
    assert [m["value"] for m in metrics if m["name"] == "loss"] == [1.0, 0.5, 1 / 3, 1.0, 0.5]
    assert sum(m["name"] == "learning_rate" for m in metrics) == 5
    assert job.tasks[1].snapshots == [{"epoch": 2, "path": "snapshot_epoch_2.pt"}]
    folder = Path(workspace.store.job_dir(job.id))
    log = (folder / "step0.log").read_text()
    assert "this is not protocol {" in log and "eval(1)" in log and "fake worker step0 starting" in log
    progress = [p["progress"] for e, p in recorder.events if e == "task_progress" and p["task"] == "step0"]
    assert progress == [1 / 3, 2 / 3, 1.0]
    on_disk = json.loads((folder / "job.json").read_text())
    assert on_disk["status"] == "Done" and on_disk["tasks"][1]["progress"] == 1.0


def test_crash_marks_the_job_error_with_the_last_log_lines(workspace, recorder, client):
    job = fake_job(tasks=[{"steps": 3, "crash_at": 1, "crash": "exit"}, {"steps": 1}])
    workspace.add_job(job)
    assert recorder.wait_status(job.id) == "Error"
    task = job.tasks[0]
    assert task.error["message"] == "worker exited with code 3"
    assert task.error["log_tail"][-1] == "stderr line 29" and len(task.error["log_tail"]) == 20
    assert job.tasks[1].status == Status.ABORTED
    status = client.get(f"/jobs/{job.id}/status").get_json()
    assert status["status"] == "Error" and "exited with code 3" in status["error"]
    assert "stderr line 29" in status["log_tail"]


def test_exception_in_worker_reports_message_and_traceback(workspace, recorder):
    job = fake_job(tasks=[{"steps": 2, "crash_at": 0, "crash": "raise"}])
    workspace.add_job(job)
    assert recorder.wait_status(job.id) == "Error"
    assert job.tasks[0].error["message"] == "RuntimeError: boom"
    assert "Traceback" in job.tasks[0].error["traceback"]


def test_expected_failure_is_reported_without_traceback(workspace, recorder):
    job = fake_job(tasks=[{"steps": 2, "crash_at": 0, "crash": "failed"}])
    workspace.add_job(job)
    assert recorder.wait_status(job.id) == "Error"
    assert job.tasks[0].error["message"] == "the fake task failed on purpose"
    assert job.tasks[0].error["traceback"] is None


def test_worker_killed_by_the_os(workspace, recorder):
    job = fake_job(tasks=[{"steps": 2, "crash_at": 0, "crash": "kill"}])
    workspace.add_job(job)
    assert recorder.wait_status(job.id) == "Error"
    assert "killed by SIGKILL" in job.tasks[0].error["message"]


def test_abort_stops_a_running_task_within_the_grace_period(workspace, recorder):
    job = fake_job(tasks=[{"steps": 500, "delay": 0.05}, {"steps": 1}])
    workspace.add_job(job)
    recorder.wait_for(lambda e, p: e == "task_progress" and p["job_id"] == job.id)
    assert workspace.scheduler.abort(job)
    assert recorder.wait_status(job.id) == "Aborted"
    assert job.tasks[0].exit_code == 0  # it ended by itself on SIGTERM, not by the SIGKILL after the grace period
    assert job.tasks[0].snapshots  # the worker saved its state on SIGTERM
    assert [t.status for t in job.tasks] == [Status.ABORTED, Status.ABORTED]


def test_abort_kills_a_worker_that_ignores_sigterm_after_the_grace_period(make_app):
    workspace = make_app(abort_grace_s=0.5).extensions["digits"]
    rec = record(workspace)
    job = fake_job(tasks=[{"steps": 500, "delay": 0.05, "ignore_term": True}])
    workspace.add_job(job)
    rec.wait_for(lambda e, p: e == "task_progress")
    t0 = time.monotonic()
    workspace.scheduler.abort(job)
    assert rec.wait_status(job.id) == "Aborted"
    assert time.monotonic() - t0 >= 0.5  # not before the grace period: SIGKILL waits for it
    assert job.tasks[0].exit_code == -9


def test_abort_of_a_waiting_job(workspace, recorder):
    gate = fake_job(tasks=[{"steps": 500, "delay": 0.05}])
    waiting = fake_job(depends_on=[gate.id])
    workspace.add_job(gate)
    workspace.add_job(waiting)
    assert waiting.status == Status.WAITING
    workspace.scheduler.abort(waiting)
    assert waiting.status == Status.ABORTED and waiting.tasks[0].status == Status.ABORTED
    workspace.scheduler.abort(gate)
    recorder.wait_status(gate.id)


def test_a_job_waits_for_the_job_it_depends_on(workspace, recorder):
    dataset = fake_job(tasks=[{"steps": 3, "delay": 0.05}])
    model = fake_job(category="model", depends_on=[dataset.id])
    workspace.add_job(dataset)
    workspace.add_job(model)
    assert recorder.wait_status(model.id) == "Done"
    assert dataset.history.last_time(Status.DONE) <= model.history.first_time(Status.RUNNING)


def test_a_job_whose_dependency_fails_fails_with_a_reason(workspace, recorder):
    dataset = fake_job(tasks=[{"steps": 2, "crash_at": 0}])
    model = fake_job(category="model", depends_on=[dataset.id])
    workspace.add_job(dataset)
    workspace.add_job(model)
    assert recorder.wait_status(model.id) == "Error"
    assert f"needs job fake ({dataset.id}), which ended Error" in model.tasks[0].error["message"]


def test_fifo_within_a_pool(make_app):
    workspace = make_app(cpu_slots=1).extensions["digits"]
    rec = record(workspace)
    jobs = [fake_job(name=f"j{i}", tasks=[{"steps": 2, "delay": 0.02}]) for i in range(3)]
    for job in jobs:
        workspace.add_job(job)
    for job in jobs:
        assert rec.wait_status(job.id) == "Done"
    starts = [j.history.first_time(Status.RUNNING) for j in jobs]
    ends = [j.history.last_time(Status.DONE) for j in jobs]
    assert starts == sorted(starts)
    assert ends[0] <= starts[1] and ends[1] <= starts[2]  # one slot: never two at once


def test_task_that_needs_more_than_the_server_has_fails_clearly(workspace, recorder):
    job = fake_job(tasks=[{"resources": {"gpu": 1}}])
    workspace.add_job(job)
    assert recorder.wait_status(job.id) == "Error"
    assert "needs 1 GPUs, the server has 0" in job.tasks[0].error["message"]


def test_unknown_task_kind_fails_clearly(workspace, recorder):
    job = fake_job(tasks=[{"kind": "does-not-exist"}])
    workspace.add_job(job)
    assert recorder.wait_status(job.id) == "Error"
    assert "no worker for task kind 'does-not-exist'" in job.tasks[0].error["message"]


def test_restart_reloads_every_job_with_its_history(tmp_path, make_app):
    jobs_dir = tmp_path / "jobs"
    workspace = make_app(jobs_dir).extensions["digits"]
    rec = record(workspace)
    done = fake_job(name="done")
    failed = fake_job(name="failed", tasks=[{"crash_at": 0}])
    workspace.add_job(done)
    workspace.add_job(failed)
    rec.wait_status(done.id)
    rec.wait_status(failed.id)
    workspace.close()  # nothing running: a clean stop

    store = make_app(jobs_dir).extensions["digits"].store
    assert {j.id: j.status.value for j in store.all()} == {done.id: "Done", failed.id: "Error"}
    assert store.get(done.id).history.to_list() == done.history.to_list()
    assert store.get(failed.id).tasks[0].error == failed.tasks[0].error
