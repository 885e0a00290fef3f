# Two commands on a fresh machine:
#   make demo   - build .venv on first use, then run the main job end to end on embedded data
#   make test   - build .venv on first use, then run the whole test suite
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.mage_mm-env

.PHONY: venv demo test clean-venv

venv: $(STAMP)

$(STAMP): tools/install_env.sh requirements/constraints.txt requirements/tests.txt setup.py
	bash tools/install_env.sh $(VENV)
	touch $@

demo: $(STAMP)
	PYTHON=$(abspath $(PY)) bash tools/demo.sh

test: $(STAMP)
	$(PY) -m pytest tests

clean-venv:
	rm -rf $(VENV)
