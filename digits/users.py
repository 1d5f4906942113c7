"""Manage a team server's accounts: `python -m digits.users --jobs-dir DIR add|token|list|remove|passwd ...`.

Passwords are read from standard input (one line), so they never appear in the shell history or `ps`.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from digits.accounts import AccountError, AccountStore


def read_password(prompt: str) -> str:
    if sys.stdin.isatty():
        first = getpass.getpass(prompt)
        if getpass.getpass("Again: ") != first:
            raise AccountError("the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m digits.users", description=__doc__.splitlines()[0])
    p.add_argument("--jobs-dir", default=os.environ.get("DIGITS_JOBS_DIR", "jobs"))
    sub = p.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add", help="add a user (password from stdin)")
    add.add_argument("name")
    add.add_argument("--admin", action="store_true", help="may abort, resume and delete everyone's jobs")
    sub.add_parser("list", help="list users")
    for name, text in (
        ("remove", "remove a user and their tokens"),
        ("passwd", "set a new password (stdin)"),
        ("token", "print a new API token for scripts (Authorization: Bearer <token>)"),
    ):
        sub.add_parser(name, help=text).add_argument("name")
    args = p.parse_args(argv)
    os.makedirs(args.jobs_dir, exist_ok=True)
    store = AccountStore(args.jobs_dir)
    try:
        if args.command == "add":
            store.add(args.name, read_password("Password: "), admin=args.admin)
            print(f"added {args.name}{' (admin)' if args.admin else ''}")
        elif args.command == "list":
            for name, admin in store.list():
                print(f"{name}{'  admin' if admin else ''}")
        elif args.command == "remove":
            store.remove(args.name)
            print(f"removed {args.name}")
        elif args.command == "passwd":
            store.set_password(args.name, read_password("New password: "))
            print(f"password changed for {args.name}")
        elif args.command == "token":
            print(store.new_token(args.name))
    except AccountError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
