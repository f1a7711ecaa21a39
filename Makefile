# Thin wrapper around CMake. `make run` and `make test` install their own
# dependencies first (scripts/install-deps), so each works on a fresh Debian.
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CC         ?= cc

.PHONY: all deps build run test unit asan format format-check clean

all: build

deps:
	./scripts/install-deps

$(BUILD)/Makefile: CMakeLists.txt
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: $(BUILD)/Makefile
	cmake --build $(BUILD) -j $(JOBS)

unit: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

asan:
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DHUB_SANITIZE=ON
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j $(JOBS)

test: deps
	$(MAKE) unit
	$(MAKE) asan
	./tests/walkthrough/certs.sh $(BUILD)/hubctl

run: deps build
	./scripts/walkthrough-certs $(BUILD)/hubctl $(BUILD)/walkthrough

format:
	find src tests -name '*.[ch]' | xargs clang-format -i

format-check:
	find src tests -name '*.[ch]' | xargs clang-format --dry-run -Werror

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
