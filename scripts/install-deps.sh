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
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "[deps] installing: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
