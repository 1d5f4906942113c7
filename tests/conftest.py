"""Fixtures: in-process apps on temporary jobs folders (with settings overrides), the real server as a process, and
Chromium. What they are made of, and the other shared helpers, live in tests/support/."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

import tests.support.fakejobs  # noqa: F401 - registers the fake task kinds
from digits.webapp import create_app
from tests.support import ROOT
from tests.support.apps import app_settings, sign_in
from tests.support.browser import MISSING, Chromium, available
from tests.support.live import LiveServer, free_port
from tests.support.real_caffe import real_caffe
from tests.support.waiting import FINAL, EventRecorder, record

# Older test modules import these from here; new ones import them from tests.support.
__all__ = ["FINAL", "ROOT", "EventRecorder", "LiveServer", "free_port"]

# Workers are started with `python -m tests.workers...`, so they need the checkout on their path.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))

# Property tests judge answers, never speed: no per-example deadline, and no health check that fails a run
# because a busy machine drew its examples slowly. A test's own @settings adds to these.
hypothesis_settings.register_profile("digits", deadline=None, suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.load_profile("digits")


@pytest.fixture
def overrides() -> dict:
    """Settings a test changes from the test defaults (tests/support/apps.py); `app`, `client`, `workspace`...
    follow them. Change them with `@with_settings({"auth": "password"})` (tests.support.apps)."""
    return {}


@pytest.fixture
def settings(tmp_path, overrides):
    return app_settings(tmp_path / "jobs", **overrides)


@pytest.fixture
def app(settings):
    app = create_app(settings)
    yield app
    app.extensions["digits"].close()


@pytest.fixture
def make_app(tmp_path):
    """`make_app(jobs_dir=None, **overrides)`: one more app, on `jobs_dir` or a fresh folder, with the test
    defaults and `overrides` (for tests that need several apps, or settings chosen as they go); each is closed
    when the test ends."""
    made = []

    def make(jobs_dir=None, **overrides):
        jobs = jobs_dir if jobs_dir is not None else tmp_path / f"app{len(made)}" / "jobs"
        made.append(create_app(app_settings(jobs, **overrides)))
        return made[-1]

    yield make
    for app in reversed(made):
        app.extensions["digits"].close()


@pytest.fixture
def workspace(app):
    return app.extensions["digits"]


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def signed_in(client):
    """The test client, signed in as ann."""
    return sign_in(client)


@pytest.fixture
def recorder(workspace):
    return record(workspace)


@pytest.fixture
def live_server(tmp_path):
    server = LiveServer(tmp_path / "jobs").start()
    yield server
    server.stop()


@pytest.fixture
def playwright():
    if not available():
        pytest.skip(MISSING)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture
def browser(playwright):
    """Chromium with the project's arguments; its pages wait generously (tests/support/browser.py)."""
    chromium = Chromium(playwright)
    yield chromium
    chromium.close()


@pytest.fixture(scope="session")
def caffe():
    """Real pycaffe (tests/support/real_caffe.py): a failure where its build was expected here, else a skip."""
    return real_caffe()
