# evfleet: `make demo` (try it, no servers needed) and `make test`. See README.md.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
MANAGE := $(PY) manage.py
HOST ?= 127.0.0.1
PORT ?= 8000
export PYBAMM_DISABLE_TELEMETRY := true

.PHONY: help venv migrate demo serve test lint format check-project security pytest test-fast bench bench-peers bench-scarce-exact schema clean messages vendor-static smoke faults

help:
	@echo "make demo   - set up .venv, migrate (SQLite), load the demo fleet, run tonight's jobs, serve on $(HOST):$(PORT) with the OCPP central system and simulated chargers"
	@echo "make test   - lint, Django checks, migrations check, OpenAPI validation, the test suite"
	@echo "make bench  - the speed and scale benchmarks (writes bench/results/)"
	@echo "make bench-scarce-exact - scarce nights vs the exact MILP, HiGHS and SCIP (its own venv, $(SCIP_VENV))"
	@echo "make bench-peers - acnportal's own LLF/EDF (in its own venv, $(ACN_VENV)) beside ours on the ACN-Data weeks"
	@echo "make smoke  - production settings, collectstatic, check --deploy, gunicorn answering (in make test too)"
	@echo "make faults - gunicorn, PostgreSQL and Redis outages under load, counted (in make test too)"

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

migrate: venv
	@mkdir -p var
	$(MANAGE) migrate --no-input

# The demo's live depot runs beside the web app: the OCPP central system on ws://$(HOST):$(OCPP_PORT)/ocpp and the
# demo depots' chargers simulated against it (console's demo_services); Ctrl-C stops all three.
OCPP_PORT ?= 9000

demo: migrate
	$(MANAGE) load_demo
	$(MANAGE) run_night --all-depots
	@echo
	@echo "evfleet is serving on http://$(HOST):$(PORT)/  (admin: /admin/, API docs: /api/docs/), its OCPP central"
	@echo "system on ws://$(HOST):$(OCPP_PORT)/ocpp with the demo's chargers simulated (admin: Charge points -> Charger board)."
	@echo "Ctrl-C stops them all."
	$(MANAGE) demo_services --ocpp-host $(HOST) --ocpp-port $(OCPP_PORT) --runserver $(HOST):$(PORT)

serve: migrate
	$(MANAGE) runserver $(HOST):$(PORT)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

check-project: venv
	$(MANAGE) check --fail-level WARNING
	$(MANAGE) makemigrations --check --dry-run
	$(MANAGE) spectacular --validate --fail-on-warn --file /dev/null
	DJANGO_ENV=production SECRET_KEY=ci-only-$$(head -c 48 /dev/urandom | base64 | tr -d '/+=') ALLOWED_HOSTS=evfleet.example \
		$(MANAGE) check --deploy --fail-level WARNING

# Static security analysis (bandit), medium severity and up; justified exceptions carry "# nosec BXXX".
security: venv
	$(VENV)/bin/bandit -r config jobs fleet batteries charging notifications csms timetable citydata console -ll -q -x '*/migrations/*,*/tests/*'

pytest: venv
	$(PY) -m pytest $(PYTEST_ARGS)

# `make test` is what CI runs (with DATABASE_URL, REDIS_URL and EVFLEET_REQUIRE_SERVICES=1 set by .ci/run).
test: lint check-project security pytest

# The README's production steps against gunicorn (also part of `make test`), and the fault-injection suite
# (private PostgreSQL cluster and Redis; needs initdb and redis-server). -s prints their counts.
smoke: venv
	$(PY) -m pytest tests/deploy -s -q $(PYTEST_ARGS)

faults: venv
	$(PY) -m pytest tests/faults -s -q $(PYTEST_ARGS)

test-fast: venv
	$(PY) -m pytest -m "not slow" -x $(PYTEST_ARGS)

bench: venv
	$(PY) bench/run_all.py

# Issue 14's peer: acnportal's LeastLaxityFirst/EarliestDeadlineFirst on bench_acn.py's weeks, in a venv of its own
# (never the project's), then bench_acn.py with those rows in its table. Not part of `make test` or `make bench`.
ACN_VENV ?= var/acnportal-venv
PEERS_TAG ?= acnportal
PEERS_JSON ?= bench/results/acnportal-$(shell date +%F)-$(PEERS_TAG).json
bench-peers: venv $(ACN_VENV)/.installed
	$(ACN_VENV)/bin/python bench/peers/acnportal_llf.py --out $(PEERS_JSON)
	$(PY) bench/bench_acn.py --peers $(PEERS_JSON) --tag $(PEERS_TAG)

$(ACN_VENV)/.installed: bench/peers/requirements.txt
	@test -x $(ACN_VENV)/bin/python || $(PYTHON) -m venv $(ACN_VENV)
	$(ACN_VENV)/bin/python -m pip install --quiet -r bench/peers/requirements.txt
	@touch $@

# Issue 14's exact MILP on the scarce nights, proven by HiGHS and SCIP at once: SCIP (PySCIPOpt's wheel) in a venv
# of its own (never the project's), called by bench/exact_by_charger.py. Not part of `make test` or `make bench`.
SCIP_VENV ?= var/scip-venv
EXACT_LIMIT ?= 480
bench-scarce-exact: venv $(SCIP_VENV)/.installed
	$(PY) bench/bench_optimizer_scarce.py --only-scarce --exact-limit $(EXACT_LIMIT) --exact-solver both \
		--scip-python $(SCIP_VENV)/bin/python --no-replan-search --label exact-quiet

$(SCIP_VENV)/.installed: bench/peers/scip-requirements.txt
	@test -x $(SCIP_VENV)/bin/python || $(PYTHON) -m venv $(SCIP_VENV)
	$(SCIP_VENV)/bin/python -m pip install --quiet -r bench/peers/scip-requirements.txt
	@touch $@

# Translations: update the catalogue after changing strings, then compile (needs gettext).
# Our catalogues: Mexican Spanish and German. The model and field names Django derives are written out first
# (config/i18n.py) so that makemessages finds them; new msgids arrive untranslated (tests/admin_ui/test_untranslated.py
# lists them until they are translated).
LOCALES := -l es_MX -l de
messages: venv
	$(MANAGE) derived_msgids
	$(MANAGE) makemessages $(LOCALES) --ignore=.venv --ignore=var --ignore=bench --ignore=tests --ignore=test-artifacts --no-obsolete
	$(MANAGE) compilemessages $(LOCALES) --ignore=.venv

# The chart and map libraries are vendored from the npm registry as static files (no CDN at run time). Chart.js's
# last line names a source map that is not shipped: stripped, or collectstatic's manifest storage fails.
vendor-static:
	cd $$(mktemp -d) && npm pack chart.js@4.5.1 >/dev/null && tar xzf chart.js-4.5.1.tgz && \
		cp package/dist/chart.umd.min.js package/LICENSE.md $(CURDIR)/static/vendor/chartjs/
	cd $$(mktemp -d) && npm pack leaflet@1.9.4 >/dev/null && tar xzf leaflet-1.9.4.tgz && \
		cp package/dist/leaflet.js package/dist/leaflet.css package/LICENSE $(CURDIR)/static/vendor/leaflet/ && \
		cp -r package/dist/images $(CURDIR)/static/vendor/leaflet/
	sed -i '/^\/\/# sourceMappingURL=/d' static/vendor/chartjs/chart.umd.min.js static/vendor/leaflet/leaflet.js
	! grep -rl 'sourceMappingURL' static/vendor/

schema: venv
	$(MANAGE) spectacular --validate --file docs/openapi.yaml

clean:
	rm -rf var .pytest_cache .ruff_cache
