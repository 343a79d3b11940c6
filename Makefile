# interpool developer tasks. `make help` lists them.
#
#   make test                       C++ (GoogleTest via ctest) and Python (pytest) suites,
#                                   on Python 3.13 (.venv), then on 3.12 (.venv-3.12) if found
#   make test-python PYTEST_ARGS='-k pool -x'             one or a few Python tests
#   make test-python PYTEST_ARGS='tests/python/test_pool.py::test_map'
#   make test-cpp CTEST_ARGS='-R Queue'                   one or a few C++ tests
#   make test-cpp-install           docs/cpp.md's build and install commands, as a user runs them
#   make test-asan                  both suites under AddressSanitizer + UBSan
#   make test-wheel                 the built wheel, installed in a fresh venv, against the suite
#   make typecheck                  mypy: the package, its stubs (stubtest), tests/typing --strict
#   INTERPOOL_PYTHON=/path/to/python3.13 make test        build against that Python
#
# The Python used for .venv is tools/find-python's pick: $INTERPOOL_PYTHON if set,
# else a 3.13, else any 3.12+ (with headers and a shared libpython).

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.ONESHELL:
# The suites already use every core; running two of them at once only makes timing flaky.
.NOTPARALLEL:
.DEFAULT_GOAL := help

JOBS ?= 2
VENV ?= .venv
PYTEST_ARGS ?=
CTEST_ARGS ?=
GTEST_ARGS ?=
# Per-test limit for ctest; pytest's per-test limit is in pyproject.toml (120 s).
CTEST_TIMEOUT ?= 300
# Wall-clock limit for a whole pytest run: a backstop for a hang that holds the GIL,
# which pytest-timeout (a Python thread) cannot interrupt.
PYTEST_WALL ?= 1800
SANITIZE ?= address,undefined
# Extra arguments for `pip install .` (the asan venv passes its -C cmake.define...).
PIP_BUILD_ARGS ?=
# Our own builds make compiler warnings errors; users' builds (docs/cpp.md's
# commands, `pip install`, and so `make test-wheel`, which builds as they do) do not.
WERROR = -DINTERPOOL_WARNINGS_AS_ERRORS=ON

# The interpreter $(VENV) is made from, looked up once and only when needed.
ifndef BASE_PYTHON
BASE_PYTHON = $(eval BASE_PYTHON := $(shell \
  if [ -n "$${INTERPOOL_PYTHON:-}" ]; then tools/find-python 2>/dev/null; \
  else tools/find-python 3.13 2>/dev/null || tools/find-python 2>/dev/null; fi))$(BASE_PYTHON)
endif
PYVER = $(eval PYVER := $(if $(BASE_PYTHON),$(shell $(BASE_PYTHON) -c \
  'import sys; print("%d.%d" % sys.version_info[:2])')))$(PYVER)

VENV_BIN = $(VENV)/bin
VENV_PY = $(VENV_BIN)/python
PIP = $(VENV_PY) -m pip
CMAKE = $(VENV_BIN)/cmake
CTEST = $(VENV_BIN)/ctest
CPP_BUILD ?= build/cpp-$(PYVER)
ASAN_BUILD ?= build/asan
BENCH_BUILD ?= build/bench-$(PYVER)
BENCH_ARGS ?=
# The benchmark scripts `make bench` runs (paths or names: bench_queues): all by default;
# the others are listed as skipped in the combined table.
BENCHES ?= $(wildcard benchmarks/[!_]*.py)
BENCH_RESULTS ?= build/bench-results
# Worker counts for the many-core part of benchmarks/bench_workloads.py (its --workers),
# e.g. WORKERS=1,2,4,8,16: speedup against workers of its real workloads and the demo's
# day 6, with a chart in $(BENCH_RESULTS)/bench_workloads-workers.svg. Empty: not run.
WORKERS ?=

