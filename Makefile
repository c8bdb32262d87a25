# `make demo` and `make test` set everything up on a fresh machine with Python >= 3.10 and pip.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The runtime alone (numpy, OpenCV, ONNX Runtime; no torch), installed as a user would: `pip install .`
DEMO_VENV ?= .venv-demo
# The CPU build of torch (the CUDA build works too, it is just much larger).
TORCH ?= torch==2.13.0
SOURCES := $(shell find cartoongan -name '*.py' -o -name '*.onnx' -o -name '*.safetensors')

.PHONY: venv test demo bench clean

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[train,export,dev]"
	touch $@

venv: $(VENV)/.installed

test: $(VENV)/.installed
	$(PY) -m pytest -q

$(DEMO_VENV)/.installed: pyproject.toml Makefile $(SOURCES)
	$(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(DEMO_VENV)/bin/python -m pip install --quiet .
	touch $@

# Cartoonizes the example photo with the default model shipped in the package: demo/photo.jpg -> demo/photo_cartoon.jpg
demo: $(DEMO_VENV)/.installed
	mkdir -p demo
	cp examples/photo.jpg demo/photo.jpg
	$(DEMO_VENV)/bin/cartoongan cartoonize demo/photo.jpg -o demo/photo_cartoon.jpg --overwrite --no-progress
	@echo "before: demo/photo.jpg  after: demo/photo_cartoon.jpg"

bench: $(VENV)/.installed
	$(PY) benchmarks/model_stats.py
	$(PY) -m cartoongan.cli bench --sizes 256,512 --batch 1,4 --json bench.json --markdown bench.md --plot bench.png

clean:
	rm -rf $(VENV) $(DEMO_VENV) build *.egg-info .pytest_cache demo
