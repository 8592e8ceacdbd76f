#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (preset "fuzz" in build/fuzz: only the fuzz targets and
# the libraries they link) and runs each for SECONDS (default 60) on its seed corpus in
# tests/fuzz/corpus/NAME plus a working corpus in build/fuzz/corpus/NAME. Exits non-zero as soon
# as a target crashes, leaks, hits a sanitizer report or times out; the input that did it is
# written to build/fuzz/artifacts/NAME/ (reproduce: build/fuzz/tests/fuzz/NAME_fuzz FILE).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
if [[ ! "$seconds" =~ ^[0-9]+$ ]] || (( seconds < 1 )); then
  echo "usage: scripts/fuzz.sh SECONDS" >&2
  exit 2
fi
targets=(link_fuzz)
if [[ ! -f build/fuzz/build.ninja ]]; then
  cmake --preset fuzz >/dev/null
fi
cmake --build build/fuzz --target "${targets[@]}" -- -j"${OUTPOST_JOBS:-2}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
for target in "${targets[@]}"; do
  name="${target%_fuzz}"
  work="build/fuzz/corpus/$name"
  artifacts="build/fuzz/artifacts/$name"
  mkdir -p "$work" "$artifacts"
  echo "== fuzz $target for ${seconds}s"
  "build/fuzz/tests/fuzz/$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "$work" "tests/fuzz/corpus/$name"
done
echo "== fuzz: no crash in ${#targets[@]} target(s)"
