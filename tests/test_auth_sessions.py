"""Sessions that end, API tokens that can be listed, revoked and expire, live connections that close, throttled
sign-in, permissions, and users.db files from an older DIGITS, against the real server where it matters."""

from __future__ import annotations

import json
import sqlite3
import threading
import time

import pytest
import requests
import socketio
from requests.adapters import HTTPAdapter

from digits.accounts import AccountError, AccountStore
from digits.views.auth import has_permission
from tests.support import JSON
from tests.support.accounts import add_accounts, bearer, password_of
from tests.support.accounts import users_cli as users
from tests.support.apps import sign_in, with_settings
from tests.support.live import LiveServer, team_server
from tests.support.waiting import SHORT_S, wait_until


def audit_lines(jobs) -> list[dict]:
    with open(jobs / "audit.log") as fh:
        return [json.loads(line) for line in fh]


class Team:
    """A real --auth password server with a member (alice), an admin (root) and one finished job of alice's."""

    def __init__(self, tmp_path, env: dict[str, str] | None = None):
        self.jobs = tmp_path / "jobs"
        self.server = team_server(self.jobs, "root", "alice", admins=["root"], env=env).start()
        self.url = self.server.url
        self.job_id = self.server.create_job(owner="alice")
        self.server.wait_status(self.job_id)

    def sign_in(self, name: str, password: str | None = None) -> requests.Session:
        return self.server.sign_in(name, password)

    def status_with_cookie(self, cookie: str) -> int:
        """What a request presenting this session cookie gets (the cookie sent as is, whatever its expiry)."""
        r = requests.get(f"{self.url}/jobs/{self.job_id}/json", cookies={"session": cookie}, timeout=SHORT_S)
        return r.status_code

    def status_with_token(self, token: str) -> requests.Response:
        return requests.get(f"{self.url}/jobs/{self.job_id}/json", headers=bearer(token), timeout=SHORT_S)


@pytest.fixture
def team(tmp_path):
    t = Team(tmp_path)
    yield t
    t.server.stop()


def test_signing_out_ends_the_cookie_on_the_server(team):
    s = team.sign_in("alice")
    kept = s.cookies["session"]
    assert team.status_with_cookie(kept) == 200
    r = s.post(team.url + "/logout", headers=JSON)  # a script's sign-out, cookie only
    assert r.status_code == 200 and r.json() == {"username": "alice", "signed_out": True}
    assert team.status_with_cookie(kept) == 401  # a copy kept from before sign-out is worthless
    assert ("alice", "logout") in [(e["user"], e["action"]) for e in audit_lines(team.jobs)]


def test_logout_is_post_only(team):
    s = team.sign_in("alice")
    page = s.get(team.url + "/logout", headers={"Accept": "text/html"})
    assert page.status_code == 200 and 'method="post"' in page.text and "Sign out" in page.text
    assert team.status_with_cookie(s.cookies["session"]) == 200  # a link (or an <img>) cannot sign anyone out


def test_a_new_password_ends_sessions_and_tokens(team):
    kept = team.sign_in("alice").cookies["session"]
    token = users(team.jobs, "token", "alice").stdout.strip()
    assert team.status_with_token(token).status_code == 200
    assert users(team.jobs, "passwd", "alice", stdin="another-password\n").returncode == 0
    assert team.status_with_cookie(kept) == 401
    r = team.status_with_token(token)
    assert r.status_code == 401 and "revoked or expired" in r.json()["error"]["message"]
    team.sign_in("alice", "another-password")


def test_removing_and_adding_a_name_again_revives_nothing(team):
    kept = team.sign_in("alice").cookies["session"]
    assert users(team.jobs, "remove", "alice").returncode == 0
    assert team.status_with_cookie(kept) == 401
    assert users(team.jobs, "add", "alice", stdin=password_of("alice") + "\n").returncode == 0
    assert team.status_with_cookie(kept) == 401
    assert team.status_with_cookie(team.sign_in("alice").cookies["session"]) == 200


