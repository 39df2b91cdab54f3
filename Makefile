# Assetvault: `make serve` and `make test` each install everything they need first.
.PHONY: install serve test test-fast lint bench clean

PY := .venv/bin/python
HOST ?= 127.0.0.1
PORT ?= 4502
DATA_DIR ?= ./assetvault-data

install:
	bash scripts/bootstrap.sh

serve: install
	.venv/bin/assetvault serve --host $(HOST) --port $(PORT) --data-dir $(DATA_DIR)

lint: install
	.venv/bin/ruff check src tests bench scripts
	.venv/bin/ruff format --check src tests bench scripts
	.venv/bin/mypy
	.venv/bin/lint-imports --no-cache
	$(PY) scripts/check_write_path.py

test: install lint
	$(PY) -m pytest -q -n 2 --dist loadfile

test-fast: install
	$(PY) -m pytest -q -m "not e2e and not slow"

bench: install
	$(PY) bench/run.py

clean:
	rm -rf .venv tests/e2e/node_modules tests/e2e/browser/node_modules ui/node_modules src/assetvault/api/ui/static/vendor .pytest_cache
