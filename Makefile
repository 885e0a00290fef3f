# Two commands on a fresh machine:
#   make demo   - build .venv on first use, then run the main job end to end on embedded data
#   make test   - build .venv on first use, then run the whole test suite (all markers, slow and integration too)
# and for contributors:
#   make lint   - ruff (config: ruff.toml), report only; CI runs it after the tests
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.mage_mm-env

.PHONY: venv demo test lint clean-venv

venv: $(STAMP)

$(STAMP): tools/install_env.sh tools/env/startup_hook.py setup.py $(wildcard requirements/*.txt)
	bash tools/install_env.sh $(VENV)
	touch $@

demo: $(STAMP)
	PYTHON=$(abspath $(PY)) bash tools/demo.sh

test: $(STAMP)
	$(PY) -m pytest tests

lint: $(STAMP)
	$(VENV)/bin/ruff check --no-fix .

clean-venv:
	rm -rf $(VENV)
