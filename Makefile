# Two commands do everything on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast bench lint typecheck clean

$(STAMP): pyproject.toml Makefile
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# The CPU wheel of torch 2.13.0 lies on disk here; any looser pin pulls a multi-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev,studio,ray]'
	# the studio's browser tests drive Debian's chromium (playwright-python, no browser download)
	if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ]; then \
		apt-get install -y -q chromium || (apt-get update -q && apt-get install -y -q chromium); fi
	# facenet-pytorch ships the MTCNN weights we load into our own network; its own code pins an
	# old torch, so install it without dependencies and never import it.
	$(BIN)/pip install -q --no-deps facenet-pytorch==2.6.0
	# mediapipe ships the Face Mesh model the `mesh` landmarkers run with OpenCV (never imported;
	# its own dependencies would pull numpy<2 and opencv-contrib)
	$(BIN)/pip install -q --no-deps mediapipe==0.10.21
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/facetwin demo -o demo_out

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) demo_out build *.egg-info