# Everything whose change means the extension must be rebuilt and reinstalled.
PKG_SOURCES := CMakeLists.txt pyproject.toml $(shell find src include python \
  -type f ! -name '*.pyc' ! -path '*/__pycache__/*' 2>/dev/null)

# Prints a list from pyproject.toml one item a line, e.g. $(call pyproject,build-system.requires)
pyproject = $(VENV_PY) -c 'import functools, operator, sys, tomllib; \
  print(*functools.reduce(operator.getitem, sys.argv[1].split("."), \
  tomllib.load(open("pyproject.toml", "rb"))), sep="\n")' $(1)

# Fails with tools/find-python's explanation when no usable Python was found.
need-python = [ -n "$(BASE_PYTHON)" ] || { tools/find-python >/dev/null; exit 1; }

# Stamps: one per venv, named after the interpreter the venv was made from, so that
# pointing INTERPOOL_PYTHON elsewhere remakes the venv.
TOOLS_STAMP = $(VENV)/.tools$(subst /,-,$(BASE_PYTHON))
INSTALL_STAMP = $(VENV)/.installed

.PHONY: help venv deps-cpp test test-cpp test-cpp-install test-python test-wheel typecheck test-asan test-asan-cpp \
  test-asan-python test-valgrind demo bench format format-check clean

# help: list the targets.
help:
	@sed -n 's/^# \([a-z-]*\): /  make \1\t/p' Makefile | expand -t 26
	echo; sed -n '3,11p' Makefile | sed 's/^#/ /'

# venv: create .venv with build tools, test extras and the package (rebuilt on change).
# The cmake build tree is build/<wheel tag>, kept between builds, so a rebuild only
# recompiles what changed.
venv: $(INSTALL_STAMP)

# The venv itself, pip, the build requirements (installed into the venv so that
# reinstalls can skip pip's build isolation: no fresh env and no download each time),
# cmake and ninja for the C++ test build, and the test extras.
$(TOOLS_STAMP): pyproject.toml
	@$(need-python)
	if [ "$$(cat $(VENV)/.made-from 2>/dev/null)" != "$(BASE_PYTHON)" ]; then
	  echo "== creating $(VENV) from $(BASE_PYTHON)"
	  rm -rf $(VENV)
	  $(BASE_PYTHON) -m venv $(VENV)
	  $(PIP) install -q --disable-pip-version-check -U pip
	  echo "$(BASE_PYTHON)" > $(VENV)/.made-from
	fi
	{ $(call pyproject,build-system.requires); $(call pyproject,project.optional-dependencies.test); } |
	  xargs -d '\n' $(PIP) install -q 'cmake>=3.21' ninja
	rm -f $(VENV)/.tools-* $(INSTALL_STAMP) $(VENV)/.demo-deps $(VENV)/.bench-deps
	touch $@

# The package, reinstalled from source when anything in PKG_SOURCES is newer; a
# developer's build, so compiler warnings are errors.
$(INSTALL_STAMP): $(TOOLS_STAMP) $(PKG_SOURCES)
	@echo "== building and installing interpool into $(VENV)"
	$(PIP) install --disable-pip-version-check --no-build-isolation --no-deps \
	  --force-reinstall -C cmake.define.INTERPOOL_WARNINGS_AS_ERRORS=ON $(PIP_BUILD_ARGS) .
	touch $@

# deps-cpp: install GoogleTest/GoogleMock from Debian (apt) when missing.
# The C++ test build finds them with find_package(GTest) (/usr/lib/*/cmake/GTest).
deps-cpp:
	@$(call apt-ensure,libgtest-dev libgmock-dev)

# Installs the Debian packages $(1) when any is missing (with sudo unless root).
apt-ensure = if command -v dpkg >/dev/null && ! dpkg -s $(1) >/dev/null 2>&1; then \
  echo "== installing $(1)"; sudo=; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
  $$sudo apt-get update -q; DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -q $(1); fi

