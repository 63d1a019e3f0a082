# The two commands a newcomer needs, on a fresh machine of this project's kind (Python and pip, apt as root,
# no GPU, no model hub): `make demo` sets up and runs the main job, `make test` sets up and runs every test.
PYTHON ?= python3
PIP := $(PYTHON) -m pip
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test install install-dev lint

# The CPU build of torch must come first: an unpinned torch pulls a CUDA build of several GB.
install:
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e .

install-dev:
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[dev,mteb,sentence-transformers]"

demo: install
	$(PYTHON) -m promptembedder setup demo
	$(PYTHON) -m promptembedder demo

test: install-dev
	$(PYTHON) -m promptembedder setup tests
	$(PYTHON) -m pytest -q -rs

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
