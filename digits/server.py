"""`digits-devserver`: take the jobs directory, bind the port, serve on gevent until SIGINT/SIGTERM.

Import this module only after gevent's monkey patching (digits/__main__.py does it first thing).
"""

from __future__ import annotations

import logging
import signal
import socket
import sys

import gevent
from gevent import pywsgi
from geventwebsocket.handler import WebSocketHandler

from digits.config import SettingsError, load_settings
from digits.lock import JobsDirBusy
from digits.log import setup_logging
from digits.webapp import create_app

log = logging.getLogger("digits.server")


access_log = logging.getLogger("digits.access")


class _Handler(WebSocketHandler):
    """Sends small answers at once: without TCP_NODELAY a kept-alive reply waits ~40 ms for a delayed ACK."""

    def handle(self):
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return super().handle()


class _AccessLog:
    """pywsgi writes one line per request through this."""

    def write(self, line: str) -> None:
        access_log.info(line.rstrip())


def serve(app, host: str, port: int) -> int:
    """Serve an app from create_app until a signal stops it; returns the exit code."""
    workspace = app.extensions["digits"]
    try:
        server = pywsgi.WSGIServer((host, port), app, handler_class=_Handler, log=_AccessLog(), error_log=log)
        server.logger = access_log  # geventwebsocket's handler logs requests through server.logger
        server.init_socket()
    except OSError as e:
        workspace.close()
        print(f"digits-devserver: cannot listen on {host}:{port}: {e.strerror}", file=sys.stderr)
        return 1

    def stop() -> None:
        log.info("stopping: aborting running tasks")
        workspace.close()
        server.stop(timeout=2)

    for sig in (signal.SIGINT, signal.SIGTERM):
        gevent.signal_handler(sig, lambda: gevent.spawn(stop))
    shown = "localhost" if host in ("127.0.0.1", "::1") else host
    prefix = app.config["DIGITS_SETTINGS"].url_prefix
    log.info("DIGITS is serving at http://%s:%d%s/", shown, port, prefix)
    server.serve_forever()
    return 0


def main(argv: list[str] | None = None, extend=None) -> int:
    """Parse settings, build the app, and serve. `extend(app)` may add blueprints (plugins, test harnesses)."""
    try:
        settings = load_settings(argv)
    except SettingsError as e:
        print(f"digits-devserver: {e}", file=sys.stderr)
        return 2
    setup_logging(settings.jobs_path, "DEBUG" if settings.debug else settings.log_level)
    # One line per request (Socket.IO polling included) is noise unless debugging.
    logging.getLogger("digits.access").setLevel(logging.DEBUG if settings.debug else logging.WARNING)
    try:
        app = create_app(settings)
    except JobsDirBusy as e:
        print(f"digits-devserver: {e}", file=sys.stderr)
        return 1
    if extend is not None:
        extend(app)
    return serve(app, settings.host, settings.port)
