"""Debian's Chromium driven through Playwright (never a browser downloaded by the test tool), for the tests marked
`browser`; they get it from the `browser` and `playwright` fixtures of tests/conftest.py."""

from __future__ import annotations

import os
import re

from tests.support import ROOT
from tests.support.accounts import password_of
from tests.support.waiting import SHORT_MS

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts"
MISSING = f"needs Debian's chromium at {CHROMIUM} (make test installs it)"


def available() -> bool:
    return os.path.exists(CHROMIUM)


class Chromium:
    """A launched Chromium whose pages wait up to SHORT_MS for anything unless a call says otherwise (Playwright's
    own default, 30 s, is shorter than a page load on a machine running a second suite)."""

    def __init__(self, playwright, *args: str):
        self.browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[*ARGS, *args])

    def new_context(self, **options):
        context = self.browser.new_context(**options)
        context.set_default_timeout(SHORT_MS)
        context.set_default_navigation_timeout(SHORT_MS)
        return context

    def new_page(self, **options):
        """A page in a context of its own (its own cookies)."""
        return self.new_context(**options).new_page()

    def close(self) -> None:
        self.browser.close()


def sign_in(page, url: str, name: str, password: str | None = None) -> None:
    """Sign in through the sign-in page of the server at `url`: on a team server with accounts, with the
    password of `name` (password_of unless given); on a single-user server (no password field), by name alone."""
    page.goto(url + "/login")
    page.fill("#username", name)
    if page.locator("#password").count():
        page.fill("#password", password if password is not None else password_of(name))
    page.keyboard.press("Enter")
    page.wait_for_url(url + "/")


def fill_folder(page, selector: str, path: str) -> None:
    """Type a server folder into a dataset form's folder field and wait for the preview the page shows under it
    (the classes and image counts): it moves what is below, so a click aimed before it lands would miss."""
    page.fill(selector, path)
    page.dispatch_event(selector, "change")  # preview now, not after the typing pause
    page.wait_for_function(
        """(selector) => {
            const box = document.getElementById(document.querySelector(selector).dataset.folderPreview);
            return box.childElementCount > 0 && !box.hasAttribute("aria-busy");
        }""",
        arg=selector,
    )


def shot(page, name: str) -> None:
    """A full-page screenshot as test-artifacts/NAME.png (the README shows some). Written aside and renamed, so
    a second copy of the suite writing the same picture never leaves half of one."""
    ARTIFACTS.mkdir(exist_ok=True)
    partial = ARTIFACTS / f".{name}.{os.getpid()}.png"
    page.screenshot(path=str(partial), full_page=True)
    os.replace(partial, ARTIFACTS / f"{name}.png")


class PageWatch:
    """What went wrong on a page while a test drove it: page errors, console errors, failed requests, and answers
    of 400 or more. `allow(pattern)` names URLs (a regular expression) whose failure the test causes on purpose;
    `check()` fails the test on anything else. A request the browser itself abandons (a Socket.IO poll cut by a
    navigation, a download handed over) is not a failure."""

    def __init__(self, page):
        self.page = page
        self.problems: list[str] = []
        self.allowed: list[re.Pattern] = []
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on("console", self._console)
        page.on("requestfailed", self._request_failed)
        page.on("response", self._response)

    def allow(self, pattern: str) -> PageWatch:
        self.allowed.append(re.compile(pattern))
        return self

    def _is_allowed(self, url: str) -> bool:
        return any(p.search(url) for p in self.allowed)

    def _console(self, message) -> None:
        if message.type != "error":
            return
        # Chromium logs every 4xx/5xx resource as a console error too; _response judges (or allows) those.
        if message.text.startswith("Failed to load resource"):
            return
        where = (message.location or {}).get("url", "")
        self.problems.append(f"console error: {message.text} ({where})")

    def _request_failed(self, request) -> None:
        failure = request.failure or ""
        if "ERR_ABORTED" in failure or self._is_allowed(request.url):
            return
        self.problems.append(f"request failed: {request.method} {request.url}: {failure}")

    def _response(self, response) -> None:
        if response.status >= 400 and not self._is_allowed(response.url):
            self.problems.append(f"HTTP {response.status}: {response.request.method} {response.url}")

    def check(self) -> None:
        assert not self.problems, "\n".join(self.problems)
