#!/usr/bin/env bash
# Installs dependencies, builds (preset, default release) and runs the whole CTest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-release}"
scripts/build.sh "$preset"
ctest --preset "$preset"
