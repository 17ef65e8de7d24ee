# The two commands a newcomer needs:
#   make demo   set everything up, then run the synthetic benchmark end to end with the offline model
#   make test   set everything up, then run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test bench clean

setup: $(STAMP)

$(STAMP): requirements.txt constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet pip==26.3
	$(BIN)/pip install --quiet -r requirements.txt -c constraints.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/artid demo

test: $(STAMP)
	$(BIN)/ruff check artid
	$(BIN)/mypy artid
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) runs
