"""Classify by URL: http(s) only, bounded in size and time, public addresses only unless allowed."""

import io
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from digits.inference import urls

PNG = io.BytesIO()
Image.new("L", (28, 28), 200).save(PNG, "PNG")
PNG = PNG.getvalue()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == "/image.png":
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(PNG)))
            self.end_headers()
            self.wfile.write(PNG)
        elif self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", self.path.split("?to=", 1)[1])
            self.end_headers()
        elif self.path == "/slow":
            # A byte every 0.25 s for 10 s: no single read waits long, only the whole answer does.
            self.send_response(200)
            self.end_headers()
            try:
                for _ in range(40):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.25)
            except OSError:  # the client gave up, as it should
                pass
        elif self.path == "/big":
            self.send_response(200)
            self.end_headers()  # no Content-Length: the limit must hold while reading
            self.wfile.write(b"x" * 5000)
        else:
            self.send_error(404)


@pytest.fixture(scope="module")
def web():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    "address, reason",
    [
        ("127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.9", "private"),
        ("169.254.169.254", "link-local"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("fe80::1", "link-local"),
        ("93.184.216.34", None),
        ("2606:4700::1111", None),
    ],
)
def test_which_addresses_are_refused(address, reason):
    assert urls.ip_refused(address) == reason


@pytest.mark.parametrize(
    "url, message",
    [
        ("ftp://example.com/a.png", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("http:///a.png", "no host"),
        ("http://exa mple.com/a.png", "spaces"),
        ("http://example.com:99999/a.png", "not a valid URL"),
    ],
)
def test_only_http_urls_with_a_host(url, message):
    with pytest.raises(urls.UrlRefused, match=message):
        urls.fetch(url)


def test_loopback_is_refused_by_default_and_fetched_when_allowed(web):
    with pytest.raises(urls.UrlRefused, match="loopback address"):
        urls.fetch(web + "/image.png")
    assert urls.fetch(web + "/image.png", allow_private=True) == PNG


def test_a_redirect_to_a_refused_address_is_not_followed(web, monkeypatch):
    # Pretend 127.0.0.1 is public, so the first hop is fetched and only the redirect's target is refused.
    monkeypatch.setattr(urls, "ip_refused", lambda address: "private" if address == "127.0.0.2" else None)
    port = web.rsplit(":", 1)[1]
    assert urls.fetch(f"{web}/redirect?to=/image.png") == PNG
    with pytest.raises(urls.UrlRefused, match=r"127\.0\.0\.2"):
        urls.fetch(f"{web}/redirect?to=http://127.0.0.2:{port}/image.png")


def test_size_and_time_are_bounded(web):
    with pytest.raises(urls.UrlRefused, match="larger than 1,000 bytes"):
        urls.fetch(web + "/big", allow_private=True, max_bytes=1000)
    # Refused, not fetched in full: the limit is on the whole answer, however steadily it trickles in.
    with pytest.raises(urls.UrlRefused, match="longer than 0.5 s"):
        urls.fetch(web + "/slow", allow_private=True, timeout_s=0.5)
    with pytest.raises(urls.UrlRefused, match="answered 404"):
        urls.fetch(web + "/missing.png", allow_private=True)


@pytest.mark.slow
def test_classify_by_url_through_the_view(served, web, monkeypatch):
    r = served.classify_one("torch", image_url=web + "/image.png")
    assert r.status_code == 400
    assert "loopback" in r.get_json()["error"]["message"] and "allow_private_urls" in r.get_json()["error"]["message"]
    monkeypatch.setattr(served.workspace.settings, "allow_private_urls", True)
    r = served.classify_one("torch", image_url=web + "/image.png")
    assert r.status_code == 200, r.get_data(as_text=True)
    assert len(r.get_json()["predictions"]) == 3
    r = served.classify_many("torch", f"{web}/image.png 1\n{web}/missing.png 0\n")
    js = r.get_json()
    assert list(js["classifications"]) == [f"{web}/image.png"]
    assert js["errors"][0]["line"] == 2 and "404" in js["errors"][0]["message"]