# test: C++ and Python suites and typecheck on the main Python (3.13), then on 3.12 if present;
# docs/cpp.md's build commands (test-cpp-install) on the main Python only.
test: deps-cpp
	@$(MAKE) --no-print-directory test-cpp test-cpp-install test-python typecheck
	py312=$$(tools/find-python 3.12 2>/dev/null) || py312=
	if [ -z "$$py312" ]; then
	  echo "== no Python 3.12 found: the suites ran on $(PYVER) only"
	elif [ "$(PYVER)" = 3.12 ]; then
	  echo "== the suites ran on 3.12 (no 3.13 found, or INTERPOOL_PYTHON chose it)"
	else
	  echo "== again on Python 3.12 ($$py312)"
	  $(MAKE) --no-print-directory test-cpp test-python typecheck VENV=.venv-3.12 BASE_PYTHON="$$py312"
	fi

# test-cpp: build the GoogleTest suites in build/cpp-<pyver> and run ctest.
test-cpp: deps-cpp $(TOOLS_STAMP)
	@echo "== C++ tests in $(CPP_BUILD) (Python $(PYVER))"
	$(build-cpp-tests)
	$(CTEST) --test-dir $(CPP_BUILD) --output-on-failure --no-tests=error -j $(JOBS) --timeout $(CTEST_TIMEOUT) $(CTEST_ARGS)

# test-cpp-install: docs/cpp.md's C++ build and install commands, run as a user runs them.
# They are the page's ```sh cpp-install block, printed by tests/python/doc_blocks.py (so
# the page and the test cannot drift), run as they are written in a copy of the source
# tree in a temporary directory, with HOME there (they install to $HOME/.local), the
# venv's cmake first on PATH and INTERPOOL_PYTHON naming this venv's Python (for
# tools/find-python). Then tests/cpp/consumer is built against that install with
# find_package(interpool), in Release with -Werror (a user's program including our
# headers), and run. A warning in the build fails the target: users see them, although
# they are not errors there.
test-cpp-install: $(TOOLS_STAMP)
	@echo "== docs/cpp.md's build and install commands (Python $(PYVER))"
	tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT
	mkdir -p $$tmp/src $$tmp/home
	$(VENV_PY) tests/python/doc_blocks.py block cpp-install --root . >$$tmp/commands.sh
	cat $$tmp/commands.sh
	tar -c --exclude=./.git --exclude=./build --exclude='./.venv*' --exclude=./dist \
	  --exclude=__pycache__ --exclude=.pytest_cache --exclude=.mypy_cache --exclude=.hypothesis . |
	  tar -x -C $$tmp/src
	# Not under this make: its jobserver and flags would reach the commands' own make.
	unset MAKEFLAGS MFLAGS MAKELEVEL
	rc=0; (cd $$tmp/src && HOME=$$tmp/home PATH=$(abspath $(VENV_BIN)):$$PATH \
	  INTERPOOL_PYTHON=$(BASE_PYTHON) bash -eux $$tmp/commands.sh) >$$tmp/build.log 2>&1 || rc=$$?
	if [ $$rc -ne 0 ]; then
	  cat $$tmp/build.log; echo "== docs/cpp.md's commands failed (exit $$rc)"; exit 1
	fi
	if grep -q -E -i '(: warning:|cmake warning)' $$tmp/build.log; then
	  cat $$tmp/build.log; echo "== docs/cpp.md's commands printed warnings (above): fix the code"
	  exit 1
	fi
	$(CMAKE) -DPREFIX=$$tmp/home/.local -DSOURCE_DIR=$$tmp/src -DWORK_DIR=$$tmp/consumer \
	  -DBUILD_TYPE=Release -P tests/cpp/consumer/run.cmake

# test-python: run pytest (tests/python) against the package installed in .venv.
test-python: $(INSTALL_STAMP)
	@echo "== Python tests (Python $(PYVER), $(VENV))"
	$(run-pytest)

