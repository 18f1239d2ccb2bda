# Two commands for a newcomer: `make run` and `make test`. Both set themselves up first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
READY := $(VENV)/.ready

.PHONY: run test lint format migrate up down images bench clean

$(READY): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11 or newer is needed (found: $$($(PYTHON) --version))"; exit 1; }
	@$(PYTHON) -m venv --help >/dev/null 2>&1 && $(PYTHON) -c 'import ensurepip' 2>/dev/null || \
		{ echo "Python's venv module is missing: apt-get install python3-venv"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(READY)

run: $(READY)  ## the whole system on this machine, SQLite files under var/
	$(PY) -m services

test: $(READY)  ## every test; PostgreSQL tests start a throwaway cluster
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(READY)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(READY)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

migrate: $(READY)  ## bring every service's database to the newest schema
	$(PY) -m services migrate

images:  ## the container images: air-gapped base, PostgreSQL, and siapnet:latest
	bash deploy/docker-engine.sh
	bash deploy/airgap/build-base.sh
	BASE_IMAGE=$${BASE_IMAGE:-siapnet-base:bookworm} bash deploy/build-image.sh

up: $(READY)  ## the exchange in containers on PostgreSQL (deploy/compose.yaml)
	bash deploy/compose.sh up

down:
	bash deploy/compose.sh down

bench: $(READY)  ## load and totals benchmark: numbers, JSON and a chart in bench/results/
	@command -v wrk >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq wrk >/dev/null; } \
		|| { echo "the benchmark needs wrk: apt-get install wrk"; exit 1; }
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
