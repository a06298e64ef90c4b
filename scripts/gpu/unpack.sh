# scripts/gpu/unpack.sh: on the GPU machine, `source` this to unpack build-gpu/bundle.tar.xz
# (scripts/gpu/bundle.sh) into /tmp/swiattn-gpu and point SW and LD_LIBRARY_PATH at it.
SW=${SW:-/tmp/swiattn-gpu}
bundle=${BUNDLE:-build-gpu/bundle.tar.xz}
if [ ! -f "$bundle" ]; then
  echo "unpack.sh: $bundle not found: run scripts/gpu/bundle.sh here and carry it" >&2
  return 1 2>/dev/null || exit 1
fi
mkdir -p "$SW" && xz -dc "$bundle" | tar -C "$SW" -xf -
export SW
export LD_LIBRARY_PATH="$SW/lib:/usr/local/cuda/lib64:/usr/local/cuda/lib:${LD_LIBRARY_PATH:-}"
echo "unpack.sh: bundle of commit $(cat "$SW/COMMIT") in $SW"
