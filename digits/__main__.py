"""`python -m digits` and the `digits-devserver` command."""

from gevent import monkey

monkey.patch_all()  # before anything else imports socket, threading or subprocess


def main() -> None:
    # Imported here, after patch_all: the server and everything it imports must see gevent's socket and threads.
    import sys

    from digits.server import main as serve_main

    sys.exit(serve_main())


if __name__ == "__main__":
    main()
