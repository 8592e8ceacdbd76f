#!/usr/bin/env bash
# Installs dependencies (scripts/setup.sh) and builds the given preset (default: release).
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-release}"
scripts/setup.sh
if [[ ! -f "build/$preset/build.ninja" ]]; then
  cmake --preset "$preset" >/dev/null
fi
cmake --build --preset "$preset" -- -j"${OUTPOST_JOBS:-2}"
