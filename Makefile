# Two commands: `make demo` runs the example DAGs against the Jira Cloud emulator,
# `make test` runs the whole test suite. Both install what they need into .venv first.
# `make compat` checks the older Airflow minors (constraints/), each in its own virtualenv.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: install browser demo test compat bench clean

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

test: install browser
	$(PY) -m pytest $(PYTEST_ARGS)

# Each older supported Airflow minor, installed with its pins from constraints/: fast tests,
# `airflow providers hooks`, every example DAG. COMPAT_MINORS="3.1" checks just that one.
compat:
	PYTHON=$(PYTHON) scripts/compat.sh $(COMPAT_MINORS)

bench: install
	$(PY) bench/search_throughput.py
	$(PY) bench/refresh_economy.py

clean:
	rm -rf $(VENV) .airflow-demo .compat
