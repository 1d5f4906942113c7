"""Workers are confined (digits/sandbox.py): what a hostile member's code could try from a worker of a real team
server, and the policies the server writes."""

from __future__ import annotations

import json
import os

import pytest

from digits import landlock, sandbox
from tests.support.live import team_server

needs_landlock = pytest.mark.skipif(not sandbox.landlock_abi(), reason="this kernel has no Landlock")


def test_a_grant_around_the_jobs_folder_leaves_it_out(tmp_path):
    (tmp_path / "code" / "pkg").mkdir(parents=True)
    (tmp_path / "code" / "jobs" / "20260101-000000-abcd").mkdir(parents=True)
    (tmp_path / "code" / "README").write_text("x")
    rules = dict(sandbox.grants_excluding(str(tmp_path / "code"), landlock.READ, [str(tmp_path / "code" / "jobs")]))
    assert set(rules) == {str(tmp_path / "code" / "pkg"), str(tmp_path / "code" / "README")}
    assert (
        sandbox.grants_excluding(str(tmp_path / "code" / "jobs" / "x"), landlock.READ, [str(tmp_path / "code")]) == []
    )


def test_a_policy_writes_only_inside_job_folders(tmp_path):
    jobs = tmp_path / "jobs"
    job = jobs / "20260101-000000-abcd"
    (job / "results").mkdir(parents=True)
    confiner = sandbox.Confiner(str(jobs))
    policy = confiner.policy(write=[str(job / "results")], read_jobs=[str(job)])
    rules = {path: rights for path, rights in policy["rules"]}
    assert rules[str(job / "results")] & landlock.WRITE_FILE and not rules[str(job)] & landlock.WRITE_FILE
    assert not any(r & landlock.MAKE_SYM for r in rules.values())  # no links a server read could follow out
    assert str(jobs) not in rules
    for bad in ([str(jobs)], [str(tmp_path)], [str(jobs / ".." / "elsewhere")]):
        with pytest.raises(sandbox.ConfinementError):
            confiner.policy(write=bad)
    with pytest.raises(sandbox.ConfinementError):
        confiner.policy(read_jobs=[str(jobs / "not-a-job")])


def test_a_worker_environment_keeps_nothing_of_the_server(tmp_path):
    confiner = sandbox.Confiner(str(tmp_path))
    env = confiner.environment(
        {"DIGITS_TASK": "x"},
        "/tmp/private",
        base={"PATH": "/usr/bin", "DIGITS_AUTH": "password", "AWS_SECRET_ACCESS_KEY": "k", "LC_ALL": "C"},
    )
    assert env["PATH"] == "/usr/bin" and env["LC_ALL"] == "C" and env["DIGITS_TASK"] == "x"
    assert "DIGITS_AUTH" not in env and "AWS_SECRET_ACCESS_KEY" not in env
    assert env["HOME"] == env["TMPDIR"] == "/tmp/private"


@pytest.fixture
def team(tmp_path):
    server = team_server(tmp_path / "jobs", "alice").start()
    yield server
    server.stop()


@needs_landlock
def test_a_worker_reaches_no_secret_no_other_job_and_not_the_server(team):
    team.sign_in("alice")  # the audit log exists once someone has signed in
    other = team.create_job(name="other")  # another member's job
    team.wait_status(other)
    probe = team.create_job(name="probe", tasks=[{"kind": "probe", "other_job": other, "port": team.port}])
    js = team.wait_status(probe)
    assert js["status"] == "Done", js
    found = json.loads((team.jobs_dir / probe / "probe.json").read_text())
    for action in (
        "secret_key",
        "users_db",
        "audit_log",
        "list_jobs",
        "other_job",
        "write_jobs",
        "symlink",
        "connect",
        "signal_server",
        "server_environ",
        "shadow",
    ):
        assert found[action].startswith("denied"), (action, found[action])
    assert found["own_job"].startswith("ALLOWED") and found["write_own"].startswith("ALLOWED")
    assert found["tmp_writable"].startswith("ALLOWED")
    assert int(found["capabilities"], 16) == 0
    assert not [
        name
        for name in found["environment"]
        if name.startswith("DIGITS_") and name not in ("DIGITS_TASK", "DIGITS_SANDBOX")
    ]
    assert found["home"] != os.environ.get("HOME") and not os.path.exists(found["home"])  # removed with the task
    assert not (team.jobs_dir / "planted").exists()
    # Of the snapshots it reported, only the file inside its own folder is recorded.
    recorded = json.loads((team.jobs_dir / probe / "job.json").read_text())["tasks"][0]["snapshots"]
    assert [s["path"] for s in recorded] == ["written.txt"], recorded
    assert "confined with Landlock" in (team.jobs_dir / probe / "step0.log").read_text()
