"""A team server (--auth password): accounts, ownership, tokens, CSRF, safe file access, the audit log."""

import json
import os
import re
import stat

import pytest
import socketio

from tests.support import JSON
from tests.support.accounts import add_accounts, users_cli
from tests.support.apps import sign_in
from tests.support.commands import run_module
from tests.support.fakejobs import run_fake_job
from tests.support.live import free_port, team_server
from tests.support.waiting import SHORT_S

BROWSER = {"Accept": "text/html", "Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"}


@pytest.fixture
def team(make_app):
    """An in-process team server (--auth password): alice, bob, and root, an admin."""
    app = make_app(auth="password")
    add_accounts(app.extensions["digits"].accounts, "alice", "bob", "root", admins=["root"])
    return app


def finished_job(app, owner="alice"):
    return run_fake_job(app.extensions["digits"], owner=owner)


def test_anonymous_and_wrong_password_are_refused(team):
    finished_job(team)
    anon = team.test_client()
    probe = anon.get("/index/json").get_json()  # a version check and readiness probe, with no jobs in it
    assert probe["signed_in"] is False and probe["datasets"] == [] and probe["version"]
    assert anon.get("/jobs/20000101-000000-dead/status").status_code == 401
    r = anon.get("/", headers={"Accept": "text/html"})
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    r = anon.post("/login", data={"username": "alice", "password": "wrong"}, headers=JSON)
    assert r.status_code == 401
    assert anon.get("/index/json").get_json()["datasets"] == []
    r = anon.post("/login", data={"username": "nobody", "password": "whatever1"}, headers={"Accept": "text/html"})
    assert r.status_code == 400 and "Wrong username or password" in r.get_data(as_text=True)


def test_owners_and_admins_change_jobs_others_view_and_clone(team):
    job = finished_job(team, owner="alice")
    bob = sign_in(team, "bob")
    assert bob.get(f"/jobs/{job.id}/json").status_code == 200
    assert bob.get(f"/jobs/{job.id}/status").status_code == 200
    assert bob.delete(f"/jobs/{job.id}").status_code == 403
    assert bob.post(f"/jobs/{job.id}/edit", data={"name": "bob's"}).status_code == 403
    root = sign_in(team, "root")
    assert root.post(f"/jobs/{job.id}/edit", data={"notes": "checked by root"}).status_code == 200
    alice = sign_in(team, "alice")
    assert alice.delete(f"/jobs/{job.id}").status_code == 200