# test-wheel: the wheel, installed in a fresh venv, against the Python suite.
# For the main Python (3.13), and for 3.12 when there is one, `pip wheel .` (build isolation,
# a clean build tree in build/wheel), tools/check-wheel on the wheel, a fresh venv
# build/wheel/venv-<version> with the wheel and its test extra installed from the index; then
# pytest against that install, from a copy of tests/python in a temporary directory (no
# python/ within reach; conftest.py checks that interpool comes from the venv): the whole
# suite on the main Python, WHEEL_OTHER_TESTS on 3.12.
WHEEL_DIR ?= dist
WHEEL_BUILD ?= build/wheel
WHEEL_OTHER_TESTS ?= tests/python/test_executor.py tests/python/test_pep734.py
test-wheel:
	@$(need-python)
	pythons="$(BASE_PYTHON)"
	if [ "$(PYVER)" != 3.12 ] && py312=$$(tools/find-python 3.12 2>/dev/null); then
	  pythons="$$pythons $$py312"
	fi
	tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT
	mkdir -p $$tmp/tests $(WHEEL_DIR)
	cp -r tests/python $$tmp/tests/
	find $$tmp -name __pycache__ -prune -exec rm -rf {} +
	main=1
	for py in $$pythons; do
	  ver=$$($$py -c 'import sys; print("%d.%d" % sys.version_info[:2])')
	  venv=$(abspath $(WHEEL_BUILD))/venv-$$ver
	  echo "== wheel for Python $$ver ($$py)"
	  rm -rf $$venv $(WHEEL_BUILD)/build-$$ver $(WHEEL_DIR)/interpool-*-cp$${ver/./}-*.whl
	  $$py -m venv $$venv
	  $$venv/bin/python -m pip install -q --disable-pip-version-check -U pip
	  $$venv/bin/python -m pip wheel -q --no-deps -w $(WHEEL_DIR) \
	    -C build-dir=$(WHEEL_BUILD)/build-$$ver .
	  wheel=$$(echo $(WHEEL_DIR)/interpool-*-cp$${ver/./}-*.whl)
	  $$venv/bin/python tools/check-wheel $$wheel
	  $$venv/bin/python -m pip install -q --disable-pip-version-check "$$wheel[test]"
	  if [ $$main = 1 ]; then tests="$(or $(PYTEST_ARGS),tests/python)"; else tests="$(WHEEL_OTHER_TESTS)"; fi
	  main=0
	  echo "== Python tests against the installed wheel (Python $$ver, from $$tmp)"
	  site=$$($$venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("platlib"))')
	  (cd $$tmp && INTERPOOL_TEST_INSTALLED=$$site INTERPOOL_SOURCE_DIR=$(CURDIR) \
	    INTERPOOL_CPP_BUILD=$(CURDIR)/build/cpp-$$ver timeout -k 30 $(PYTEST_WALL) \
	    $$venv/bin/python -m pytest -c $(CURDIR)/pyproject.toml --rootdir $$tmp \
	    -p no:cacheprovider $$tests)
	done

# typecheck: mypy (the test extra) on the package's code ([tool.mypy] in pyproject.toml),
# its stubs against the installed package (stubtest; tests/typing/stubtest-allowlist.txt
# names what stubtest cannot see), and tests/typing, the API as the README uses it, --strict.
typecheck: $(INSTALL_STAMP)
	@echo "== typecheck (Python $(PYVER), $(VENV))"
	$(VENV_PY) -m mypy
	$(VENV_PY) -m mypy --strict tests/typing
	$(VENV_PY) -m mypy.stubtest interpool --mypy-config-file pyproject.toml \
	  --allowlist tests/typing/stubtest-allowlist.txt

# Runs pytest; exit 5 ("no tests collected") passes only while tests/python has no test file.
define run-pytest
rc=0; INTERPOOL_CPP_BUILD=$(abspath $(CPP_BUILD)) $(PYTEST_ENV) timeout -k 30 $(PYTEST_WALL) $(VENV_PY) -m pytest $(PYTEST_ARGS) || rc=$$?
if [ $$rc -eq 5 ] && [ -z "$$(find tests/python -name 'test_*.py' -o -name '*_test.py' 2>/dev/null)" ]; then
  echo "== tests/python has no test files yet"; rc=0
