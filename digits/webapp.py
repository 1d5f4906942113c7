"""The application factory."""

from __future__ import annotations

import os
import secrets

from flask import Flask
from flask_socketio import SocketIO

from digits import __version__, live
from digits.config import Settings, settings_from
from digits.dataset import compat_views as dataset_compat
from digits.dataset import explore as dataset_explore
from digits.dataset import generic_views as dataset_generic
from digits.dataset import views as dataset_views
from digits.inference import app as inference_app
from digits.inference import generic_views as inference_generic
from digits.model import compare_views as model_compare
from digits.model import compat_views as model_compat
from digits.model import download as model_download
from digits.model import external_views as model_runs
from digits.model import generic_views as model_generic
from digits.model import lr_finder_views as model_lr_finder
from digits.model import pretrained_views as model_pretrained
from digits.model import tools as model_tools
from digits.model import views as model_views
from digits.views import auth, console, digits_compat, errors, files, filters, guards, hardware, jobs
from digits.views.common import job_url
from digits.workspace import Workspace

SECRET_FILE = ".secret_key"


def load_secret_key(jobs_dir: str) -> str:
    """The session key, made once and kept (mode 0600) so a restart does not sign everyone out."""
    path = os.path.join(jobs_dir, SECRET_FILE)
    try:
        with open(path) as fh:
            key = fh.read().strip()
        if key:
            return key
    except FileNotFoundError:
        pass
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key


class PrefixMiddleware:
    """Serve the whole app (Socket.IO included) under a path such as /digits."""

    def __init__(self, app, prefix: str):
        self.app = app
        self.prefix = prefix

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == self.prefix or path.startswith(self.prefix + "/"):
            environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + self.prefix
            environ["PATH_INFO"] = path[len(self.prefix) :] or "/"
            return self.app(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [f"DIGITS is served under {self.prefix}/\n".encode()]


def create_app(settings: Settings | None = None, **overrides) -> Flask:
    """Build the app for one jobs directory: defaults, then `settings`, then keyword overrides (for tests)."""
    if settings is None or overrides:
        base = {} if settings is None else {k: getattr(settings, k) for k in settings.__dataclass_fields__}
        settings = settings_from({**base, **overrides})
    app = Flask(__name__)
    os.makedirs(settings.jobs_path, exist_ok=True)
    app.config.update(
        SECRET_KEY=load_secret_key(settings.jobs_path),
        MAX_CONTENT_LENGTH=settings.max_content_length,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        DIGITS_SETTINGS=settings,
    )
    app.jinja_env.globals["digits_version"] = __version__
    app.jinja_env.globals["job_url"] = job_url

    workspace = Workspace(settings)
    workspace.open()
    app.extensions["digits"] = workspace

    socketio = SocketIO(app, async_mode=settings.async_mode)
    live.init_app(socketio, workspace.bus, workspace.accounts)
    errors.init_app(app)
    filters.init_app(app)
    auth.init_app(app)
    for blueprint in (
        console.bp,
        auth.bp,
        jobs.bp,
        dataset_views.bp,
        dataset_explore.bp,
        model_views.bp,
        dataset_generic.bp,
        model_generic.bp,
        inference_generic.bp,
        model_tools.bp,
        model_lr_finder.bp,
        model_download.bp,
        model_pretrained.bp,
        model_compare.bp,
        files.bp,
        digits_compat.bp,  # DIGITS 6's spellings of routes the blueprints above serve
        dataset_compat.bp,
        model_compat.bp,
    ):
        app.register_blueprint(blueprint)
    model_runs.init_app(app)  # external runs: their blueprint and heartbeat check
    inference_app.install(app)  # the blueprint, and the warm workers unless inference_workers is 0
    hardware.init_app(app)
    # Around Socket.IO too (SocketIO(app) wrapped wsgi_app above), and inside ProxyFix: the forwarded host counts.
    app.wsgi_app = guards.protect(app.wsgi_app, settings)
    if settings.proxy_fix:
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = settings.proxy_fix
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_prefix=n)
    if settings.url_prefix:
        app.wsgi_app = PrefixMiddleware(app.wsgi_app, settings.url_prefix)
    return app