def test_a_bearer_token_works_for_scripts(team):
    token = team.extensions["digits"].accounts.new_token("bob")
    c = team.test_client()
    job = finished_job(team)
    assert len(c.get("/index/json", headers={"Authorization": f"Bearer {token}"}).get_json()["datasets"]) == 1
    assert c.get(f"/jobs/{job.id}/json", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert c.get(f"/jobs/{job.id}/json", headers={"Authorization": "Bearer not-a-token"}).status_code == 401


def test_a_browser_form_post_needs_its_csrf_token(team):
    job = finished_job(team, owner="alice")
    alice = sign_in(team, "alice")
    r = alice.post(f"/jobs/{job.id}/edit", data={"name": "x"}, headers=BROWSER)
    assert r.status_code == 400 and "CSRF" in r.get_data(as_text=True)
    page = alice.get(f"/jobs/{job.id}", headers={"Accept": "text/html"}).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = alice.post(f"/jobs/{job.id}/edit", data={"name": "renamed", "csrf_token": token}, headers=BROWSER)
    assert r.status_code == 302


@pytest.mark.parametrize(
    "path",
    [
        "/files/../../../../etc/passwd",
        "/files/..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/files/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/files/.secret_key",
        "/files/users.db",
        "/files/%2fetc%2fpasswd",
    ],
)
def test_files_stay_inside_job_folders(team, path):
    alice = sign_in(team, "alice")
    r = alice.get(path, follow_redirects=True)
    assert r.status_code in (400, 404) and b"root:" not in r.data


def test_files_of_a_job_are_served_and_links_out_are_not(team, tmp_path):
    job = finished_job(team)
    alice = sign_in(team, "alice")
    with alice.get(f"/files/{job.id}/step0.log") as served:  # a file sent as it is: closed with the response
        assert served.status_code == 200
    assert alice.get(f"/files/{job.id}/.hidden").status_code == 404
    job_dir = team.extensions["digits"].store.job_dir(job.id)
    os.symlink("/etc/passwd", os.path.join(job_dir, "passwd.txt"))
    assert alice.get(f"/files/{job.id}/passwd.txt").status_code == 404


def test_the_secret_key_is_kept_private_and_reused(tmp_path, make_app):
    jobs = tmp_path / "jobs"
    first = make_app(jobs)
    key = first.config["SECRET_KEY"]
    first.extensions["digits"].close()
    assert stat.S_IMODE(os.stat(jobs / ".secret_key").st_mode) == 0o600
    assert make_app(jobs).config["SECRET_KEY"] == key


def test_the_audit_log_records_who_did_what(team):
    job = finished_job(team)
    alice = sign_in(team, "alice")
    alice.post(f"/jobs/{job.id}/edit", data={"name": "renamed"})
    alice.delete(f"/jobs/{job.id}")
    team.test_client().post("/login", data={"username": "bob", "password": "nope"}, headers=JSON)
    with open(os.path.join(team.extensions["digits"].settings.jobs_path, "audit.log")) as fh:
        lines = [json.loads(x) for x in fh]
    actions = [(e["user"], e["action"], e.get("job_id")) for e in lines]
    assert ("alice", "edit", job.id) in actions and ("alice", "delete", job.id) in actions
    assert ("bob", "login_failed", None) in actions


@pytest.mark.slow  # a dozen commands, each a Python process hashing a password
def test_users_command_line(tmp_path):
    def users(*args, stdin=""):
        return users_cli(tmp_path, *args, stdin=stdin)

    assert users("add", "carol", "--admin", stdin="carol-password\n").returncode == 0
    assert users("add", "dave", stdin="short\n").returncode == 1
    assert users("add", "dave", stdin="dave-password\n").returncode == 0
    assert users("list").stdout.split("\n")[:2] == ["carol  admin  code", "dave"]  # an admin holds every permission
    assert users("grant", "dave", "code").returncode == 0
    assert users("list").stdout.split("\n")[:2] == ["carol  admin  code", "dave  code"]
    wrong = users("grant", "dave", "root")
    assert wrong.returncode == 1 and "known permissions: code" in wrong.stderr
    assert users("revoke", "dave", "code").returncode == 0
    assert users("list").stdout.split("\n")[1] == "dave"
    token = users("token", "dave").stdout.strip()
    assert len(token) > 30
    from digits.accounts import AccountStore

    store = AccountStore(str(tmp_path))
    assert store.user_for_token(token) == ("dave", False)
    # A new password ends the user's sessions and tokens: whoever held the old one is out.
    changed = users("passwd", "dave", stdin="new-dave-password\n")
    assert changed.returncode == 0 and "revoked 1 token" in changed.stdout
    assert store.verify("dave", "new-dave-password") == ("dave", False)
    assert store.user_for_token(token) is None
    token = users("token", "dave").stdout.strip()
    assert stat.S_IMODE(os.stat(tmp_path / "users.db").st_mode) == 0o600
    assert b"new-dave-password" not in (tmp_path / "users.db").read_bytes()
    assert users("remove", "dave").returncode == 0
    assert store.user_for_token(token) is None
    assert "no user" in users("remove", "dave").stderr


def test_serving_the_network_with_auth_none_is_refused(tmp_path):
    out = run_module("digits", "-p", free_port(), "--jobs-dir", tmp_path, "--host", "0.0.0.0", "--auth", "none")
    assert out.returncode != 0 and "--auth password" in out.stderr and "Traceback" not in out.stderr


def test_live_updates_need_a_signed_in_user_on_a_team_server(tmp_path):
    server = team_server(tmp_path / "jobs", "erin").start()
    try:
        anonymous = socketio.Client()
        with pytest.raises(socketio.exceptions.ConnectionError):
            anonymous.connect(server.url, namespaces=["/jobs"], wait_timeout=SHORT_S)
        signed = socketio.Client()
        signed.connect(server.url, namespaces=["/jobs"], headers=server.auth("erin"), wait_timeout=SHORT_S)
        assert signed.connected
        signed.disconnect()
    finally:
        server.stop()
