# Rampart: `make run` serves the demo on the embedded default; `make test` runs the whole suite.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
# This machine's pip prints a warning per package about mirrors it skips; keep the output readable.
QUIET_PIP := 2>&1 | { grep -v "^WARNING: Location" || true; }
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/postgres
TEST_BROKER_URL ?= redis://127.0.0.1:6379/15

.PHONY: run test test-fast pytest setup-run setup-test migrate clean

$(VENV)/.run-installed: requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip $(QUIET_PIP)
	$(PY) -m pip install -q -r requirements.txt $(QUIET_PIP)
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt $(VENV)/.run-installed
	$(PY) -m pip install -q -r requirements-dev.txt $(QUIET_PIP)
	touch $@

setup-run: $(VENV)/.run-installed
	$(PY) manage.py migrate --noinput -v0
	$(PY) manage.py load_catalogues >/dev/null
	EMAIL_BACKEND=django.core.mail.backends.locmem.EmailBackend $(PY) manage.py seed_demo >/dev/null
	$(PY) manage.py collectstatic --noinput -v0

run: setup-run
	@echo ""
	@echo "  Rampart is starting at http://127.0.0.1:$(PORT)/  (Ctrl-C stops web, worker and beat)"
	@echo "  Embedded default: SQLite in var/, a file-system broker, one Celery worker with beat beside the web."
	@echo ""
	@echo "  Demo logins (password: rampart-demo):"
	@echo "    CISO           ciso@rampart.local"
	@echo "    Product owner  po@rampart.local  (and po2@rampart.local)"
	@echo "    Engineer       engineer@rampart.local"
	@echo "    Facilitator    facilitator@rampart.local"
	@echo "    Admin          admin@rampart.local"
	@echo ""
	@trap 'kill 0' EXIT INT TERM; \
	  $(VENV)/bin/celery -A worker worker -B --concurrency 1 --loglevel WARNING & \
	  $(PY) manage.py runserver 127.0.0.1:$(PORT) --noreload

setup-test: $(VENV)/.dev-installed
	@DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) $(PY) scripts/check_services.py
	@./scripts/ensure_chromium.sh
	@./scripts/ensure_mlflow.sh

test: setup-test
	DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) $(VENV)/bin/pytest -q $(ARGS)

# The inner loop: everything but the browser, real-worker and MLflow-server tests. `make test` stays the whole suite.
test-fast: $(VENV)/.dev-installed
	DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) $(VENV)/bin/pytest -q \
	  -m "not browser and not worker" --ignore=tests/lineage/test_mlflow.py $(ARGS)

# Run part of the suite without the set-up steps: make pytest ARGS="tests/inventory -x"
pytest:
	DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) $(VENV)/bin/pytest -q $(ARGS)

clean:
	rm -rf var/ .pytest_cache
