# mediag: `make run` executes the course, `make test` proves it. Both set up .venv first if needed.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
UV_VERSION := 0.13.9

# TensorFlow must see these before its first import, or its start-up logs land in cell outputs.
export TF_CPP_MIN_LOG_LEVEL  := 3
export TF_ENABLE_ONEDNN_OPTS := 0
export PYTHONHASHSEED        := 0
export PYDEVD_DISABLE_FILE_VALIDATION := 1
export MPLBACKEND            := module://matplotlib_inline.backend_inline
# Kernels share the cores (make run: one per core; make test: one per pytest-xdist worker): an OpenMP thread
# with nothing to do sleeps instead of spinning on a core another kernel needs (numerics unchanged).
export OMP_WAIT_POLICY       := PASSIVE
# Progress bars stay out of stored outputs and nbval (with ipywidgets installed they would be widget outputs):
# transformers/huggingface_hub follow HF_HUB_DISABLE_PROGRESS_BARS, mediag.progress MEDIAG_QUIET_PROGRESS;
# TQDM_DISABLE covers tqdm's text bars (tqdm.notebook ignores it: notebooks use mediag.progress). `make lab` unsets them.
export TQDM_DISABLE                 := 1
export HF_HUB_DISABLE_PROGRESS_BARS := 1
export MEDIAG_QUIET_PROGRESS        := 1

NBVAL := --nbval --nbval-current-env --nbval-cell-timeout=900 --nbval-sanitize-with tests/nbval_sanitize.cfg
# Every core: one pytest-xdist worker each; a file (a notebook's cells, one kernel) stays in one worker, in order.
# conftest.py orders the files longest first (xdist would reorder them by test count);
# `make test XDIST=` runs in one process.
XDIST ?= -n auto --dist loadfile --no-loadscope-reorder

.PHONY: help install run test test-unit test-site test-notebooks test-other-cpu notebooks export lab lint lock bench clean

help:
	@echo "make run        execute every notebook (in parallel) into the offline site build/ (index.html, times.json)"
	@echo "make test       unit tests + every notebook against its stored outputs (nbval), on every core"
	@echo "make test-site  open every page make run wrote in headless Chromium, offline"
	@echo "make test-other-cpu  nbval as on a CPU without AVX-512, data regenerated (before storing outputs)"
	@echo "make lab        open JupyterLab on notebooks/"
	@echo "make lint       ruff on the package, the tests and the notebooks"
	@echo "make export     write the notebooks' #@save cells into mediag/scratch/"
	@echo "make notebooks  re-execute the notebooks in place (store fresh outputs), then export"
	@echo "make bench      run benchmarks/ and rewrite BENCHMARKS.md"
	@echo "make lock       re-pin requirements-lock.txt and environment.yml from .venv"

install: $(STAMP)

$(STAMP): requirements-lock.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "mediag needs Python 3.11 (set PYTHON=...)")'
	@# uv installs the same pinned wheels as pip, several times faster (parallel downloads, a shared cache);
	@# where uv cannot be installed, pip does the job. UV_NATIVE_TLS: trust the system's certificates, as pip does.
	@# --compile-bytecode: write the libraries' .pyc files now, on every core, as pip does by default. Without them,
	@# where PYTHONDONTWRITEBYTECODE is set, every kernel, test worker and subprocess compiles TensorFlow, PyTorch
	@# and transformers again from source when it imports them.
	$(BIN)/python -m pip install --quiet uv==$(UV_VERSION) || true
	@if [ -x $(BIN)/uv ]; then \
	  echo "$(BIN)/uv pip install --compile-bytecode -r requirements-lock.txt"; \
	  UV_NATIVE_TLS=1 $(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python \
	    $(if $(PIP_FIND_LINKS),--find-links $(PIP_FIND_LINKS)) -r requirements-lock.txt && \
	  UV_NATIVE_TLS=1 $(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e '.[dev]'; \
	else \
	  $(BIN)/python -m pip install --quiet -r requirements-lock.txt && \
	  $(BIN)/python -m pip install --quiet --no-deps -e '.[dev]'; \
	fi  # the lock pins the dev extra's tools too
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/mediag run $(if $(JOBS),--jobs $(JOBS)) $(NB)

test: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider $(XDIST) tests notebooks $(NBVAL)

test-unit: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider $(XDIST) tests

# The site `make run` wrote, every page in headless Chromium with the network off (screenshots: build/screenshots/).
test-site: $(STAMP)
	@test -f build/times.json || { echo "make test-site: run make run first (it writes build/)"; exit 2; }
	MEDIAG_SITE_DIR=build $(BIN)/python -m pytest -p no:cacheprovider tests/test_site_browser.py

test-notebooks: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider $(if $(NB),,$(XDIST)) $(or $(NB),notebooks) $(NBVAL)

# Stored outputs are made on one CPU and must reproduce on others. On an AVX-512 machine, switch NumPy's,
# OpenBLAS's, PyTorch's and TensorFlow's oneDNN kernels to AVX2 ones and regenerate the synthetic data in a
# temporary cache.
test-other-cpu: $(STAMP)
	@if grep -q avx512f /proc/cpuinfo 2>/dev/null; then \
	  cache=$$(mktemp -d) && \
	  MEDIAG_DATA_CACHE=$$cache NPY_DISABLE_CPU_FEATURES="X86_V4 AVX512_ICL" OPENBLAS_CORETYPE=Haswell \
	  ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 $(BIN)/python -m pytest -p no:cacheprovider $(or $(NB),notebooks) $(NBVAL); \
	  status=$$?; rm -rf $$cache; exit $$status; \
	else echo "make test-other-cpu: this CPU has no AVX-512, so make test-notebooks already takes the AVX2 paths"; fi

notebooks: $(STAMP)
	$(BIN)/mediag run --in-place $(if $(JOBS),--jobs $(JOBS)) $(NB)
	$(BIN)/python -m mediag.export

export: $(STAMP)
	$(BIN)/python -m mediag.export

lab: $(STAMP)
	env -u TQDM_DISABLE -u HF_HUB_DISABLE_PROGRESS_BARS -u MEDIAG_QUIET_PROGRESS $(BIN)/jupyter lab notebooks/

lint: $(STAMP)
	$(BIN)/ruff check mediag tests notebooks benchmarks

lock: $(STAMP)
	{ head -n 2 requirements-lock.txt; $(BIN)/python -m pip freeze --exclude-editable | grep -v '^mediag'; } > requirements-lock.new
	mv requirements-lock.new requirements-lock.txt
	$(BIN)/python tools/write_environment_yml.py

bench: $(STAMP)
	for f in benchmarks/bench_*.py; do $(BIN)/python $$f || exit 1; done

clean:
	rm -rf build .pytest_cache