fi
[ $$rc -ne 124 ] || echo "== pytest was killed after $(PYTEST_WALL) s (PYTEST_WALL)"
exit $$rc
endef

# Configures and builds the GoogleTest suites in $(CPP_BUILD).
define build-cpp-tests
mkdir -p $(CPP_BUILD)
$(CMAKE) -S . -B $(CPP_BUILD) -G Ninja -DCMAKE_MAKE_PROGRAM=$(abspath $(VENV_BIN))/ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DINTERPOOL_BUILD_TESTS=ON $(WERROR) \
  -DPython_EXECUTABLE=$(BASE_PYTHON) >$(CPP_BUILD)/configure.log || {
  cat $(CPP_BUILD)/configure.log; exit 1; }
$(CMAKE) --build $(CPP_BUILD) -j $(JOBS)
endef

# The Fork tests' children abandon the parent's workers and interpreters on purpose
# (docs/design.md, Fork): memcheck counts that memory as lost in each child and fails
# it. They run in test-cpp and test-asan-cpp.
VALGRIND_GTEST_FILTER ?= -Fork.*
# The leak kinds that fail test-valgrind. On 3.12, "definitely lost" only: 3.12 frees
# far less than 3.13 when an interpreter ends or the runtime finalizes (410 of the 440
# "possibly lost" records of the suites are what 3.12's single-phase _decimal made at
# its import and keeps), and under PYTHONMALLOC=malloc a GC object is pointed to past
# its GC header, so every object left at exit is "possibly lost". A reference
# interpool forgets leaves a block that nothing points to, "definitely lost": failed
# on both versions.
comma := ,
VALGRIND_LEAK_KINDS ?= $(if $(filter 3.12,$(PYVER)),definite,definite$(comma)possible)

# test-valgrind: the GoogleTest suites (test-cpp's build) in one process under valgrind
# memcheck. Any memory error fails it, and so does any leak but CPython's own: what
# it allocates at start-up and the immortal interned strings of sub-interpreters
# (tools/valgrind-python.supp). PYTHONMALLOC=malloc: memcheck sees every object.
test-valgrind: deps-cpp $(TOOLS_STAMP)
	@$(call apt-ensure,valgrind)
	echo "== C++ tests under valgrind memcheck (build in $(CPP_BUILD))"
	$(build-cpp-tests)
	cd $(CPP_BUILD)/tests/cpp && PYTHONMALLOC=malloc valgrind --tool=memcheck --error-exitcode=99 \
	  --leak-check=full --show-leak-kinds=$(VALGRIND_LEAK_KINDS) --errors-for-leak-kinds=$(VALGRIND_LEAK_KINDS) \
	  --suppressions=$(abspath tools/valgrind-python.supp) --num-callers=40 \
	  ./interpool_tests --gtest_brief=1 --gtest_filter=$(VALGRIND_GTEST_FILTER) $(GTEST_ARGS)

# test-asan: both suites built with -fsanitize=address,undefined.
test-asan: test-asan-cpp test-asan-python