@pytest.mark.slow
def test_sessions_expire_after_session_hours(tmp_path):
    # 18 s: long enough for a loaded machine to sign in and use the cookie once before it expires.
    t = Team(tmp_path, env={"DIGITS_SESSION_HOURS": "0.005"})
    try:
        s = t.sign_in("alice")
        kept = s.cookies["session"]
        cookie = next(c for c in s.cookies if c.name == "session")
        assert cookie.expires is not None and cookie.expires - time.time() < 60  # the browser forgets it too
        assert t.status_with_cookie(kept) == 200
        # Sent as is after its time, the server itself refuses it.
        wait_until(lambda: t.status_with_cookie(kept) == 401, what="the session's expiry", interval=0.5)
    finally:
        t.server.stop()


def test_tokens_are_listed_revoked_and_expire(team):
    ci = users(team.jobs, "token", "alice", "--label", "ci builds").stdout.strip()
    users(team.jobs, "token", "alice", "--label", "laptop", "--expires-days", "30")
    assert team.status_with_token(ci).status_code == 200
    listing = users(team.jobs, "tokens", "alice").stdout
    assert "ci builds" in listing and "laptop" in listing and ci not in listing
    ci_line = next(line for line in listing.splitlines() if "ci builds" in line)
    assert "never" in ci_line and not ci_line.rstrip().endswith("never")  # no expiry; used just now
    ci_id = ci_line.split()[0]
    assert users(team.jobs, "revoke-token", "alice", ci_id).returncode == 0
    assert team.status_with_token(ci).status_code == 401
    assert "no token 999" in users(team.jobs, "revoke-token", "alice", "999").stderr
    short = users(team.jobs, "token", "alice", "--expires-days", "0.000001").stdout.strip()  # 86 ms
    wait_until(lambda: team.status_with_token(short).status_code == 401, what="the token's expiry")
    assert "(expired)" in users(team.jobs, "tokens", "alice").stdout
    actions = [e["action"] for e in audit_lines(team.jobs)]
    assert "token_created" in actions and "token_revoked" in actions
    refused = users(team.jobs, "token", "alice", "--expires-days", "0")
    assert refused.returncode == 1 and "--expires-days" in refused.stderr


def _live_client(team, **connect) -> tuple[socketio.Client, threading.Event]:
    client = socketio.Client(reconnection=False)
    closed = threading.Event()
    client.on("disconnect", lambda *args: closed.set(), namespace="/jobs")
    client.connect(team.url, namespaces=["/jobs"], wait_timeout=SHORT_S, **connect)
    assert client.connected
    return client, closed


def test_live_connections_close_when_their_sign_in_ends(team):
    s = team.sign_in("alice")
    by_cookie, cookie_closed = _live_client(team, headers={"Cookie": f"session={s.cookies['session']}"})
    other = team.sign_in("root")
    stays, stays_closed = _live_client(team, headers={"Cookie": f"session={other.cookies['session']}"})
    token = users(team.jobs, "token", "alice").stdout.strip()
    by_token, token_closed = _live_client(team, headers={"Authorization": f"Bearer {token}"})
    try:
        s.post(team.url + "/logout", headers=JSON)
        assert cookie_closed.wait(SHORT_S), "the signed-out browser's live connection stayed open"
        token_id = users(team.jobs, "tokens", "alice").stdout.splitlines()[-1].split()[0]
        assert users(team.jobs, "revoke-token", "alice", token_id).returncode == 0  # another process
        assert token_closed.wait(SHORT_S), "the revoked token's live connection stayed open"
        assert not stays_closed.is_set() and stays.connected
    finally:
        for c in (by_cookie, stays, by_token):
            c.disconnect()


def test_a_removed_users_live_connection_closes(team):
    s = team.sign_in("alice")
    client, closed = _live_client(team, headers={"Cookie": f"session={s.cookies['session']}"})
    try:
        assert users(team.jobs, "remove", "alice").returncode == 0
        assert closed.wait(SHORT_S), "the removed user's live connection stayed open"
    finally:
        client.disconnect()


