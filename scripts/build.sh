#!/usr/bin/env bash
# Installs dependencies (scripts/setup.sh) and builds a preset (default: release).
# Usage: scripts/build.sh [PRESET] [TARGET...]   (no targets: everything)
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-release}"
shift || true
scripts/setup.sh
if [[ ! -f "build/$preset/build.ninja" ]]; then
  cmake --preset "$preset" >/dev/null
fi
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build --preset "$preset" "${targets[@]}" -- -j"${OUTPOST_JOBS:-2}"
