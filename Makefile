# The two commands a newcomer needs: `make run` (the whole service, embedded) and `make test`.
PYTHON ?= python3
VENV := .venv

.PHONY: run test lint

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip

# Stamps: reinstall only when a requirements file changed.
$(VENV)/.run-installed: requirements.txt | $(VENV)/bin/python
	$(VENV)/bin/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.test-installed: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.run-installed

run: $(VENV)/.run-installed
	$(VENV)/bin/python -m mailer.embedded

test: $(VENV)/.test-installed
	$(VENV)/bin/python -m pytest

lint: $(VENV)/.test-installed
	$(VENV)/bin/ruff check mailer tests bench worker.py wsgi.py
	$(VENV)/bin/ruff format --check mailer tests bench worker.py wsgi.py
