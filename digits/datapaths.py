"""Which server paths a person may read images from.

- A loopback-only server with --auth none (one person, their own machine): any readable path.
- A server with data roots: only paths inside them, and never inside the jobs folder (its session key, its
  accounts, other people's jobs), even when a data root contains it.
- A team server (--auth password) or a server beyond loopback without data roots: no server paths at all;
  images come as uploads.

Inside the data roots, a missing path and an outside one get the same answer, so no one can probe which
files exist elsewhere on the server.

A path may start with ~ (the README's `~/mnist/train`): it stands for the home folder of the account the server
runs as, and the rules above then judge the expanded path, so ~ never reaches past the data roots.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from digits.config import Settings, is_loopback


class PathRefused(ValueError):
    """A server path outside what this server may read; the message says why."""


def inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


@dataclass(frozen=True)
class PathRules:
    """Which real paths may be read. roots None: any path; []: none. `denied` wins over the roots; `own` (a
    job's own upload folder) wins over both."""

    roots: list[str] | None
    denied: list[str] = field(default_factory=list)
    own: list[str] = field(default_factory=list)

    def allows(self, real: str) -> bool:
        if any(inside(real, folder) for folder in self.own):
            return True
        if self.roots is None:
            return True
        if any(inside(real, folder) for folder in self.denied):
            return False
        return any(inside(real, root) for root in self.roots)

    def hides(self, real_folder: str) -> bool:
        """A folder a scan must not even enter (the jobs folder under a data root): its names stay unseen."""
        if self.roots is None or any(inside(real_folder, folder) for folder in self.own):
            return False
        return any(inside(real_folder, folder) for folder in self.denied)

    def to_args(self) -> dict:
        """As plain JSON for a worker's task arguments."""
        return {"allowed_roots": self.roots, "denied_roots": self.denied}


def allowed_roots(settings: Settings) -> list[str] | None:
    """The real paths of the data roots; None when any readable path is allowed; [] when none is."""
    if settings.data_roots:
        return [os.path.realpath(r) for r in settings.data_roots]
    if settings.auth == "none" and is_loopback(settings.host):
        return None
    return []


def path_rules(settings: Settings) -> PathRules:
    roots = allowed_roots(settings)
    denied = [os.path.realpath(settings.jobs_path)] if roots is not None else []
    return PathRules(roots, denied)


def no_paths_message(settings: Settings) -> str:
    why = "it has accounts (--auth password)" if settings.auth == "password" else "it listens beyond loopback"
    return (
        f"this server reads no server folders: {why} and no --data-root. Upload the images (a zip of class "
        "folders, or a list file) instead, or ask the admin to restart the server with --data-root DIR"
    )


def not_found_message(path: str, settings: Settings) -> str:
    """The one answer for a path outside the data roots, inside the jobs folder, or missing."""
    return f"{path} does not exist or is outside the data roots ({', '.join(settings.data_roots)})"


def server_home() -> str:
    """The home folder of the account the server runs as ($HOME, else the password database's)."""
    return os.path.expanduser("~")


def expand_home(path: str) -> str:
    """`~` or `~/...` with the server account's home put in; other paths (`~bob/...` too) as they are."""
    if path == "~" or path.startswith("~" + os.sep):
        return server_home() + path[1:]
    return path


def check_server_path(path: str, settings: Settings, want_dir: bool | None = None) -> str:
    """The real path of `path` (`~` expanded) if this server may read it; PathRefused with a reason otherwise.

    Messages name the path as typed, followed by its expansion when `~` was expanded."""
    if not path:
        raise PathRefused("no path given")
    if "\x00" in path:
        raise PathRefused("the path contains a NUL character")
    expanded = expand_home(path)
    shown = path if expanded == path else f"{path} ({expanded})"
    if not os.path.isabs(expanded):
        raise PathRefused(
            f"{shown} is not an absolute path on the server: start it with / (or with ~/, the home folder of the "
            "account the server runs as)"
        )
    rules = path_rules(settings)
    if rules.roots == []:
        raise PathRefused(no_paths_message(settings))
    real = os.path.realpath(expanded)
    if not rules.allows(real) or not os.path.exists(real):
        if rules.roots is None:
            raise PathRefused(f"{shown} does not exist")
        raise PathRefused(not_found_message(shown, settings))
    if want_dir is True and not os.path.isdir(real):
        raise PathRefused(f"{shown} is not a folder")
    if want_dir is False and not os.path.isfile(real):
        raise PathRefused(f"{shown} is not a file")
    if not os.access(real, os.R_OK | (os.X_OK if os.path.isdir(real) else 0)):
        raise PathRefused(f"{shown} is not readable by the server")
    return real
