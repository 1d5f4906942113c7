"""Attacks from a web page, in the real browser (Debian's Chromium through Playwright) against the real server:
a page on another localhost port (same site, other origin: SameSite=Lax cookies go along) forges requests
while the victim is signed in, and a DNS-rebound name reaches the server."""

from __future__ import annotations

import http.server
import threading
from functools import partial

import pytest
import requests

from tests.support.browser import Chromium, sign_in
from tests.support.live import LiveServer, team_server
from tests.support.waiting import SHORT_S

pytestmark = pytest.mark.browser

FORGED = """<!doctype html><html><body>
<form id="f" method="post" action="{action}">{fields}</form>
<script>document.getElementById("f").submit();</script>
</body></html>"""
FORGED_FETCH = """<!doctype html><html><body><script>
const body = new FormData();
{appends}
fetch("{action}", {{method: "POST", body, mode: "no-cors", credentials: "include"}})
  .then(() => {{ document.title = "sent"; }}, () => {{ document.title = "failed"; }});
</script></body></html>"""


def hidden(fields: dict[str, str]) -> str:
    return "".join(f'<input type="hidden" name="{k}" value="{v}">' for k, v in fields.items())


class AttackerSite:
    """Another web server on this machine (a different port of localhost) serving the forged pages."""

    def __init__(self, folder):
        self.folder = folder
        handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)  # a port of its own, never shared
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def page(self, name: str, html: str) -> str:
        (self.folder / name).write_text(html)
        return f"http://localhost:{self.port}/{name}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_a_same_site_page_cannot_act_for_a_signed_in_member(tmp_path, browser):
    server = team_server(tmp_path / "jobs", "alice").start()
    api = server.auth("alice")  # for checking what happened without a browser
    try:
        dataset_id = server.create_job(owner="alice", name="alices-data")
        digits = f"http://localhost:{server.port}"
        page = browser.new_page()
        sign_in(page, digits, "alice")

        (tmp_path / "site").mkdir()
        with AttackerSite(tmp_path / "site") as site:
            model_fields = {
                "dataset": dataset_id,
                "method": "custom",
                "framework": "torch",
                "custom_network": "import os; os.system('touch /tmp/pwned')",
                "model_name": "forged",
                "train_epochs": "1",
            }
            create = digits + "/models/images/classification/json"
            forged_pages = [
                site.page("model.html", FORGED.format(action=create, fields=hidden(model_fields))),
                site.page("delete.html", FORGED.format(action=f"{digits}/datasets/{dataset_id}/delete", fields="")),
                site.page(
                    "rename.html",
                    FORGED.format(action=f"{digits}/datasets/{dataset_id}/edit", fields=hidden({"name": "pwned"})),
                ),
            ]
            appends = "\n".join(f"body.append({k!r}, {v!r});" for k, v in model_fields.items())
            forged_pages.append(site.page("fetch.html", FORGED_FETCH.format(action=create, appends=appends)))
            targets = [create, f"{digits}/datasets/{dataset_id}/delete", f"{digits}/datasets/{dataset_id}/edit", create]
            for url, target in zip(forged_pages, targets, strict=True):
                with page.expect_response(lambda r, t=target: r.url == t) as answer:
                    page.goto(url)
                response = answer.value
                assert response.status == 403, (url, response.status)
                if not url.endswith("fetch.html"):  # a no-cors fetch cannot read the answer
                    # The browser did send the victim's cookie (same site): the server itself said no.
                    assert "session=" in response.request.all_headers().get("cookie", ""), url
                    assert "not from this server" in response.text()

        listing = requests.get(server.url + "/index/json", headers=api, timeout=SHORT_S).json()
        assert listing["models"] == [] and [d["name"] for d in listing["datasets"]] == ["alices-data"]
        # The victim's own page still works: the refusals were about origin, not a broken session.
        page.goto(digits + f"/datasets/{dataset_id}")
        assert page.locator("#job").count() == 1
        # Our own pages' fetch() POSTs (the model form's network preview) carry our Origin and pass.
        status = page.evaluate(
            """async () => {
                const body = new FormData();
                body.append("framework", "caffe");
                const headers = {Accept: "application/json"};
                const r = await fetch("/models/visualize/json", {method: "POST", body, headers});
                return r.status;
            }"""
        )
        assert status != 403 and status < 500
    finally:
        server.stop()


def test_a_rebound_host_name_gets_a_400(tmp_path, playwright):
    server = LiveServer(tmp_path / "jobs").start()  # the default: --auth none on loopback
    browser = Chromium(playwright, "--host-resolver-rules=MAP rebind.test 127.0.0.1")
    try:
        page = browser.new_page()
        response = page.goto(f"http://rebind.test:{server.port}/")
        assert response.status == 400
        assert "allowed_hosts" in page.content() and "rebind.test" in page.content()
        response = page.goto(f"http://localhost:{server.port}/")
        assert response.status == 200 and page.get_by_role("link", name="Sign in").count() == 1
    finally:
        browser.close()
        server.stop()
