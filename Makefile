# Two commands: `make demo` runs the example DAGs against the Jira Cloud emulator,
# `make test` runs the whole test suite. Both install what they need into .venv first.
# `make compat` checks the older Airflow minors (constraints/), each in its own virtualenv.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: install browser demo test compat bench mutation clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip uv
	$(VENV)/bin/uv pip install --quiet --python $(PY) -e ".[test,bench]"
	touch $@

demo: install
	$(PY) scripts/run_examples.py

# The browser test (tests/ui) drives Debian's chromium through Playwright; `playwright install`
# is never used (it downloads browser builds from outside the package registries).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
	  else \
	    echo "Debian's chromium is missing (apt-get install chromium): tests/ui will be skipped"; \
	  fi; \
	fi

# The whole suite, spread over TEST_WORKERS pytest-xdist workers (each with its own metadata
# database and Airflow home, see tests/conftest.py): most tests wait on sockets and on Airflow
# processes, so four workers keep two cores busy. A test file goes to one worker whole, so a
# module's Airflow deployment starts once; the slowest folders go first (tests/conftest.py).
# TEST_WORKERS=0 runs the suite in one process.
TEST_WORKERS ?= 4

test: install browser
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

# Each older supported Airflow minor, installed with its pins from constraints/: fast tests,
# `airflow providers hooks`, every example DAG. COMPAT_MINORS="3.1" checks just that one.
compat:
	PYTHON=$(PYTHON) scripts/compat.sh $(COMPAT_MINORS)

bench: install
	$(PY) bench/search_throughput.py
	$(PY) bench/refresh_economy.py

# Mutation testing with mutmut (not part of `make test`): how many small changes to the core
# modules (pyproject.toml [tool.mutmut]) the fast suites notice; prints killed, survived and
# timed out per module. `.venv/bin/mutmut show <name>` shows a mutant.
mutation: install
	$(VENV)/bin/uv pip install --quiet --python $(PY) "mutmut>=3,<4"
	$(VENV)/bin/mutmut run $(MUTMUT_ARGS) > mutants.log 2>&1; status=$$?; \
	  $(PY) scripts/mutation_report.py; \
	  [ $$status -eq 0 ] || { tail -c 3000 mutants.log; exit $$status; }

clean:
	rm -rf $(VENV) .airflow-demo .compat mutants mutants.log
