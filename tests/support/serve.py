"""Start the real devserver (gevent, Socket.IO, real workers) with the test harness routes added."""

from gevent import monkey

monkey.patch_all()

import sys  # noqa: E402

from digits.server import main  # noqa: E402
from tests.support.harness import bp  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], extend=lambda app: app.register_blueprint(bp)))
