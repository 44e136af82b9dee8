# kedro-aws developer entry points. Every target creates/updates .venv itself.
#   make demo   run the reference project offline and say where its outputs are
#   make test   run the whole test suite
#   make lint   ruff (check + format check)
#   make bench  run the benchmarks under benchmarks/

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
EXAMPLE := examples/iris

# No telemetry prompt or network call from kedro-telemetry, anywhere we run Kedro.
export KEDRO_DISABLE_TELEMETRY := 1
export DO_NOT_TRACK := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

# Reinstall when the requirements change: the stamp depends on every file that pins them.
STAMP := $(VENV)/.kedro-aws-installed
REQS  := pyproject.toml constraints.txt $(EXAMPLE)/pyproject.toml

.PHONY: setup java demo test lint format bench clean

setup: $(STAMP) java

$(STAMP): $(REQS) scripts/check-python.sh
	@bash scripts/check-python.sh "$(PYTHON)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]" -e "./$(EXAMPLE)"
	@touch $(STAMP)

java:
	@bash scripts/ensure-java.sh

KEDRO := cd $(EXAMPLE) && ../../$(BIN)/kedro

demo: setup
	$(KEDRO) run --env local
	$(KEDRO) run --env local --pipelines train_and_register_model
	$(KEDRO) aws registry approve iris-classifier latest --env local -d "approved by make demo"
	$(KEDRO) aws registry list iris-classifier --env local
	$(KEDRO) run --env local --pipelines deploy_model
	$(KEDRO) aws sample-data eth --env local
	$(KEDRO) run --env local --pipelines athena
	@echo
	@echo "Outputs of the offline runs (env 'local'), under $(EXAMPLE)/data:"
	@cd $(EXAMPLE)/data && find . -mindepth 2 -maxdepth 3 -not -path './01_raw*' -not -name '.*' \
		-not -path './aws/.kedro-aws*' | sort | sed 's|^\./|  |'

test: setup
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: setup
	$(BIN)/python -m benchmarks

clean:
	@# A transform service started from this venv would outlive it (it exits after 10 idle minutes).
	-@test -x $(BIN)/python && $(BIN)/python -c "from kedro_aws.local.transform_service import stop_service; stop_service() and print('Stopped the transform service.')"
	rm -rf $(VENV) .pytest_cache
