"""Which server folders a person may read images from: inside the data roots, or anywhere on a loopback-only server."""

from __future__ import annotations

import ipaddress
import os

from digits.config import Settings


class PathRefused(ValueError):
    """A server path outside what this server may read; the message says why."""


def is_loopback(host: str) -> bool:
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def allowed_roots(settings: Settings) -> list[str] | None:
    """The real paths of the data roots, or None when any readable path is allowed."""
    if settings.data_roots:
        return [os.path.realpath(r) for r in settings.data_roots]
    return None if is_loopback(settings.host) else []


def inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def check_server_path(path: str, settings: Settings, want_dir: bool | None = None) -> str:
    """The real path of `path` if this server may read it; PathRefused with a reason otherwise."""
    if not path:
        raise PathRefused("no path given")
    if "\x00" in path:
        raise PathRefused("the path contains a NUL character")
    if not os.path.isabs(path):
        raise PathRefused(f"{path} is not an absolute path on the server")
    real = os.path.realpath(path)
    roots = allowed_roots(settings)
    if roots is not None and not any(inside(real, r) for r in roots):
        if roots:
            raise PathRefused(f"{path} is outside the data roots ({', '.join(settings.data_roots)})")
        raise PathRefused("this server reads no server folders: it listens beyond loopback and has no --data-root")
    if not os.path.exists(real):
        raise PathRefused(f"{path} does not exist")
    if want_dir is True and not os.path.isdir(real):
        raise PathRefused(f"{path} is not a folder")
    if want_dir is False and not os.path.isfile(real):
        raise PathRefused(f"{path} is not a file")
    if not os.access(real, os.R_OK | (os.X_OK if os.path.isdir(real) else 0)):
        raise PathRefused(f"{path} is not readable by the server")
    return real
