#!/usr/bin/env bash
# Checks the C++ style of what changed since the base commit in .style-base (or BASE), as
# docs/decisions/0017-style-on-changed-lines.md decides and docs/testing.md ("Style") explains:
#   format  every C++ file added since the base must match .clang-format in full; in every other
#           changed file (edited or moved), the changed lines must;
#   tidy    clang-tidy (.clang-tidy's checks, any warning fails) on every .cc file added or edited
#           since the base, compiled as the release build compiles it (build/release's
#           compile_commands.json, made by `scripts/build.sh release` if missing).
# Usage: scripts/style.sh [format|tidy|all] [BASE]   (default: all, the commit in .style-base)
# Exits 0 when clean, 1 on a finding (printed), 2 on a usage or set-up error.
set -euo pipefail
cd "$(dirname "$0")/.."

what="${1:-all}"
case "$what" in
  format | tidy | all) ;;
  -h | --help)
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "usage: scripts/style.sh [format|tidy|all] [BASE]" >&2
    exit 2
    ;;
esac
base="${2:-$(tr -d '[:space:]' < .style-base)}"
if ! git cat-file -e "${base}^{commit}" 2>/dev/null; then
  echo "style: base commit '$base' is not in this clone (a shallow clone? fetch its history)" >&2
  exit 2
fi
for tool in clang-format clang-format-diff clang-tidy jq; do
  command -v "$tool" >/dev/null || { echo "style: $tool is missing (scripts/setup.sh installs it)" >&2; exit 2; }
done

# Changed C++ files since the base (committed or not), one "STATUS<TAB>PATH<TAB>OLD PATH" per
# line; a moved file's line names its new path and the path it had at the base (else PATH again).
changes="$(git diff --name-status -M --diff-filter=AMR "$base" -- '*.cc' '*.h' |
  awk -F'\t' '{ print substr($1, 1, 1) "\t" $NF "\t" $2 }')"
status=0

check_format() {
  local added=0 edited=0 bad=0
  while IFS=$'\t' read -r kind path from; do
    [[ -n "$path" ]] || continue
    if [[ "$kind" == "A" ]]; then
      added=$((added + 1))
      if ! clang-format --dry-run -Werror "$path" 2>/dev/null; then
        echo "format: $path (added since the base) does not match .clang-format; run: clang-format -i $path"
        bad=$((bad + 1))
      fi
    else
      edited=$((edited + 1))
      local fix
      # Both paths, so that git sees a move as a move and only its edited lines count.
      fix="$(git diff -U0 -M "$base" -- "$from" "$path" | clang-format-diff -p1 2>&1 || true)"
      if [[ -n "$fix" ]]; then
        echo "format: changed lines of $path do not match .clang-format; the fix:"
        echo "$fix"
        bad=$((bad + 1))
      fi
    fi
  done <<< "$changes"
  echo "== style format: $added added file(s) in full, $edited changed file(s) by line, $bad to fix"
  (( bad == 0 )) || status=1
}

check_tidy() {
  local sources=()
  while IFS=$'\t' read -r kind path _; do
    [[ "$kind" == "A" || "$kind" == "M" ]] && [[ "$path" == *.cc ]] && sources+=("$path")
  done <<< "$changes"
  if (( ${#sources[@]} == 0 )); then
    echo "== style tidy: no .cc file added or edited since the base"
    return
  fi
  [[ -f build/release/compile_commands.json ]] || scripts/build.sh release >/dev/null
  # clang reads the release build's commands without gcc's precompiled header (not a clang PCH)
  # and without gcc-only warning flags; warnings are reported, not turned into compile errors.
  mkdir -p build/tidy
  jq '[.[] | .command |= (gsub(" -include [^ ]*cmake_pch\\.hxx"; "") | gsub(" -Winvalid-pch"; "")
        | gsub(" -Wno-(restrict|stringop-overflow|stringop-overread)"; "") | gsub(" -Werror"; ""))]' \
    build/release/compile_commands.json > build/tidy/compile_commands.json
  local bad=0 n=0 skipped=0 checked=()
  for path in "${sources[@]}"; do
    if ! jq -e --arg f "$(pwd)/$path" 'any(.[]; .file == $f)' build/tidy/compile_commands.json >/dev/null; then
      skipped=$((skipped + 1))  # not in the release build (a fuzz target, a bench off by option)
      continue
    fi
    checked+=("$path")
  done
  n=${#checked[@]}
  # clang-tidy takes 20-30 s of a core per file here (Asio and Beast headers): one per core.
  local jobs="${OUTPOST_JOBS:-$(nproc)}"
  echo "-- tidy: $n file(s), $jobs at a time"
  local failed=""
  if (( n > 0 )); then
    failed=$(printf '%s\0' "${checked[@]}" | xargs -0 -P "$jobs" -I{} sh -c '
      if out=$(clang-tidy -p build/tidy --quiet --warnings-as-errors="*" "$1" 2>/dev/null); then
        echo "-- tidy ok $1" >&2
      else
        printf "%s\n-- tidy FINDINGS in %s\n" "$out" "$1" >&2
        echo "$1"
      fi' _ {})
  fi
  bad=$(grep -c . <<< "$failed" || true)
  echo "== style tidy: $n file(s) checked, $skipped not in the release build, $bad with findings"
  (( bad == 0 )) || status=1
}

echo "== style: changes since $(git rev-parse --short "$base")"
[[ "$what" == "tidy" ]] || check_format
[[ "$what" == "format" ]] || check_tidy
exit "$status"
