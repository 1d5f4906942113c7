"""Team members for --auth password servers: added straight to users.db, or through `python -m digits.users`."""

from __future__ import annotations

import os
import subprocess

from digits.accounts import AccountStore
from tests.support import JSON
from tests.support.commands import run_module


def password_of(name: str) -> str:
    """The password every test gives `name`."""
    return f"{name}-secret-pw"


def bearer(token: str) -> dict[str, str]:
    """Headers of a script's request with an API token."""
    return {"Authorization": f"Bearer {token}", **JSON}


def add_accounts(where, *names: str, admins=(), code=()) -> dict[str, str]:
    """Add `names` (password: password_of) to an AccountStore or to a jobs folder's users.db (made if need be);
    `admins` are admins, `code` members hold the permission to run code. Returns an API token per name."""
    if isinstance(where, AccountStore):
        store = where
    else:
        os.makedirs(where, exist_ok=True)
        store = AccountStore(str(where))
    for name in names:
        store.add(name, password_of(name), admin=name in admins)
        if name in code:
            store.grant(name, "code")
    return {name: store.new_token(name) for name in names}


def users_cli(jobs_dir, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    """`python -m digits.users --jobs-dir JOBS ARGS`, as an admin types it (stdin: the password prompt's answer)."""
    return run_module("digits.users", "--jobs-dir", jobs_dir, *args, stdin=stdin)
