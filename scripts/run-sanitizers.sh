#!/usr/bin/env bash
# Builds the test binary and the CLI with AddressSanitizer + UndefinedBehaviorSanitizer in their
# own build directory (build-sanitize/) and runs every test. Exits non-zero on any test failure
# and on any sanitizer report: ASan and LeakSanitizer stop the process with an error, and UBSan
# is compiled with -fno-sanitize-recover=undefined, so the first undefined behaviour aborts too.
#
#   scripts/run-sanitizers.sh                 build, then run every test
#   scripts/run-sanitizers.sh -tc='data: *'   extra arguments go to the doctest binary
#
# Choices (see fuzz/README.md for the numbers):
#   - g++ (the project's compiler); its ASan and UBSan runtimes come with gcc, nothing to install.
#   - CUDA off: the sanitizers instrument host code only, and this machine runs no GPU tests.
#   - -O1 -g1: stack traces with line numbers (line tables only, cheap to compile: the build,
#     not the run, is what costs time on a 2-core machine).
#   - LeakSanitizer on: the suite is leak-free under libgomp (measured), so a leak fails the run.
#   - Reports exit with codes 86 (ASan/LSan) and 87 (UBSan), so a report from the CLI, which the
#     hostile-input tests run as a subprocess, cannot be mistaken for its own error status 1.
#   - detect_stack_use_after_return stays off (the default): its fake stack frames are not
#     64-byte aligned, and with -march=native GCC keeps AVX-512 locals there with aligned stores,
#     so it crashes clean code (seen: vmovdqa64 to a 32-byte-aligned address at the end of a
#     test in tests/test_switch.cpp; the runtime's bug, fixed upstream in llvm-project PR 152819).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${SANITIZE_BUILD:-build-sanitize}
jobs=${JOBS:-$(nproc)}
sanitize="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"

start=$(date +%s)
# A build type of its own: CMakeLists.txt pins CMAKE_CXX_FLAGS_RELEASE to -O2 (no -g).
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Sanitize -DCMAKE_CXX_FLAGS_SANITIZE="-O1 -g1" \
  -DCMAKE_CXX_FLAGS="$sanitize" -DCMAKE_EXE_LINKER_FLAGS="$sanitize" -DSWIATTN_CUDA=OFF >/dev/null
cmake --build "$build_dir" -j "$jobs" --target swiattn swiattn_tests
built=$(date +%s)

export ASAN_OPTIONS="exitcode=86:detect_leaks=1:check_initialization_order=1:strict_init_order=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="exitcode=87:print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
status=0
"$build_dir/swiattn_tests" "$@" || status=$?
echo "[sanitize] build $((built - start))s, tests $(( $(date +%s) - built ))s, exit status $status"
exit $status