class FromAddress(HTTPAdapter):
    """Connects from a given loopback address (127.0.0.0/8 is all this machine), to act as another client."""

    def __init__(self, address: str):
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def client_at(address: str) -> requests.Session:
    s = requests.Session()
    s.mount("http://", FromAddress(address))
    return s


def test_sign_in_is_throttled_per_name_and_per_address(tmp_path):
    t = Team(tmp_path, env={"DIGITS_LOGIN_MAX_FAILURES": "3", "DIGITS_LOGIN_WINDOW_S": "600"})
    try:

        def attempt(client, name, password="wrong-password", accept=JSON):
            return client.post(t.url + "/login", data={"username": name, "password": password}, headers=accept)

        a = client_at("127.0.0.2")
        assert [attempt(a, "alice").status_code for _ in range(3)] == [401, 401, 401]
        r = attempt(a, "alice", password_of("alice"))  # even the right password waits now
        assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
        assert r.json()["error"]["type"] == "too_many_requests" and "try again in" in r.json()["error"]["message"]
        page = attempt(client_at("127.0.0.3"), "alice", accept={"Accept": "text/html"})  # per name: any address
        assert page.status_code == 429 and "Retry-After" in page.headers and "try again in" in page.text
        assert attempt(client_at("127.0.0.3"), "root", password_of("root")).status_code == 200  # others sign in

        c = client_at("127.0.0.4")  # per address: guessing at many names
        assert [attempt(c, f"guess{i}").status_code for i in range(3)] == [401, 401, 401]
        assert attempt(c, "root", password_of("root")).status_code == 429
        assert attempt(client_at("127.0.0.5"), "root", password_of("root")).status_code == 200

        d = client_at("127.0.0.6")  # a right password clears the name's failures
        assert [attempt(d, "root").status_code for _ in range(2)] == [401, 401]
        assert attempt(d, "root", password_of("root")).status_code == 200
        assert attempt(client_at("127.0.0.7"), "root").status_code == 401
        throttled = [e for e in audit_lines(t.jobs) if e["action"] == "login_throttled"]
        assert {e["user"] for e in throttled} == {"alice", "root"}
        assert len([e for e in throttled if e["user"] == "alice"]) == 1  # one line per lockout, not per attempt
    finally:
        t.server.stop()


# ---- in-process: the store, the migration, permissions, the one query per request --------------------------------
OLD_SCHEMA = """
CREATE TABLE users (id INTEGER NOT NULL, username VARCHAR(64) NOT NULL, password_hash VARCHAR(200) NOT NULL,
    is_admin BOOLEAN NOT NULL, created FLOAT NOT NULL, PRIMARY KEY (id));
CREATE UNIQUE INDEX ix_users_username ON users (username);
CREATE TABLE tokens (id INTEGER NOT NULL, user_id INTEGER NOT NULL, digest VARCHAR(64) NOT NULL,
    created FLOAT NOT NULL, PRIMARY KEY (id), FOREIGN KEY(user_id) REFERENCES users (id) ON DELETE CASCADE);
CREATE INDEX ix_tokens_user_id ON tokens (user_id);
CREATE UNIQUE INDEX ix_tokens_digest ON tokens (digest);
"""


def test_a_users_db_from_the_first_release_keeps_working(tmp_path):
    from argon2 import PasswordHasher

    from digits.accounts import _digest

    db = sqlite3.connect(tmp_path / "users.db")
    db.executescript(OLD_SCHEMA)
    db.execute("INSERT INTO users VALUES (1, 'olga', ?, 0, ?)", (PasswordHasher().hash("olgas-password"), time.time()))
    db.execute("INSERT INTO tokens VALUES (1, 1, ?, ?)", (_digest("an-old-token"), time.time()))
    db.commit()
    db.close()
    store = AccountStore(str(tmp_path))
    assert store.verify("olga", "olgas-password") == ("olga", False)
    assert store.user_for_token("an-old-token") == ("olga", False)
    [old] = store.tokens("olga")
    assert old.label == "" and old.expires is None and old.last_used is not None
    store.new_token("olga", label="new", expires_days=1)
    store.grant("olga", "code")
    assert store.permissions("olga") == {"code"}
    assert store.user_for_session(store.start_session("olga", 1)) == ("olga", False)
    AccountStore(str(tmp_path))  # opening it again changes nothing
    assert len(store.tokens("olga")) == 2


