# spotgate developer entry points. `make` lists them.
#
# Recipes run under /bin/sh. Every recipe that needs Redis runs $(WITH_REDIS) in the same
# shell line as its command, so REDIS_URL reaches the processes it starts and a private
# Redis started for the run is stopped when that shell exits, also on failure or Ctrl-C.

PYTHON_BOOTSTRAP ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
WEB_PORT ?= 8000
PAPER_PORT ?= 8900

# The output is captured first: `eval "$$(failing command)"` would succeed on empty output.
WITH_REDIS = redis_env="$$(scripts/ensure_redis.sh)" && eval "$$redis_env" && \
	trap 'scripts/stop_private_redis.sh' EXIT && trap 'exit 130' INT && trap 'exit 143' TERM

.DEFAULT_GOAL := help
.PHONY: help venv demo-keys run check test soak bench clean

help: ## List the targets.
	@echo "spotgate make targets:"
	@grep -E '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'
	@echo "Variables: PYTEST_ARGS=\"tests/test_config.py -x\"  REDIS_URL=redis://host:6379/0"

venv: $(VENV)/.installed ## Create .venv and install requirements.txt.

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON_BOOTSTRAP) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	touch $@

# The paper exchange's demo RSA and Ed25519 key pairs (.run/demo-keys/, made once per clone, never
# committed); the paper exchange registers their public halves by default.
demo-keys: venv ## Make the paper exchange's demo RSA/Ed25519 key pairs when absent.
	@$(PY) -m paper_exchange.demo_keys .run/demo-keys >/dev/null

# honcho reads .env, then .run/run.env (read last, so it wins): the Redis that ensure_redis.sh chose
# (maybe a private one on a random port), the ports, and the paper exchange's URLs for every process.
# Ctrl-C stops every process (honcho) and ends without a make error line: honcho's 130 is a clean stop.
run: venv demo-keys ## Start the whole system in paper mode (Procfile.dev); WEB_PORT=8000 PAPER_PORT=8900.
	@echo "spotgate (paper mode): starting; a \"ready\" line follows once every process answers"
	$(WITH_REDIS) && trap : INT && mkdir -p .run && \
		{ printf 'REDIS_URL=%s\n' "$$REDIS_URL"; \
		  printf 'WEB_PORT=%s\nPAPER_PORT=%s\n' '$(WEB_PORT)' '$(PAPER_PORT)'; \
		  printf 'BINANCE_API_URL=http://127.0.0.1:%s\n' '$(PAPER_PORT)'; \
		  printf 'BINANCE_STREAM_URL=ws://127.0.0.1:%s\n' '$(PAPER_PORT)'; \
		  printf 'BINANCE_WS_API_URL=ws://127.0.0.1:%s/ws-api/v3\n' '$(PAPER_PORT)'; } > .run/run.env && \
		$(VENV)/bin/honcho -f Procfile.dev -e .env,.run/run.env start; \
		status=$$?; [ "$$status" -eq 130 ] && status=0; exit $$status

# Static checks: no Redis, no network. Every check runs, so one pass reports all of them; the target
# fails if any failed. Configuration: pyproject.toml (ruff, [tool.importlinter], [tool.mypy]).
check: venv ## Static checks: ruff (lint + format check), import contracts, mypy.
	@status=0; \
	echo "== ruff check"; $(VENV)/bin/ruff check . || status=1; \
	echo "== ruff format --check"; $(VENV)/bin/ruff format --check --output-format concise . || status=1; \
	echo "== lint-imports"; $(VENV)/bin/lint-imports --no-logo || status=1; \
	echo "== mypy"; $(VENV)/bin/mypy || status=1; \
	exit $$status

test: check ## Static checks, then the whole test suite (PYTEST_ARGS=... to narrow it).
	scripts/ensure_chromium.sh
	$(WITH_REDIS) && \
		$(PY) -m pytest $(PYTEST_ARGS)

SOAK_ARGS ?=
soak: venv ## Run the long-form scale suites (tests marked soak: orders, streams, Redis restart, load).
	$(WITH_REDIS) && \
		$(PY) -m pytest -m soak -p no:cacheprovider $(SOAK_ARGS)

# bench/report.py runs every bench/*.py (not the _helpers), then writes bench/results.json and the
# README's benchmark table; a failed script fails the target, a missed target is reported.
bench: venv ## Run every benchmark; write bench/results.json and README's benchmark table.
	scripts/ensure_chromium.sh
	$(WITH_REDIS) && \
		$(PY) bench/report.py

clean: ## Remove the venv, caches and .run/ (stops a private Redis left there).
	if [ -s .run/redis.pid ]; then \
		SPOTGATE_PRIVATE_REDIS_PID="$$(cat .run/redis.pid)" scripts/stop_private_redis.sh; fi
	rm -rf $(VENV) .run .pytest_cache .hypothesis .ruff_cache .mypy_cache .import_linter_cache
	find . -name __pycache__ -type d -prune -not -path './.git/*' -exec rm -rf {} +