# test-asan-cpp: the GoogleTest suites with the sanitizers, in build/asan (Debug).
# PYTHONMALLOC=malloc makes the embedded Python allocate each object with malloc, so
# ASan sees use-after-free and overflows of Python objects too. Leak detection is on,
# but leaks allocated through libpython are suppressed: CPython keeps some memory
# until exit by design (obmalloc arenas after sub-interpreters end, seen here), so
# what LeakSanitizer still reports are leaks of our own allocations. Also CPython's
# readline module on 3.12, which the tests import as the module that refuses an
# own-GIL interpreter: 3.12 runs its PyInit before refusing it, and the copy of the
# completer delimiters it strdup()s (Modules/readline.c, setup_readline) is never freed.
test-asan-cpp: deps-cpp $(TOOLS_STAMP)
	@echo "== C++ tests with -fsanitize=$(SANITIZE) in $(ASAN_BUILD)"
	mkdir -p $(ASAN_BUILD)
	$(CMAKE) -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_MAKE_PROGRAM=$(abspath $(VENV_BIN))/ninja \
	  -DCMAKE_BUILD_TYPE=Debug -DINTERPOOL_BUILD_TESTS=ON -DINTERPOOL_SANITIZE=$(SANITIZE) $(WERROR) \
	  -DPython_EXECUTABLE=$(BASE_PYTHON) >$(ASAN_BUILD)/configure.log || {
	  cat $(ASAN_BUILD)/configure.log; exit 1; }
	$(CMAKE) --build $(ASAN_BUILD) -j $(JOBS)
	printf '%s\n' 'leak:libpython3' 'leak:setup_readline' > $(ASAN_BUILD)/lsan.supp
	PYTHONMALLOC=malloc ASAN_OPTIONS=detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1 \
	LSAN_OPTIONS=suppressions=$(abspath $(ASAN_BUILD))/lsan.supp:print_suppressions=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(CTEST) --test-dir $(ASAN_BUILD) --output-on-failure --no-tests=error -j $(JOBS) \
	  --timeout $$(( 3 * $(CTEST_TIMEOUT) )) $(CTEST_ARGS)

# test-asan-python: pytest against a sanitized build of the package, in .venv-asan.
# The cmake build tree is build/asan-py. python itself is not instrumented, so the
# sanitizer runtimes are preloaded (LD_PRELOAD) before it loads the extension;
# PYTHONMALLOC=malloc lets ASan see object memory; leak checking is off because
# CPython does not free everything at exit; a failed allocation returns NULL (a
# MemoryError for Python, as without ASan) instead of aborting.
test-asan-python:
	@$(MAKE) --no-print-directory test-python VENV=.venv-asan \
	  PIP_BUILD_ARGS="-C build-dir=build/asan-py -C cmake.build-type=Debug \
	    -C cmake.define.INTERPOOL_SANITIZE=$(SANITIZE)" \
	  PYTEST_ENV="LD_PRELOAD='$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libubsan.so)' \
	    PYTHONMALLOC=malloc ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1" \
	  PYTEST_ARGS="-o timeout=600 $(PYTEST_ARGS)"

# demo: the main job, the AoC 2024 day 6 study: every backend side by side for 1 to
# CPUs + 2 workers, a table on stdout, the chart and raw numbers in build/demo/
# (with the demo extras: matplotlib, rich). DEMO_ARGS adds options, e.g. --grid FILE.
DEMO_ARGS ?=
demo: $(INSTALL_STAMP) $(VENV)/.demo-deps
	@mkdir -p build/demo
	$(VENV_PY) -m interpool demo --compare --plot build/demo/day6.svg \
	  --json build/demo/day6.json $(DEMO_ARGS)
	echo "chart: build/demo/day6.svg, numbers: build/demo/day6.json"

$(VENV)/.demo-deps: $(TOOLS_STAMP) pyproject.toml
	@$(call pyproject,project.optional-dependencies.demo) | xargs -r -d '\n' $(PIP) install -q
	touch $@

# The baselines of the benchmarks (loky, the PEP 734 backport): the bench extra.
$(VENV)/.bench-deps: $(TOOLS_STAMP) pyproject.toml
	@$(call pyproject,project.optional-dependencies.bench) | xargs -r -d '\n' $(PIP) install -q
	touch $@

