#!/usr/bin/env bash
# Regenerates the seed corpora of the fuzz targets in tests/fuzz/corpus/ from real encodings:
# fuzz_seeds writes the ops, sync messages, session scripts, documents, Merkle proofs and key
# files of the fixed fuzz world (tests/fuzz/fuzz_world.h; the same files on every run), and a
# small chain made with the `outpost` CLI is exported as audit bundles and inclusion proofs, which
# fuzz_seeds packs as bundle_fuzz and proof_fuzz inputs (those differ on every run: new keys, new
# clock). Run it after a format change and commit the corpus. The link corpus (link_fuzz) is kept
# by hand. docs/testing.md, "Fuzzing".
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh fuzz fuzz_seeds
scripts/build.sh release outpost outpost-audit
seeds="$PWD/build/fuzz/tests/fuzz/fuzz_seeds"
cli="$PWD/build/release/node/outpost"
audit_cli="$PWD/build/release/audit/outpost-audit"
corpus="$PWD/tests/fuzz/corpus"

for name in op sync_message sync_session documents merkle key_file bundle proof; do
  rm -rf "${corpus:?}/$name"
done
"$seeds" world "$corpus"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
hq="$tmp/hq"
run() { "$cli" --json --data "$hq" "$@"; }
root="$(run hq init --name hq | jq -r .root_public_key)"
node="$(run status | jq -r .node_id)"
m1="$(run member add --card 40000001 --name "Ann Lee" --phone +15550100 | jq -r .member)"
m2="$(run member add --card 40000002 --name "Bo Chen" | jq -r .member)"
run topup "$m1" --amount 5000 --receipt R-1 >/dev/null
run earn "$m1" --purchase 12345 --receipt R-2 >/dev/null
run spend "$m1" --amount 700 --receipt R-3 >/dev/null
topup="$(run topup "$m2" --amount 3000 | jq -r .op)"
run reverse "$topup" >/dev/null
run member update "$m2" --phone +15550199 >/dev/null
# A store enrolled and then revoked: three roster versions in the bundle.
"$cli" --data "$tmp/store" init --name store-a >/dev/null
"$cli" --data "$tmp/store" enroll-request --out "$tmp/request.json" >/dev/null
run hq enroll store-a --request "$tmp/request.json" --out "$tmp/enrollment.json" >/dev/null
run hq checkpoint >/dev/null
run redeem "$m1" --points 10 >/dev/null  # a tail behind the checkpoint
run hq revoke store-a --after-seq 0 >/dev/null
run hq checkpoint >/dev/null
run earn "$m2" --purchase 2000 >/dev/null
run export-audit --out "$tmp/full" >/dev/null
run export-audit --out "$tmp/today" --from "$(date -u +%F)" >/dev/null
run export-audit --out "$tmp/tomorrow" --from "$(date -u -d tomorrow +%F)" >/dev/null

"$seeds" bundle "$root" "$tmp/full" "$corpus/bundle/full" 40000001 "$node:3"
for seq in 1 5 9; do
  "$audit_cli" prove "$tmp/full" "$node:$seq" >"$tmp/proof-$seq.json"
  "$seeds" proof "$root" "$tmp/proof-$seq.json" "$corpus/proof/op-$seq"
done
"$seeds" bundle "$root" "$tmp/today" "$corpus/bundle/date-range" "$m2"
"$seeds" bundle "$root" "$tmp/tomorrow" "$corpus/bundle/date-range-empty"
# A bundle of a chain with one op, and one without its tree head sets and checkpoints.
rm -f "$tmp/full/tree_heads.bin" "$tmp/full/checkpoints.bin"
"$seeds" bundle "$root" "$tmp/full" "$corpus/bundle/no-signed-heads" 40000002
echo "fuzz-seeds: wrote $(find "$corpus" -type f | wc -l) files under tests/fuzz/corpus"
