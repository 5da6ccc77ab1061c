# Two commands: `make demo` runs the example DAGs against the Jira Cloud emulator,
# `make test` runs the whole test suite. Both install what they need into .venv first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: install demo test bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip uv
	$(VENV)/bin/uv pip install --quiet --python $(PY) -e ".[test,bench]"
	touch $@

demo: install
	$(PY) scripts/run_examples.py

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

bench: install
	$(PY) bench/search_throughput.py
	$(PY) bench/refresh_economy.py

clean:
	rm -rf $(VENV) .airflow-demo