# bench: every benchmark, then one table of them all with the baselines of the same run.
# First the C++ engine benchmark is built (Google Benchmark, in build/bench-<pyver>); then
# every benchmarks/*.py but _helpers runs with the venv's python and writes its numbers to
# $(BENCH_RESULTS)/<name>.json; benchmarks/_report.py prints the combined table from them.
# BENCH_ARGS goes to every script, so it holds options they all take: --quick (a smoke
# run) and --repeat R; not --json, which make sets. A script's own options work when
# BENCHES picks that script alone, e.g. BENCHES=bench_executor BENCH_ARGS='--only 2,3'.
# WORKERS=1,2,4 adds the many-core part to bench_workloads (see WORKERS above).
bench: $(INSTALL_STAMP) $(VENV)/.bench-deps
	@shopt -s nullglob
	case " $(BENCH_ARGS) " in *" --json"*)
	  echo "BENCH_ARGS: no --json: each script writes $(BENCH_RESULTS)/<name>.json"; exit 2;; esac
	if [ -f benchmarks/CMakeLists.txt ]; then
	  $(call apt-ensure,libbenchmark-dev)
	  echo "== C++ benchmarks in $(BENCH_BUILD)"
	  mkdir -p $(BENCH_BUILD)
	  $(CMAKE) -S . -B $(BENCH_BUILD) -G Ninja -DCMAKE_MAKE_PROGRAM=$(abspath $(VENV_BIN))/ninja \
	    -DCMAKE_BUILD_TYPE=Release -DINTERPOOL_BUILD_BENCHMARKS=ON -DINTERPOOL_BUILD_PYTHON=OFF $(WERROR) \
	    -DPython_EXECUTABLE=$(BASE_PYTHON) >$(BENCH_BUILD)/configure.log || {
	    cat $(BENCH_BUILD)/configure.log; exit 1; }
	  $(CMAKE) --build $(BENCH_BUILD) -j $(JOBS) --target interpool_engine_bench
	  export INTERPOOL_ENGINE_BENCH=$(abspath $(BENCH_BUILD))/benchmarks/interpool_engine_bench
	fi
	files=(benchmarks/[!_]*.py)
	[ $${#files[@]} -gt 0 ] || { echo "no benchmarks/*.py yet"; exit 0; }
	mkdir -p $(BENCH_RESULTS)
	rm -f $(BENCH_RESULTS)/*.json
	runs=(); failed=0
	for f in "$${files[@]}"; do
	  name=$$(basename "$$f" .py)
	  case " $(BENCHES) " in *" $$f "*|*" $$name "*|*" $$name.py "*) ;;
	    *) runs+=("$$f=skipped"); continue;; esac
	  echo "== $$f"
	  extra=(); [ -z "$(WORKERS)" ] || [ "$$name" != bench_workloads ] || extra=(--workers "$(WORKERS)")
	  rc=0; $(VENV_PY) "$$f" $(BENCH_ARGS) "$${extra[@]}" --json $(BENCH_RESULTS)/$$name.json || rc=$$?
	  runs+=("$$f=$$rc"); [ $$rc -eq 0 ] || failed=$$((failed + 1))
	done
	echo
	$(VENV_PY) benchmarks/_report.py $(BENCH_RESULTS) "$${runs[@]}"
	[ $$failed -eq 0 ] || { echo "== $$failed benchmark script(s) failed: see their output above"; exit 1; }

# format: clang-format -i every C++ file in src, include, tests, benchmarks and examples.
format:
	@$(need-clang-format)
	$(CXX_FILES) | xargs -0 -r clang-format -i

# format-check: fail if clang-format would change a C++ file.
format-check:
	@$(need-clang-format)
	$(CXX_FILES) | xargs -0 -r clang-format --dry-run --Werror

CXX_FILES = find src include tests benchmarks examples -type f \( -name '*.cpp' -o -name '*.cc' -o -name '*.h' \
  -o -name '*.hpp' \) -print0
need-clang-format = command -v clang-format >/dev/null || { \
  echo "clang-format not found: apt-get install clang-format"; exit 1; }

# clean: remove every build tree and venv.
clean:
	rm -rf build .venv .venv-* .pytest_cache .hypothesis .mypy_cache
