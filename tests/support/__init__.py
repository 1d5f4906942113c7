"""What the tests share: the checkout's root, request headers, and how long a test may wait for something.

The modules beside this one hold the shared pieces of setup: `waiting` (events, states, deadlines), `live` (the
real server as a process, Socket.IO rooms), `apps` (in-process apps, settings overrides, signed-in test clients),
`accounts` (team members), `forms` (the dataset and model forms), `datasets` (ready-made dataset folders),
`commands` (`python -m ...`), `browser` (Chromium), `fakejobs`, `imagegen`, `zips` and `disk`. The fixtures
made of them are in tests/conftest.py.

Markers (pyproject.toml): `browser` for tests that drive Chromium, `slow` for those that train real networks or
take more than about 10 s. `make test` runs them all; `pytest -m "not slow and not browser"` is the quick loop.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
JSON = {"Accept": "application/json"}
HTML = {"Accept": "text/html"}
