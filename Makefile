# Assetvault: `make serve` and `make test` each install everything they need first.
.PHONY: install serve test test-fast lint bench soak clean

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
	$(PY) -m pytest -q -n 2 --dist loadfile -m "not soak"

test-fast: install
	$(PY) -m pytest -q -m "not e2e and not slow and not soak"

# Long runs, not part of `make test`: schemathesis at 110 cases per operation (5,390 in
# all), kill -9 under mixed load 24 times, and a 30-minute soak at a steady mixed rate.
# Reports: tests/artifacts/fuzz/report.json and tests/artifacts/soak/report.json.
soak: install
	ASSETVAULT_FUZZ_EXAMPLES=110 $(PY) -m pytest -q -s tests/e2e/test_author_api_contract.py -k schemathesis
	ASSETVAULT_KILLS=24 $(PY) -m pytest -q -s tests/soak/test_kills.py
	$(PY) -m pytest -q -s -m soak tests/soak

bench: install
	$(PY) bench/run.py

clean:
	rm -rf .venv tests/e2e/node_modules tests/e2e/browser/node_modules ui/node_modules src/assetvault/api/ui/static/vendor .pytest_cache
