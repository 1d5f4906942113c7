"""Manage a team server's accounts: `python -m digits.users --jobs-dir DIR COMMAND ...` (see --help).

Passwords are read from standard input (one line), so they never appear in the shell history or `ps`. Changes
take effect on a running server at once: it reads users.db on every request, and closes the live connections
of people signed out here within seconds. Each change is written to the audit log (jobs/audit.log).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time

from digits.accounts import PERMISSIONS, AccountError, AccountStore
from digits.audit import record


def read_password(prompt: str) -> str:
    if sys.stdin.isatty():
        first = getpass.getpass(prompt)
        if getpass.getpass("Again: ") != first:
            raise AccountError("the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\n")


def _when(t: float | None, never: str = "-") -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) if t else never


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m digits.users", description=__doc__.splitlines()[0])
    p.add_argument("--jobs-dir", default=os.environ.get("DIGITS_JOBS_DIR", "jobs"))
    sub = p.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add", help="add a user (password from stdin)")
    add.add_argument("name")
    add.add_argument("--admin", action="store_true", help="may change everyone's jobs and holds every permission")
    sub.add_parser("list", help="list users, with 'admin' and the permissions each holds")
    for name, text in (
        ("remove", "remove a user, ending their sessions and tokens"),
        ("passwd", "set a new password (stdin); ends the user's sessions and tokens"),
        ("signout", "end every browser session of a user"),
        ("tokens", "list a user's API tokens (id, label, created, expires, last used; never the token)"),
    ):
        sub.add_parser(name, help=text).add_argument("name")
    token = sub.add_parser("token", help="print a new API token for scripts (Authorization: Bearer <token>)")
    token.add_argument("name")
    token.add_argument("--expires-days", type=float, metavar="N", help="the token stops working after N days")
    token.add_argument("--label", default="", metavar="TEXT", help="what the token is for, shown by 'tokens'")
    revoke_token = sub.add_parser("revoke-token", help="revoke one API token (ids from 'tokens')")
    revoke_token.add_argument("name")
    revoke_token.add_argument("id", type=int)
    for name, text in (("grant", "give a user a permission"), ("revoke", "take a permission back")):
        cmd = sub.add_parser(name, help=f"{text} ({', '.join(PERMISSIONS)}; 'code': custom Python networks)")
        cmd.add_argument("name")
        cmd.add_argument("permission")
    return p


def run(store: AccountStore, args: argparse.Namespace, log) -> None:
    name = getattr(args, "name", None)
    if args.command == "add":
        store.add(name, read_password("Password: "), admin=args.admin)
        log("user_added", admin=args.admin)
        print(f"added {name}{' (admin)' if args.admin else ''}")
    elif args.command == "list":
        for user, admin in store.list():
            held = sorted(store.permissions(user))
            print("  ".join([user, *(["admin"] if admin else []), *([",".join(held)] if held else [])]))
    elif args.command == "remove":
        store.remove(name)
        log("user_removed")
        print(f"removed {name}")
    elif args.command == "passwd":
        sessions, tokens = store.set_password(name, read_password("New password: "))
        log("password_changed", sessions_ended=sessions, tokens_revoked=tokens)
        print(f"password changed for {name}; ended {sessions} session(s) and revoked {tokens} token(s)")
    elif args.command == "signout":
        ended = store.end_sessions(name)
        log("signed_out_everywhere", sessions_ended=ended)
        print(f"ended {ended} session(s) of {name}")
    elif args.command == "token":
        token = store.new_token(name, label=args.label, expires_days=args.expires_days)
        info = store.tokens(name)[-1]
        log("token_created", token_id=info.id, label=info.label, expires=info.expires)
        print(token)
    elif args.command == "tokens":
        print(f"{'id':>4}  {'label':<20}  {'created':<16}  {'expires':<16}  last used")
        for t in store.tokens(name):
            expired = " (expired)" if t.expires and t.expires <= time.time() else ""
            print(
                f"{t.id:>4}  {t.label or '-':<20}  {_when(t.created):<16}  "
                f"{_when(t.expires, 'never') + expired:<16}  {_when(t.last_used, 'never')}"
            )
    elif args.command == "revoke-token":
        store.revoke_token(name, args.id)
        log("token_revoked", token_id=args.id)
        print(f"revoked token {args.id} of {name}")
    elif args.command in ("grant", "revoke"):
        getattr(store, args.command)(name, args.permission)
        granted = args.command == "grant"
        log("permission_granted" if granted else "permission_revoked", permission=args.permission)
        note = " (an admin holds every permission regardless)" if store.is_admin(name) else ""
        print(f"{'granted' if granted else 'revoked'} {args.permission} {'to' if granted else 'from'} {name}{note}")


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container user with no passwd entry and no $USER
        return str(os.getuid())


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.makedirs(args.jobs_dir, exist_ok=True)
    store = AccountStore(args.jobs_dir)
    jobs_path = os.path.abspath(args.jobs_dir)

    def log(action: str, **details) -> None:
        record(jobs_path, action, user=args.name, by=_operator(), via="digits.users", **details)

    try:
        run(store, args, log)
    except AccountError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
