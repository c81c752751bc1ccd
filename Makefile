# The two commands that matter: `make run` and `make test`. Everything else is a helper.
VENV := .venv
BIN := $(VENV)/bin
# Python 3.12+ (Django 6.1): the first of these that exists and is new enough.
PYTHON ?= $(shell for p in python3.12 python3.13 python3 $(HOME)/.pyenv/versions/3.12*/bin/python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null \
	&& { command -v $$p; break; }; done)
PYTEST_WORKERS ?= auto

.PHONY: run test lint install screenshots clean bench serve

$(BIN)/.installed: pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.12 or newer is required (Django 6.1)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $@

install: $(BIN)/.installed

run: install
	DEBUG=1 $(BIN)/python manage.py migrate --noinput
	DEBUG=1 $(BIN)/python manage.py seed_demo
	DEBUG=1 $(BIN)/python manage.py runserver 127.0.0.1:8000

# Bytecode is written even where the environment says not to: every xdist worker would
# otherwise compile the project and its dependencies from source (~5 s of CPU each).
# loadgroup: the tests of one xdist_group (tests/faults: one deployment on loopback) run in one
# worker; every other test is spread as before.
test: install
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

screenshots: install
	SCREENSHOTS=1 $(BIN)/python -m pytest tests/browser/test_screenshots.py -p no:xdist -q

# Benchmarks: their own database on the machine's PostgreSQL, ratios printed and written to
# bench/RESULTS.md. Peers compared against are installed into .venv-bench only.
bench: install
	bash bench/run.sh

# The production configuration on one machine: gunicorn, whitenoise, PostgreSQL, Redis.
serve: install
	bash deploy/serve.sh

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles
