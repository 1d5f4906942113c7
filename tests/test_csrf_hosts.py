"""CSRF on every cookie route (JSON twins and sign-in included), the Host allow-list, `next` after sign-in, and
the security headers: in-process for the many cases, then against the real server (with curl, as DIGITS'
REST documentation drives it)."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess

import pytest
import requests

from digits.config import settings_from
from digits.views.guards import SECURITY_HEADERS, HostAllowList, host_name
from tests.support import JSON
from tests.support.accounts import add_accounts, password_of
from tests.support.apps import sign_in, with_settings
from tests.support.fakejobs import run_fake_job
from tests.support.live import LiveServer, team_server
from tests.support.waiting import SHORT_S

OURS = "http://localhost"  # the test client's origin
SAME_ORIGIN = {"Origin": OURS, "Sec-Fetch-Site": "same-origin", "Accept": "text/html"}
FOREIGN = [
    {"Origin": "http://localhost:8888", "Sec-Fetch-Site": "same-site"},  # another port: same site, other origin
    {"Origin": "https://localhost"},
    {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},
    {"Origin": "null"},  # sandboxed frames, some redirects
    {"Sec-Fetch-Site": "same-site"},  # no Origin at all
    {"Sec-Fetch-Site": "cross-site"},
]


def add_job(app, owner="ann"):
    return run_fake_job(app.extensions["digits"], owner=owner)


def form_token(client, path="/login") -> str:
    page = client.get(path, headers={"Accept": "text/html"}).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


@pytest.mark.parametrize("headers", FOREIGN)
def test_a_browser_request_from_another_origin_is_refused(app, headers):
    job = add_job(app)
    ann = sign_in(app)
    r = ann.post("/models/images/classification/json", data={"method": "custom"}, headers=headers)
    assert r.status_code == 403 and "not from this server's own pages" in r.get_json()["error"]["message"]
    token = form_token(ann, f"/jobs/{job.id}")
    r = ann.post(f"/jobs/{job.id}/edit", data={"name": "forged", "csrf_token": token}, headers=headers)
    assert r.status_code == 403
    assert ann.delete(f"/jobs/{job.id}", headers=headers).status_code == 403
    assert ann.post(f"/jobs/{job.id}/delete", headers=headers).status_code == 403
    assert app.extensions["digits"].store.get(job.id).name == job.name
    # Reading is not changing: pages and JSON twins answer any origin's GET (the browser keeps the answer).
    assert ann.get(f"/jobs/{job.id}/json", headers=headers).status_code == 200


def test_our_own_pages_pass(app):
    job = add_job(app)
    ann = sign_in(app)
    r = ann.post("/models/images/classification/json", data={"method": "standard"}, headers=SAME_ORIGIN)
    assert r.status_code == 400 and "errors" in r.get_json()  # it reached the form: the fields are checked
    r = ann.post(f"/jobs/{job.id}/edit", data={"name": "x"}, headers={"Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 400 and "CSRF" in r.get_data(as_text=True)  # a form also needs its token
    token = form_token(ann, f"/jobs/{job.id}")
    r = ann.post(f"/jobs/{job.id}/edit", data={"name": "renamed", "csrf_token": token}, headers=SAME_ORIGIN)
    assert r.status_code == 302 and app.extensions["digits"].store.get(job.id).name == "renamed"
    r = ann.post(f"/jobs/{job.id}/edit", data={"notes": "n"}, headers={"Origin": "HTTP://LOCALHOST:80"})
    assert r.status_code == 400 and "CSRF" in r.get_data(as_text=True)  # the same origin, spelled otherwise


def test_scripts_with_a_cookie_keep_working(app):
    job = add_job(app)
    ann = sign_in(app)  # no Origin, no Sec-Fetch-Site: curl, requests
    r = ann.post(f"/jobs/{job.id}/edit", data={"name": "by script"})
    assert r.status_code == 200 and r.get_json()["name"] == "by script"
    assert ann.post("/models/images/classification/json", data={"method": "standard"}).status_code == 400


@with_settings({"auth": "password"})
def test_bearer_tokens_are_exempt(app):
    tokens = add_accounts(app.extensions["digits"].accounts, "ann")
    job = add_job(app)
    # A page cannot add an Authorization header to another origin's request; whatever Origin says, it is a script.
    headers = {"Authorization": f"Bearer {tokens['ann']}", **FOREIGN[0], **JSON}
    r = app.test_client().post(f"/jobs/{job.id}/edit", data={"name": "by token"}, headers=headers)
    assert r.status_code == 200


@with_settings({"auth": "none"}, {"auth": "password"})
def test_signing_in_from_a_browser_needs_our_page(app, overrides):
    if overrides["auth"] == "password":
        add_accounts(app.extensions["digits"].accounts, "ann")
    form = {"username": "ann", "password": password_of("ann")}
    c = app.test_client()
    r = c.post("/login", data=form, headers={"Origin": "http://localhost:8888", "Accept": "text/html"})
    assert r.status_code == 403  # a login CSRF: signing the victim into the attacker's account
    r = c.post("/login", data=form, headers={**SAME_ORIGIN, "Accept": "text/html"})
    assert r.status_code == 400 and "CSRF" in r.get_data(as_text=True)
    r = c.post("/login", data={**form, "csrf_token": form_token(c)}, headers={**SAME_ORIGIN, "Accept": "text/html"})
    assert r.status_code == 302
    assert app.test_client().post("/login", data=form, headers=JSON).status_code == 200  # curl -X POST /login


def test_signing_out_is_a_post_from_our_page(app):
    ann = sign_in(app)
    page = ann.get("/logout", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "Signed in as <strong>ann</strong>" in page.get_data(as_text=True)
    assert ann.post("/logout", headers={"Origin": "http://localhost:1"}).status_code == 403
    assert ann.post("/logout", headers=SAME_ORIGIN).status_code == 400  # no token
    home = ann.get("/", headers={"Accept": "text/html"}).get_data(as_text=True)
    assert "Signed in as <strong>ann</strong>" in home
    token = re.search(r'action="/logout".*?name="csrf_token" value="([^"]+)"', home, re.S).group(1)
    assert ann.post("/logout", data={"csrf_token": token}, headers=SAME_ORIGIN).status_code == 302
    assert "Signed in as" not in ann.get("/", headers={"Accept": "text/html"}).get_data(as_text=True)


def test_behind_a_proxy_the_forwarded_origin_counts(make_app):
    forwarded = {"X-Forwarded-Host": "digits.example.com", "X-Forwarded-Proto": "https", "X-Forwarded-For": "10.0.0.9"}
    proxied = make_app(proxy_fix=1, allowed_hosts=["digits.example.com"])
    direct = make_app(allowed_hosts=["digits.example.com"])
    for app, expected in ((proxied, 400), (direct, 403)):
        c = app.test_client()
        c.post("/login", data={"username": "ann"}, headers={**JSON, **forwarded})
        r = c.post(
            "/models/images/classification/json",
            data={"method": "standard"},
            headers={**forwarded, "Origin": "https://digits.example.com"},
        )
        assert r.status_code == expected, r.get_json()
    assert "proxy_fix" in r.get_json()["error"]["message"]  # the direct server says what to set


# ---- next ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "target",
    [
        "https://elsewhere.example/",
        "//elsewhere.example/",
        "/\t/elsewhere.example",
        "/\n/elsewhere.example",
        "/\r\nSet-Cookie: x=1",
        "/\\elsewhere.example",
        "\\\\elsewhere.example",
        "/%0d%0a\r",
        "javascript:alert(1)",
        " /models",
        "/\x00",
        "",
    ],
)
def test_next_goes_only_to_our_own_paths(app, target):
    r = app.test_client().post("/login", data={"username": "ann", "next": target}, headers={"Accept": "text/html"})
    assert r.status_code == 302 and r.headers["Location"] == "/"
    page = app.test_client().get("/login", query_string={"next": target}, headers={"Accept": "text/html"})
    assert page.status_code == 200


@with_settings({"url_prefix": ""}, {"url_prefix": "/digits"})
def test_next_keeps_a_path_and_its_query(app, overrides):
    prefix = overrides["url_prefix"]
    target = "/models/20250101-000000-abcd?tab=1"
    r = app.test_client().post(
        prefix + "/login", data={"username": "ann", "next": target}, headers={"Accept": "text/html"}
    )
    assert r.status_code == 302 and r.headers["Location"] == prefix + target


# ---- Host allow-list -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "header, name",
    [("LocalHost:5000", "localhost"), ("[::1]:5000", "::1"), ("::1", "::1"), ("example.com.", "example.com")],
)
def test_host_names_are_read_without_the_port(header, name):
    assert host_name(header) == name


def _allow_list(**settings):
    return HostAllowList(lambda environ, start: [], settings_from(settings))


def test_a_loopback_server_answers_only_loopback_names_and_allowed_hosts():
    hosts = _allow_list(allowed_hosts=["digits.example.com", ".lab.example", "10.1.2.3"])
    for name in ("localhost", "app.localhost", "127.0.0.1", "127.8.9.10", "::1", "digits.example.com", "10.1.2.3"):
        assert hosts.allows(name), name
    assert hosts.allows("lab.example") and hosts.allows("gpu1.lab.example")
    for name in ("rebind.test", "evil.example", "localhost.evil.example", "10.1.2.4", "xlab.example"):
        assert not hosts.allows(name), name
    assert _allow_list(allowed_hosts=["*"]).allows("anything.example")


def test_a_network_server_answers_its_own_names_and_addresses():
    hosts = _allow_list(host="0.0.0.0", auth="password")
    assert hosts.allows(socket.gethostname().lower()) and hosts.allows("localhost") and hosts.allows("127.0.0.1")
    assert not hosts.allows("rebind.test")


def test_a_foreign_host_gets_400_naming_the_setting(app):
    c = app.test_client()
    r = c.get("/", headers={"Host": "rebind.test:5000"})
    assert r.status_code == 400 and "--allowed-host rebind.test" in r.get_data(as_text=True)
    assert "allowed_hosts" in r.get_data(as_text=True) and r.headers["X-Frame-Options"] == "DENY"
    assert c.get("/socket.io/?EIO=4&transport=polling", headers={"Host": "rebind.test"}).status_code == 400
    assert c.get("/index/json", headers={"Host": "localhost:5000"}).status_code == 200


# ---- against the real server ---------------------------------------------------------------------------------------
def _raw_get(server, path: str, host: str | None, **headers) -> requests.Response:
    if host is not None:
        headers["Host"] = host
    return requests.get(server.url + path, headers=headers, timeout=SHORT_S)


def test_the_real_server_checks_hosts_socketio_included(tmp_path):
    server = LiveServer(tmp_path / "jobs", args=["--allowed-host", "digits.example.com"]).start()
    try:
        for host in (f"localhost:{server.port}", "127.0.0.1", "[::1]:1", "digits.example.com", "a.localhost"):
            assert _raw_get(server, "/index/json", host).status_code == 200, host
        r = _raw_get(server, "/", f"rebind.test:{server.port}")
        assert r.status_code == 400 and "allowed_hosts" in r.text and r.headers["Content-Type"].startswith("text/plain")
        assert _raw_get(server, "/socket.io/?EIO=4&transport=polling", "rebind.test").status_code == 400
        assert _raw_get(server, "/socket.io/?EIO=4&transport=polling", "localhost").status_code == 200
        # Without proxy_fix a forwarded host is not believed either way.
        assert _raw_get(server, "/index/json", "localhost", **{"X-Forwarded-Host": "rebind.test"}).status_code == 200
    finally:
        server.stop()


def test_behind_a_proxy_the_forwarded_host_is_checked(tmp_path):
    server = LiveServer(tmp_path / "jobs", args=["--allowed-host", "digits.example.com"], env={"DIGITS_PROXY_FIX": "1"})
    server.start()
    try:
        ok = _raw_get(server, "/index/json", "127.0.0.1", **{"X-Forwarded-Host": "digits.example.com"})
        assert ok.status_code == 200
        bad = _raw_get(server, "/index/json", "127.0.0.1", **{"X-Forwarded-Host": "rebind.test"})
        assert bad.status_code == 400
    finally:
        server.stop()


def test_a_network_server_answers_its_machine_names(tmp_path):
    server = LiveServer(tmp_path / "jobs", args=["--host", "0.0.0.0", "--auth", "password"]).start()
    try:
        assert _raw_get(server, "/index/json", f"{socket.gethostname()}:{server.port}").status_code == 200
        assert _raw_get(server, "/index/json", "rebind.test").status_code == 400
    finally:
        server.stop()


def test_every_response_carries_the_security_headers(tmp_path):
    server = LiveServer(tmp_path / "jobs").start()
    try:
        for path in (
            "/",
            "/index/json",
            "/static/js/digits.js",
            "/no/such/page",
            "/socket.io/?EIO=4&transport=polling",
        ):
            r = _raw_get(server, path, None)
            for name, value in SECURITY_HEADERS:
                assert r.headers.get(name) == value, (path, name)
        bad = _raw_get(server, "/", "rebind.test")
        assert all(bad.headers.get(name) == value for name, value in SECURITY_HEADERS)
    finally:
        server.stop()


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
@pytest.mark.parametrize("auth", ["none", "password"])
def test_curl_with_a_cookie_as_the_rest_documentation_shows(tmp_path, auth):
    jobs = tmp_path / "jobs"
    server = team_server(jobs, "me") if auth == "password" else LiveServer(jobs)
    server.start()
    try:
        job_id = server.create_job(owner="me")
        cookies = tmp_path / "cookies"

        def curl(*args) -> str:
            out = subprocess.run(
                ["curl", "-sS", "-w", "\n%{http_code}", *args], capture_output=True, text=True, timeout=SHORT_S
            )
            return out.stdout

        login = ["-F", "username=me"] + (["-F", f"password={password_of('me')}"] if auth == "password" else [])
        # curl says Accept: */*, no preference: sign-in answers as DIGITS' does, a redirect (and the cookie).
        assert curl("-c", str(cookies), "-X", "POST", server.url + "/login", *login).endswith("\n302")
        edit = server.url + f"/datasets/{job_id}/edit"
        out = curl("-b", str(cookies), "-X", "POST", edit, "-F", "name=renamed by curl")
        assert out.endswith("\n200") and "renamed by curl" in out
        forged = curl("-b", str(cookies), "-H", "Origin: http://localhost:1", "-X", "POST", edit, "-F", "name=x")
        assert forged.endswith("\n403")
    finally:
        server.stop()
