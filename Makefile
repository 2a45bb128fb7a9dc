# Front door: `make` builds build/wsgate; `make test` installs what is
# missing, builds and runs every test; `make run` starts the quick-start demo.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
MAKEFLAGS += --no-print-directory

.PHONY: all setup test unit run asan fuzz fuzz-build bench bench-compare bench-callgrind format format-check clean

all: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null

setup:
	scripts/setup

test: setup all
	cd $(BUILD) && ctest --output-on-failure -j 2

unit: all
	cd $(BUILD) && ctest --output-on-failure -R '^unit/'

run: setup all
	scripts/quickstart

# The whole suite under ASan+UBSan. Reports from any process (the unit tests
# and every wsgate the integration tests start) go to build-asan/report.*;
# the target fails when there is one.
asan: setup
	$(MAKE) BUILD=build-asan CMAKE_FLAGS="-DWSG_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug" all
	rm -f build-asan/report.*
	cd build-asan && ASAN_OPTIONS=detect_leaks=1:log_path=$(CURDIR)/build-asan/report \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$(CURDIR)/build-asan/report \
	  ctest --output-on-failure -j 2
	@if ls build-asan/report.* >/dev/null 2>&1; then \
	  echo "sanitizer reports:"; cat build-asan/report.*; exit 1; fi
	@echo "asan: no sanitizer reports"

fuzz-build: setup
	$(MAKE) BUILD=build-fuzz CMAKE_FLAGS="-DWSG_FUZZ=ON -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug" all

FUZZ_SECONDS ?= 60
fuzz: fuzz-build
	@for f in build-fuzz/*_fuzz; do \
	  name=$$(basename $$f _fuzz); \
	  mkdir -p build-fuzz/corpus-$$name; \
	  echo "fuzz: $$name for $(FUZZ_SECONDS)s"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	      build-fuzz/corpus-$$name fuzz/corpus/$$name || exit 1; \
	done

# Load tools (build/bench/wsbench, build/bench/wsecho) are built by `all`.
bench: all

# Side by side with nginx and HAProxy (installed if missing); see
# docs/performance.md. ROUNDS, DURATION and IDLE_CONNS tune it.
bench-compare: all
	WSG_SETUP_BENCH=1 scripts/setup
	node bench/compare.mjs

# User-space instructions per echoed message under callgrind (see the script).
bench-callgrind: all
	bench/callgrind.sh

FORMAT_FILES = $(shell git ls-files 'src/*.[ch]' 'tests/*.[ch]' 'fuzz/*.[ch]' 'bench/*.[ch]')
format:
	clang-format -i $(FORMAT_FILES)

format-check:
	clang-format --dry-run -Werror $(FORMAT_FILES)

clean:
	rm -rf build build-asan build-fuzz
