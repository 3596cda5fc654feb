# Thin wrapper over CMake. `make` builds, `make test` runs every test in a normal
# build and in an ASan+UBSan (clang) build, `make run` runs the main job.
JOBS ?= $(shell nproc)
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_SECONDS ?= 20
CMAKE_FLAGS ?=

.PHONY: all build deps test test-release test-asan run bench fmt clean

all: build

deps:
	@bash scripts/deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

$(ASAN_BUILD)/CMakeCache.txt:
	CC=clang cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DAISTACK_SANITIZE=ON \
	  -DAISTACK_FUZZ=ON -DAISTACK_FUZZ_SECONDS=$(FUZZ_SECONDS) -DCMAKE_C_FLAGS_DEBUG="-O1 -g" $(CMAKE_FLAGS)

test: deps
	$(MAKE) test-release
	$(MAKE) test-asan
	@echo "make test: all suites passed"

test-release: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-asan: $(ASAN_BUILD)/CMakeCache.txt
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS) -LE 'perf|slow'

run: deps build
	@bash scripts/run.sh

bench: build
	@bash bench/run_all.sh

fmt:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
