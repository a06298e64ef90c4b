#!/usr/bin/env bash
# scripts/torch-parity.sh: the PyTorch parity test (python/test_parity.py), as `make test` runs it
# after the doctest binary. Needs the build (BUILD, default build/: swiattn, swiattn_step_dump) and
# a python3 that imports torch: $SWIATTN_PYTHON if set, else /usr/bin/python3 (Debian's
# python3-torch, which `make deps` installs), else the first python3 on PATH.
# Without one it prints SKIPPED in a banner and exits 0, or exits 1 when SWIATTN_REQUIRE_TORCH=1
# (CI sets it, so a parity test that silently stopped running cannot pass there).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}

if [ -n "${SWIATTN_PYTHON:-}" ]; then
  candidates=("$SWIATTN_PYTHON")  # asked for explicitly: no fallback
else
  candidates=(/usr/bin/python3 python3)
fi
py=""
for candidate in "${candidates[@]}"; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c "import torch" >/dev/null 2>&1; then
    py=$candidate
    break
  fi
done

if [ -z "$py" ]; then
  echo "################################################################################"
  echo "# torch parity: SKIPPED -- no python3 that imports torch (tried: ${candidates[*]})"
  echo "# The C++ model was NOT compared with PyTorch. Install Debian's python3-torch"
  echo "# (make deps does) or set SWIATTN_PYTHON to a python3 with PyTorch."
  echo "################################################################################"
  if [ "${SWIATTN_REQUIRE_TORCH:-0}" = 1 ]; then
    echo "torch parity: SWIATTN_REQUIRE_TORCH=1, so a skip is a failure"
    exit 1
  fi
  exit 0
fi
exec "$py" python/test_parity.py --build "$BUILD"
