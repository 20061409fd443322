# Commands that work on a fresh machine:
#   make demo   set up, then meta-train Prototypical Networks on Omniglot and print the table
#   make test   set up, then run the test suite (what CI runs)
#   make docs   set up, then build the documentation site, every example executed
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# glibc hands large blocks back to the OS after every operation, so a CPU
# training loop spends much of its time in page faults; keeping them mapped
# makes conv-net training ~1.7x faster on 2-core machines (docs/benchmarks.md).
FAST_MALLOC := MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=4294967296

.PHONY: setup demo test lint docs docs-ci benchmark benchmark-gradient benchmark-memory benchmark-rl benchmark-selection clean

setup: $(VENV)/.installed

# The CPU build of torch goes in first and stays pinned as a constraint, so no
# later requirement pulls a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml requirements/torch-cpu.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/torch-cpu.txt
	$(PY) -m pip install --quiet -c requirements/torch-cpu.txt -e ".[test,benchmarks,docs]"
	touch $@

demo: setup
	$(FAST_MALLOC) $(PY) benchmarks/omniglot_protonet.py

test: setup
	$(PY) -m pytest
	$(PY) -m pytest -m "load or readme"

lint: setup
	$(PY) -m ruff check .

# The documentation site, in docs/_build/html. `docs` runs every example for
# the gallery's figures and output (about 12 minutes on one core of a 2-core
# machine); `docs-ci` shows the examples' code without running them (under a
# minute). Both fail on any Sphinx warning.
SPHINXBUILD := $(VENV)/bin/sphinx-build
SPHINXOPTS ?=

docs: setup
	$(FAST_MALLOC) $(SPHINXBUILD) -b html -W --keep-going $(SPHINXOPTS) docs docs/_build/html

docs-ci: setup
	$(SPHINXBUILD) -b html -W --keep-going -D plot_gallery=0 $(SPHINXOPTS) docs docs/_build/html

benchmark: setup
	$(FAST_MALLOC) $(PY) benchmarks/protonet.py
	$(FAST_MALLOC) $(PY) benchmarks/protonet.py --method matching

# The gradient-based learners: speed against higher/learn2learn (whichever
# import), then the sinusoid regression benchmark.
benchmark-gradient: setup
	$(FAST_MALLOC) $(PY) benchmarks/maml.py
	$(FAST_MALLOC) $(PY) benchmarks/sinusoid.py
	$(FAST_MALLOC) $(PY) benchmarks/pool_latency.py

# Omniglot accuracy of the Meta-Learner LSTM and the MANN beside Prototypical
# Networks and FineTune (about 17 minutes on 2 cores).
benchmark-memory: setup
	$(FAST_MALLOC) OMP_NUM_THREADS=1 $(PY) benchmarks/omniglot_memory.py

# Return after 0-3 policy-gradient steps on 2D navigation and bandits, and
# environment steps per second (about 17 minutes).
benchmark-rl: setup
	OMP_NUM_THREADS=1 $(PY) benchmarks/meta_rl.py

# Regret of recommended pipelines and search time saved (about 30 minutes the
# first time; evaluations are cached in build/selection_cache).
benchmark-selection: setup
	OMP_NUM_THREADS=1 $(PY) benchmarks/algorithm_selection.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
	rm -rf docs/_build docs/generated docs/auto_examples docs/sg_execution_times.rst
