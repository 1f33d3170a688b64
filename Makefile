# RDV Santé: the only entry points a newcomer needs.
#   make run    set everything up and serve web + worker on http://127.0.0.1:8000 (SQLite)
#   make test   the whole suite, on SQLite and on PostgreSQL
#   make lint   ruff + mypy
#   make bench  load and contention benchmarks against PostgreSQL (prints figures)
#   make drill  back up the demo, destroy the database, restore it, verify it: prints RTO and RPO

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
MANAGE := $(PY) manage.py
PG_URL ?= postgres://postgres@127.0.0.1:5432/rdv

.PHONY: secrets run test test-sqlite test-postgres lint bench drill messages migrate demo clean

$(VENV)/.base-installed: requirements/base.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements/base.lock
	touch $@

$(VENV)/.dev-installed: requirements/dev.lock $(VENV)/.base-installed
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements/dev.lock
	touch $@

# Idempotent: adds only the secrets var/local.env lacks (never replaces a key in use).
secrets:
	$(PYTHON) scripts/local_secrets.py var/local.env

messages: $(VENV)/.base-installed secrets
	command -v msgfmt >/dev/null || scripts/apt_install.sh gettext
	$(MANAGE) compilemessages --ignore=.venv -v0

migrate: $(VENV)/.base-installed secrets
	$(MANAGE) migrate --noinput -v0

demo: migrate
	$(MANAGE) seed_demo

# The day sheet (PDF) prints with DejaVu Sans: accented names need a Unicode font.
run: messages demo
	test -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf || scripts/apt_install.sh fonts-dejavu-core
	$(MANAGE) collectstatic --noinput -v0
	$(MANAGE) serve

# Both suites at once (scripts/test_both.sh): each alone is `make test-sqlite` / `make test-postgres`.
test: $(VENV)/.dev-installed secrets messages
	command -v chromium >/dev/null || scripts/apt_install.sh chromium
	command -v pdftoppm >/dev/null || scripts/apt_install.sh poppler-utils
	command -v nginx >/dev/null || scripts/apt_install.sh nginx-light
	test -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf || scripts/apt_install.sh fonts-dejavu-core
	scripts/ensure_postgres.sh
	scripts/ensure_redis.sh
	PYTEST_ARGS="$(PYTEST_ARGS)" scripts/test_both.sh $(PY) "$${DATABASE_URL:-$(PG_URL)}"

# tests/e2e drive Debian's Chromium (Playwright never downloads a browser here); the day
# sheet tests render PDFs with poppler's pdftoppm and need the DejaVu font.
test-sqlite: $(VENV)/.dev-installed secrets messages
	command -v chromium >/dev/null || scripts/apt_install.sh chromium
	command -v pdftoppm >/dev/null || scripts/apt_install.sh poppler-utils
	command -v nginx >/dev/null || scripts/apt_install.sh nginx-light
	test -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf || scripts/apt_install.sh fonts-dejavu-core
	scripts/ensure_redis.sh
	$(MANAGE) collectstatic --noinput -v0
	DATABASE_URL=sqlite:///$(CURDIR)/var/test-main.sqlite3 $(PY) -m pytest $(PYTEST_ARGS)

test-postgres: $(VENV)/.dev-installed secrets messages
	command -v chromium >/dev/null || scripts/apt_install.sh chromium
	command -v pdftoppm >/dev/null || scripts/apt_install.sh poppler-utils
	command -v nginx >/dev/null || scripts/apt_install.sh nginx-light
	test -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf || scripts/apt_install.sh fonts-dejavu-core
	scripts/ensure_postgres.sh
	scripts/ensure_redis.sh
	$(MANAGE) collectstatic --noinput -v0
	DATABASE_URL=$${DATABASE_URL:-$(PG_URL)} $(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev-installed secrets
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/bandit -c pyproject.toml -r rdv scripts -q

# A restore drill on a scratch PostgreSQL database (DRILL_DATABASE_URL; sqlite:///… works too).
drill: $(VENV)/.base-installed secrets messages
	scripts/ensure_postgres.sh
	$(MANAGE) drill --database-url "$${DRILL_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/rdv_drill}"

bench: $(VENV)/.dev-installed secrets messages
	scripts/ensure_postgres.sh
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .mypy_cache .ruff_cache .hypothesis
