# Two commands: `make run` and `make test`. Every install step lives here.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000

# Test services (this machine runs them; `services` starts them if they are down).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/assistant
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0

.PHONY: run test lint format services browser install install-dev clean faults bench-load stop-redis

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch first, from the CPU wheel, so that nothing pulls a CUDA build.
$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# Development mode, said explicitly: the settings' own default is production-safe (DEBUG off).
run: export DEBUG ?= true
run: install
	$(BIN)/python manage.py migrate --noinput -v0
	@# A first model from the seed utterances serves within a minute; the best one (the seed and the public
	@# data) is queued for the worker, and the registry swaps it in when its gate passes.
	$(BIN)/python manage.py train_nlu --if-missing
	$(BIN)/python manage.py train_nlu --recipe best --background --if-missing
	@# The login and the address come last, just before the servers' logs.
	$(BIN)/python manage.py load_demo
	@echo "Open http://127.0.0.1:$(PORT)/  (Ctrl-C stops web, worker and beat)"
	@PORT=$(PORT) $(BIN)/honcho start -f Procfile

services:
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
	@redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
	@for i in $$(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 1; done

# Debian's Chromium for the Playwright browser tests (Playwright never downloads a browser here).
browser:
	@test -x /usr/bin/chromium || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

# ruff, then the import contracts of pyproject.toml (layers, no cycles, serving never imports training).
lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: install-dev services browser lint
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/python -m pytest

# The fault suite (slow, not part of `make test`): kill -9 a worker and a web process, restart
# Redis, terminate Postgres connections, each under load, on a database of its own.
FAULTS_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/assistant_faults
FAULTS_ENV = DATABASE_URL=$(FAULTS_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) SECRET_KEY=faults-only-secret-key-0123456789abcdefghijklmnop
faults: install-dev services
	@psql -h 127.0.0.1 -U postgres -tc "SELECT 1 FROM pg_database WHERE datname = 'assistant_faults'" | grep -q 1 || createdb -h 127.0.0.1 -U postgres assistant_faults
	$(FAULTS_ENV) $(BIN)/python manage.py migrate --noinput -v0
	$(FAULTS_ENV) $(BIN)/python manage.py train_nlu --if-missing
	$(FAULTS_ENV) $(BIN)/python manage.py faults

# The load benchmark (issue figures: 500 sockets, 50 turns/s for 60 s on two web processes, one per
# core; the knee with 1 and 2 web processes).
bench-load: install-dev services
	@psql -h 127.0.0.1 -U postgres -tc "SELECT 1 FROM pg_database WHERE datname = 'assistant_faults'" | grep -q 1 || createdb -h 127.0.0.1 -U postgres assistant_faults
	$(FAULTS_ENV) $(BIN)/python manage.py migrate --noinput -v0
	$(FAULTS_ENV) $(BIN)/python manage.py train_nlu --if-missing
	$(FAULTS_ENV) $(BIN)/python manage.py bench_load --workers 2 --sockets 500 --rate 50 --duration 60 --json
	$(FAULTS_ENV) $(BIN)/python manage.py bench_load --workers 1 --sockets 500 --knee 10,15,20,25,30,40,50 --json
	$(FAULTS_ENV) $(BIN)/python manage.py bench_load --workers 2 --sockets 500 --knee 10,15,20,25,30,40,50,60,70,80 --json

# The embedded Redis `make run` starts when REDIS_URL is not set keeps running after it (the next
# run uses it again); this stops it.
stop-redis:
	@test ! -x $(BIN)/python || $(BIN)/python -c "import os; from pathlib import Path; from assistant import embedded_redis; print('stopped' if embedded_redis.stop(Path(os.environ.get('VAR_DIR', 'var'))) else 'not running')"

clean: stop-redis
	rm -rf var .pytest_cache .ruff_cache