def test_the_server_signs_in_people_from_an_old_users_db(tmp_path):
    from argon2 import PasswordHasher

    jobs = tmp_path / "jobs"
    jobs.mkdir()
    db = sqlite3.connect(jobs / "users.db")
    db.executescript(OLD_SCHEMA)
    db.execute("INSERT INTO users VALUES (1, 'olga', ?, 1, ?)", (PasswordHasher().hash("olgas-password"), 0.0))
    db.commit()
    db.close()
    server = LiveServer(jobs, args=["--auth", "password"]).start()
    try:
        s = server.sign_in("olga", "olgas-password")
        assert "signed_in" not in s.get(server.url + "/index/json", timeout=SHORT_S).json()
    finally:
        server.stop()


def test_permissions_in_the_store(tmp_path):
    store = AccountStore(str(tmp_path))
    store.add("mel", "mels-password")
    store.add("boss", "boss-password", admin=True)
    assert store.permissions("mel") == frozenset() and store.permissions("boss") == {"code"}
    assert store.permissions("nobody") == frozenset()
    store.grant("mel", "code")
    store.grant("mel", "code")  # twice is once
    assert store.permissions("mel") == {"code"}
    store.revoke("mel", "code")
    assert store.permissions("mel") == frozenset()
    with pytest.raises(AccountError, match="known permissions: code"):
        store.grant("mel", "shell")
    with pytest.raises(AccountError, match="no user"):
        store.grant("nobody", "code")
    store.grant("mel", "code")
    store.remove("mel")
    store.add("mel", "mels-password")
    assert store.permissions("mel") == frozenset()  # a re-added name starts with nothing


def test_sessions_expire_in_the_store(tmp_path):
    store = AccountStore(str(tmp_path))
    store.add("mel", "mels-password")
    sid = store.start_session("mel", 1e-9)  # 3.6 microseconds
    wait_until(lambda: store.user_for_session(sid) is None, what="the session's expiry")
    forever = store.start_session("mel", 0)  # session_hours 0: until signed out
    assert store.user_for_session(forever) == ("mel", False)
    store.end_session(forever)
    assert store.user_for_session(forever) is None


@pytest.fixture
def probed(app):
    """The app with a route that answers whether the request's user may run code."""
    app.add_url_rule("/probe/may-run-code", "may_run_code", lambda: {"code": has_permission("code")})
    return app


@with_settings({"auth": "none"}, {"auth": "password"})
def test_has_permission(probed, overrides):
    c = probed.test_client()
    if overrides["auth"] == "none":  # one person on their own loopback machine
        sign_in(c)
        assert c.get("/probe/may-run-code").get_json() == {"code": True}
        return
    accounts = probed.extensions["digits"].accounts
    tokens = add_accounts(accounts, "mel", "boss", admins=["boss"])
    assert c.get("/probe/may-run-code", headers=JSON).status_code == 401
    sign_in(c, "mel")
    assert c.get("/probe/may-run-code").get_json() == {"code": False}
    accounts.grant("mel", "code")
    assert c.get("/probe/may-run-code").get_json() == {"code": True}
    assert probed.test_client().get("/probe/may-run-code", headers=bearer(tokens["boss"])).get_json() == {"code": True}


@with_settings({"auth": "password"})
def test_a_signed_in_request_costs_one_small_query(app):
    from sqlalchemy import event

    accounts = app.extensions["digits"].accounts
    for i in range(50):
        accounts.add(f"user{i}", "a-long-password")
    c = sign_in(app, "user7", "a-long-password")
    statements: list[str] = []
    event.listen(accounts.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    assert c.get("/index/json").status_code == 200
    assert len(statements) == 1 and "sessions" in statements[0], statements
