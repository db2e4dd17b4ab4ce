# Two commands on a fresh machine (as root):  `make demo`  and  `make test`.
# Both run `setup` first; it is idempotent and cheap the second time.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python

.PHONY: setup demo test lint clean image

setup:
	@bash tools/setup.sh

demo: setup
	@bash examples/demo.sh

test: setup
	$(PY) -m pytest tests

# The operator/agent image, built with buildah from the Dockerfile and pushed to
# $BPFGLOBALS_REGISTRY/bpfglobals:<version> (`IMAGE=…` to override, `BASE=…` for the base).
image: setup
	@bash tools/image/build.sh

lint: setup
	$(VENV)/bin/ruff check operator tests bench
	$(VENV)/bin/ruff format --check operator tests bench
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) .stamps build
