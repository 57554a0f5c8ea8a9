PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# pytest-xdist workers: one per core, at most 4 (each holds its own torch and fixtures)
JOBS ?= $(shell nproc 2>/dev/null | awk '{print ($$1 > 4) ? 4 : $$1}')
PYTEST := $(PY) -m pytest -q -n $(JOBS) --dist loadscope

.PHONY: demo test quick bench bench-gpu lint clean

# (Re)create the virtual environment when it is missing or pyproject.toml changed.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) cli.py demo --overwrite

# The whole suite (one pytest-xdist worker per core, a test module's tests on one worker so its
# fixtures are built once), then the numerics tests again under every other ATen CPU capability
# this machine has (default, avx2; tests/cpu_capabilities.py), so that no result depends on the
# kernels.
test: $(STAMP)
	$(PYTEST)
	caps=$$($(PY) -m tests.cpu_capabilities) && for cap in $$caps; do \
		echo "numerics tests with ATEN_CPU_CAPABILITY=$$cap"; \
		ATEN_CPU_CAPABILITY=$$cap $(PY) -m pytest -q -m numerics -p no:cacheprovider || exit 1; \
	done

# The quick loop while editing (under 2 minutes): everything but the tests marked slow.
quick: $(STAMP)
	$(PYTEST) -m "not slow"

bench: $(STAMP)
	$(PY) -m benchmarks

bench-gpu: $(STAMP)
	bash benchmarks/gpu.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) demo_out .pytest_cache
