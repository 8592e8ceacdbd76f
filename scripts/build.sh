#!/usr/bin/env bash
# Installs dependencies (scripts/setup.sh) and builds a preset (default: release).
# Usage: scripts/build.sh [PRESET] [TARGET...]   (no targets: everything)
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-release}"
shift || true
scripts/setup.sh
# ccache: paths relative to the checkout, so another checkout (a git worktree, a CI clone) of the
# same sources hits; precompiled headers need the sloppiness below to be cacheable at all.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$(pwd)}"
export CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-true}"
export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-5G}"
export CCACHE_SLOPPINESS="${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}"
if [[ ! -f "build/$preset/build.ninja" ]]; then
  cmake --preset "$preset" >/dev/null
fi
targets=()
for t in "$@"; do targets+=(--target "$t"); done
# CI and the 2-core machines pin two jobs; the dev preset uses every core unless OUTPOST_JOBS says.
jobs=()
if [[ -n "${OUTPOST_JOBS:-}" ]]; then
  jobs=(-j"$OUTPOST_JOBS")
elif [[ "$preset" != "dev" ]]; then
  jobs=(-j2)
fi
cmake --build --preset "$preset" "${targets[@]}" -- "${jobs[@]}"
