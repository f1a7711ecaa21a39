# Thin wrapper around CMake. `make run` and `make test` install their own
# dependencies first (scripts/install-deps), so each works on a fresh Debian.
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps build run test unit asan e2e interop console fuzz bench demo-certs format format-check clean
FUZZ_SECONDS ?= 10

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

# Everything CI runs: unit tests (gcc), the same under clang ASan+UBSan, the
# certificate walkthrough, the service API end to end, and the Azure SDK interop.
test: deps
	$(MAKE) format-check
	$(MAKE) unit
	$(MAKE) asan
	$(MAKE) fuzz FUZZ_SECONDS=5
	$(MAKE) e2e
	$(MAKE) interop
	$(MAKE) console

# Every fuzz target under ASan+UBSan for FUZZ_SECONDS each (CI: 5 s each).
fuzz:
	./scripts/fuzz $(BUILD) $(FUZZ_SECONDS)

e2e: build
	./tests/walkthrough/certs.sh $(BUILD)/hubctl
	./tests/e2e/service_api.sh $(BUILD)
	./tests/e2e/readme_walkthrough.sh $(BUILD)
	./tests/e2e/device_mqtt.sh $(BUILD)
	./tests/e2e/device_https.sh $(BUILD)
	./tests/e2e/twin_api.sh $(BUILD)
	./tests/e2e/dps_api.sh $(BUILD)
	./tests/e2e/dps_cli.sh $(BUILD)
	./tests/e2e/hostile.sh $(BUILD)
	./tests/e2e/hostile_flood.sh $(BUILD)
	./tests/e2e/revocation.sh $(BUILD)
	./tests/e2e/resumption.sh $(BUILD)
	./tests/e2e/crash_loop.sh $(BUILD)
	./tests/e2e/disk_full.sh $(BUILD)
	./tests/e2e/valgrind.sh $(BUILD)
	./scripts/bench-smoke $(BUILD)

interop: build
	cd tests/interop && npm ci --no-audit --no-fund
	./tests/e2e/interop_node.sh $(BUILD)

# The web console in headless Chromium (playwright-core drives Debian's chromium).
console: build
	cd tests/console && npm ci --no-audit --no-fund
	./tests/e2e/console.sh $(BUILD)

# hubd and Mosquitto under the same load, side by side (prints figures; never fails on them).
bench: build
	./scripts/bench $(BUILD)

run: deps build
	./scripts/run-hub $(BUILD)

# The walkthrough's certificates alone, printed step by step (no hub needed).
demo-certs: build
	./scripts/walkthrough-certs $(BUILD)/hubctl $(BUILD)/walkthrough

format:
	find src tests bench fuzz -name '*.[ch]' | xargs clang-format -i

format-check:
	find src tests bench fuzz -name '*.[ch]' | xargs clang-format --dry-run -Werror

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
