#!/usr/bin/env bash
# Installs the Debian packages swiattn needs, only those missing. Fast when all are present.
set -euo pipefail
# clang, libclang-rt-14-dev (libFuzzer and clang's sanitizer runtimes) and libomp-dev (OpenMP
# for clang) are for `make fuzz` only.
packages=(cmake g++ make pkg-config libeigen3-dev doctest-dev nlohmann-json3-dev libicu-dev npm
          clang libclang-rt-14-dev libomp-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm may come with a node install outside Debian's packages; accept any working npm.
if command -v npm >/dev/null 2>&1; then
  missing=("${missing[@]/npm}")
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
# PyTorch for the parity test (python/test_parity.py, part of make test): Debian's CPU build,
# python3-torch, for /usr/bin/python3. Not needed when that python3 already imports torch.
# Installed without the recommended packages (libtorch-dev and its tool chain); the first install
# brings about 180 packages. A failure here is a warning: the parity test then says SKIPPED.
need_torch=0
if ! dpkg-query -W -f='${Status}' python3-torch 2>/dev/null | grep -q "install ok installed" &&
   ! /usr/bin/python3 -c "import torch" >/dev/null 2>&1; then
  need_torch=1
fi
if [ ${#missing[@]} -eq 0 ] && [ $need_torch -eq 0 ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
if [ ${#missing[@]} -gt 0 ]; then
  echo "[deps] installing: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
if [ $need_torch -eq 1 ]; then
  echo "[deps] installing: python3-torch (for the PyTorch parity test)"
  if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-torch; then
    echo "[deps] WARNING: python3-torch could not be installed: the PyTorch parity test will be SKIPPED"
  fi
fi
