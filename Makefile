SHELL := /bin/bash
# Everything sets itself up: a fresh clone needs only python3 (>= 3.11) and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint screenshots bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/tui-helpdesk init --demo --as $${TUI_HELPDESK_AS:-ada@acme.test}
	$(BIN)/tui-helpdesk --as $${TUI_HELPDESK_AS:-ada@acme.test}

# Four processes on the two cores: much of the suite waits on sockets, subprocesses and the
# databases, so two processes left the cores idle a third of the time (5m23 -> 4m32 here).
# A test file stays in one process, so module fixtures (the test sshd, the DNS server) start once.
test: $(STAMP)
	$(BIN)/python -m pytest -rA -p no:cacheprovider -n 4 --dist loadfile $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check tui_helpdesk tests bench
	$(BIN)/ruff format --check tui_helpdesk tests bench
	$(BIN)/lint-imports

screenshots: $(STAMP)
	$(BIN)/python -m tui_helpdesk.tui.screenshots screenshots

bench: $(STAMP)
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) .pytest_cache
