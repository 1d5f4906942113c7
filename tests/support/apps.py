"""In-process apps (create_app on a temporary jobs folder) and signed-in test clients.

Tests get them from the `app`, `make_app`, `client` and `signed_in` fixtures of tests/conftest.py.
"""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from digits.config import Settings, settings_from
from tests.support import JSON
from tests.support.accounts import password_of

# No warm inference workers unless a test asks: each is a process with torch loaded. Threads, not gevent: the
# test client calls the app from the test's own thread.
TEST_DEFAULTS = {"gpus": [], "async_mode": "threading", "abort_grace_s": 3.0, "inference_workers": 0}


def app_settings(jobs_dir, **overrides) -> Settings:
    """The settings of a test app on `jobs_dir`: the test defaults, then `overrides`."""
    return settings_from({**TEST_DEFAULTS, "jobs_dir": str(jobs_dir), **overrides})


def with_settings(*variants: dict):
    """Run the test once per dict of settings overrides, through the `overrides` fixture that `app`, `client`,
    `workspace`... are built from: `@with_settings({"auth": "password"})`."""
    ids = [",".join(f"{k}={v}" for k, v in variant.items()) or "defaults" for variant in variants]
    return pytest.mark.parametrize("overrides", variants, ids=ids)


def sign_in(app_or_client: Flask | FlaskClient, name: str = "ann", password: str | None = None) -> FlaskClient:
    """A test client signed in as `name` through POST /login (password_of on a team server)."""
    client = app_or_client.test_client() if isinstance(app_or_client, Flask) else app_or_client
    form = {"username": name}
    if client.application.extensions["digits"].settings.auth == "password" or password is not None:
        form["password"] = password if password is not None else password_of(name)
    r = client.post("/login", data=form, headers=JSON)
    assert r.status_code == 200, r.get_data(as_text=True)
    return client
