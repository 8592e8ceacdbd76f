#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (preset "fuzz" in build/fuzz: only the fuzz targets and
# the libraries they link) and runs each for SECONDS (default 30) on its seed corpus in
# tests/fuzz/corpus/NAME plus a working corpus in build/fuzz/corpus/NAME. The targets are the
# files tests/fuzz/NAME_fuzz.cc (the one list: tests/fuzz/CMakeLists.txt globs the same), or the
# NAMEs given after SECONDS. Exits non-zero as soon as a target crashes, leaks, hits a sanitizer
# report or times out; the input that did it is written to build/fuzz/artifacts/NAME/
# (reproduce: build/fuzz/tests/fuzz/NAME_fuzz FILE). docs/testing.md, "Fuzzing".
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
if [[ ! "$seconds" =~ ^[0-9]+$ ]] || (( seconds < 1 )); then
  echo "usage: scripts/fuzz.sh SECONDS [NAME...]" >&2
  exit 2
fi
shift || true
names=("$@")
if (( ${#names[@]} == 0 )); then
  for source in tests/fuzz/*_fuzz.cc; do
    base="$(basename "$source" .cc)"
    names+=("${base%_fuzz}")
  done
fi
targets=()
for name in "${names[@]}"; do
  [[ -f "tests/fuzz/${name}_fuzz.cc" ]] || { echo "fuzz: no target tests/fuzz/${name}_fuzz.cc" >&2; exit 2; }
  targets+=("${name}_fuzz")
done
scripts/build.sh fuzz "${targets[@]}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
for name in "${names[@]}"; do
  work="build/fuzz/corpus/$name"
  artifacts="build/fuzz/artifacts/$name"
  mkdir -p "$work" "$artifacts"
  echo "== fuzz ${name}_fuzz for ${seconds}s"
  "build/fuzz/tests/fuzz/${name}_fuzz" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "$work" "tests/fuzz/corpus/$name"
done
echo "== fuzz: no crash in ${#names[@]} target(s), ${seconds}s each"
