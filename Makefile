# The only entry points. `.ci/run` calls these, nothing else.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run demo test check unit fmt migrate bench soak clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip==25.3
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

## run: install, migrate ./var/issuance.db, load the sandbox configuration, serve on :8000
run: $(STAMP)
	$(BIN)/issuance serve --sandbox --host $(HOST) --port $(PORT)

## demo: the sandbox and the example issuer (examples/issuer_app.py) in a temporary directory;
## a live table of each card as the issuer sees it next to the platform's (ports 8000 and 9001)
demo: $(STAMP)
	$(BIN)/issuance demo

## migrate: upgrade the configured database to the latest schema
migrate: $(STAMP)
	$(BIN)/issuance migrate

## check: lint, format check, strict typing (tests/, bench/ and examples/ too), architecture contracts
check: $(STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples
	$(BIN)/mypy --strict src
	$(BIN)/mypy --strict bench examples
	$(BIN)/mypy --strict tests
	$(BIN)/lint-imports

## test: every check, then every test (PostgreSQL ones when a server answers)
test: check
	$(BIN)/pytest -n 2 --dist loadgroup

## soak: the reliability suite at full size (thousands of orders; README "Tests"); `make test`
## runs its short version
soak: $(STAMP)
	RELIABILITY_PROFILE=soak $(BIN)/pytest tests/reliability -n 2 --dist loadgroup -p no:randomly

## bench: delivery throughput and lag next to the raw POST ceiling (SQLite, then PostgreSQL at
## ISSUANCE_BENCH_DATABASE_URL); the worker's POST path without a database; claims behind a backlog, before and after parking; order intake (SQLite; PostgreSQL with 1 and 2 API processes),
## status with a million orders (SQLite, PostgreSQL), and a file import of IMPORT_LINES lines
## (default 1,000,000) next to an executemany of its rows, each next to its ceiling measured in the
## same run; instructions per order, platform and ceiling, counted by valgrind; and a bureau's production report of 30,000 lines (SQLite, PostgreSQL); writes bench/results/*.json and bench/RESULTS.md. Intake takes ~4 minutes a run
## (three rounds; ~7 on PostgreSQL, with its second ceiling), status ~6 a run on a quiet machine
## (seeding a million orders is most of it).
BENCH_PG ?= $${ISSUANCE_BENCH_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/bench_delivery}
BENCH_PG_CLAIMS ?= postgresql+psycopg://postgres@127.0.0.1:5432/bench_claims
BENCH_PG_INTAKE ?= postgresql+psycopg://postgres@127.0.0.1:5432/bench_intake
BENCH_PG_STATUS ?= postgresql+psycopg://postgres@127.0.0.1:5432/bench_status
BENCH_PG_IMPORT ?= postgresql+psycopg://postgres@127.0.0.1:5432/bench_import
BENCH_PG_REPORT ?= postgresql+psycopg://postgres@127.0.0.1:5432/bench_report
IMPORT_LINES ?= 1000000
bench: $(STAMP)
	for run in "sqlite 1 1" "sqlite 2 1" "sqlite 1 10" "postgresql 1 1" "postgresql 2 1" "postgresql 1 10"; do \
		set -- $$run; url=""; [ $$1 = postgresql ] && url="--database-url $(BENCH_PG)"; \
		$(BIN)/python bench/delivery.py --workers $$2 --per-call $$3 $$url \
			--json bench/results/delivery-$$1-w$$2-k$$3.json || exit 1; \
	done
	$(BIN)/python bench/worker_path.py --json bench/results/worker-path.json
	$(BIN)/python bench/claims.py --json bench/results/claims-sqlite.json
	$(BIN)/python bench/claims.py --database-url $(BENCH_PG_CLAIMS) --json bench/results/claims-postgresql.json
	$(BIN)/python bench/intake.py --json bench/results/intake-sqlite-p1.json
	$(BIN)/python bench/intake_stages.py --json bench/results/stages-sqlite.json
	$(BIN)/python bench/intake_instructions.py --json bench/results/instructions-sqlite.json
	$(BIN)/python bench/intake_stages.py --database-url $(BENCH_PG_INTAKE) \
		--json bench/results/stages-postgresql.json
	for processes in 1 2; do \
		$(BIN)/python bench/intake.py --database-url $(BENCH_PG_INTAKE) --api-processes $$processes \
			--json bench/results/intake-postgresql-p$$processes.json || exit 1; \
	done
	$(BIN)/python bench/status.py --json bench/results/status-sqlite.json
	$(BIN)/python bench/status.py --database-url $(BENCH_PG_STATUS) \
		--json bench/results/status-postgresql.json
	$(BIN)/python bench/import_file.py $(IMPORT_LINES) --json bench/results/import-sqlite.json
	$(BIN)/python bench/import_file.py $(IMPORT_LINES) --database-url $(BENCH_PG_IMPORT) \
		--json bench/results/import-postgresql.json
	$(BIN)/python bench/production_report.py 10000 --json bench/results/report-sqlite.json
	$(BIN)/python bench/production_report.py 10000 --database-url $(BENCH_PG_REPORT) \
		--json bench/results/report-postgresql.json
	$(BIN)/python bench/report.py

## fmt: apply the formatter and the safe lint fixes
fmt: $(STAMP)
	$(BIN)/ruff check --fix src tests bench examples
	$(BIN)/ruff format src tests bench examples

clean:
	rm -rf $(VENV) var/*.db var/*.db-* .pytest_cache .mypy_cache .ruff_cache
