#!/usr/bin/env bash
# The Outpost demo chain: HQ and three stores as real outpostd processes on 127.0.0.1, enrolled
# through the CLI, HQ-signed program rules reaching every store, then a scripted day through the
# POS API: enrollments, purchases, top-ups, a store losing its link, offline spends there (one
# served from local rights, one refused for lack of them), an online spend served by the rights
# broker, the link coming back, convergence, `outpost log verify` on every node, and an auditor's
# offline `outpost-audit verify` of HQ's signed export. Leaves the chain running unless
# --no-keep. Never leaves stray processes on failure.
#
# Usage: scripts/demo.sh [--no-keep] [--dir DIR]
#        scripts/demo.sh --stop DIR      stop a chain left running
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

KEEP=1
DEMO_DIR=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --no-keep) KEEP=0; shift ;;
    --dir) DEMO_DIR="$2"; shift 2 ;;
    --stop)
      for f in "$2"/*/outpostd.ports; do
        [[ -f "$f" ]] || continue
        pid=$(sed 's/.*pid=\([0-9]*\).*/\1/' "$f")
        kill -TERM "$pid" 2>/dev/null && echo "stopped pid $pid ($(dirname "$f"))"
      done
      exit 0 ;;
    -h|--help) sed -n '2,/^$/p' "$0" | sed -n '/^#/p' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

targets=(outpost outpostd outpost-audit outpost-top)
scripts/build.sh release "${targets[@]}" >&2
BIN="$ROOT/build/release"
OUTPOST="$BIN/node/outpost"
OUTPOSTD="$BIN/node/outpostd"
[[ -n "$DEMO_DIR" ]] || DEMO_DIR=$(mktemp -d "${TMPDIR:-/tmp}/outpost-demo.XXXXXX")
mkdir -p "$DEMO_DIR"
DEMO_DIR=$(cd "$DEMO_DIR" && pwd)

PIDS=()
cleanup() {
  local rc=$?
  if [[ $rc -ne 0 || $KEEP -eq 0 ]]; then
    for p in "${PIDS[@]:-}"; do [[ -n "$p" ]] && kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]:-}"; do [[ -n "$p" ]] && wait "$p" 2>/dev/null || true; done
    [[ $rc -ne 0 ]] && echo "demo: FAILED (exit $rc); logs in $DEMO_DIR/*/outpostd.log" >&2
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bold() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
say() { printf '   %s\n' "$*"; }
die() { echo "demo: $*" >&2; exit 1; }

# --- identities -----------------------------------------------------------------------------
bold "Enrolling HQ and three stores (only public keys travel)"
"$OUTPOST" --data "$DEMO_DIR/hq" hq init --name hq >/dev/null
say "HQ root and network created in $DEMO_DIR/hq"
STORES=(store-1 store-2 store-3)
for s in "${STORES[@]}"; do
  "$OUTPOST" --data "$DEMO_DIR/$s" init --name "$s" >/dev/null
  "$OUTPOST" --data "$DEMO_DIR/$s" enroll-request --out "$DEMO_DIR/$s.request.json" >/dev/null
  "$OUTPOST" --data "$DEMO_DIR/hq" hq enroll "$s" --role store --request "$DEMO_DIR/$s.request.json" \
    --out "$DEMO_DIR/$s.enroll.json" >/dev/null
  "$OUTPOST" --data "$DEMO_DIR/$s" init --enroll "$DEMO_DIR/$s.enroll.json" >/dev/null
  say "$s enrolled"
done
declare -A TOKEN ADMIN_TOKEN
for n in hq "${STORES[@]}"; do
  TOKEN[$n]=$("$OUTPOST" --data "$DEMO_DIR/$n" terminal add till-1 2>/dev/null)
  ADMIN_TOKEN[$n]=$("$OUTPOST" --data "$DEMO_DIR/$n" terminal add ops --role admin 2>/dev/null)
  echo "${ADMIN_TOKEN[$n]}" >"$DEMO_DIR/$n/admin.token"
  chmod 600 "$DEMO_DIR/$n/admin.token"
done

# --- daemons --------------------------------------------------------------------------------
declare -A API ADMIN PEER
start_node() {  # name role [peer address]
  local n=$1 role=$2 peer=${3:-}
  {
    echo "data_dir = \"$DEMO_DIR/$n\""
    echo "role = \"$role\""
    echo "sync_interval_ms = 200"
    echo "[api]"; echo "listen = \"127.0.0.1:0\""
    echo "[admin]"; echo "listen = \"127.0.0.1:0\""
    echo "[peer]"; echo "listen = \"127.0.0.1:0\""
    if [[ -n "$peer" ]]; then echo "[[peers]]"; echo "name = \"hq\""; echo "address = \"$peer\""; fi
  } >"$DEMO_DIR/$n.toml"
  rm -f "$DEMO_DIR/$n/outpostd.ports"
  "$OUTPOSTD" --config "$DEMO_DIR/$n.toml" 2>>"$DEMO_DIR/$n/outpostd.log" &
  PIDS+=($!)
  for _ in $(seq 1 100); do [[ -s "$DEMO_DIR/$n/outpostd.ports" ]] && break; sleep 0.05; done
  [[ -s "$DEMO_DIR/$n/outpostd.ports" ]] || die "$n did not start (see $DEMO_DIR/$n/outpostd.log)"
  local line; line=$(cat "$DEMO_DIR/$n/outpostd.ports")
  API[$n]=$(sed 's/.*api=\([^ ]*\).*/\1/' <<<"$line")
  ADMIN[$n]=$(sed 's/.*admin=\([^ ]*\).*/\1/' <<<"$line")
  PEER[$n]=$(sed 's/.*peer=\([^ ]*\).*/\1/' <<<"$line")
  say "$n ($role) POS API ${API[$n]}  admin ${ADMIN[$n]}  peers ${PEER[$n]}"
}
bold "Starting the chain on 127.0.0.1"
start_node hq hq
for s in "${STORES[@]}"; do start_node "$s" store "${PEER[hq]}"; done

pos() {  # node method path [body]
  local n=$1 m=$2 p=$3 body=${4:-}
  if [[ -n "$body" ]]; then
    curl -sS -X "$m" -H "Authorization: Bearer ${TOKEN[$n]}" -H 'Content-Type: application/json' \
      --data "$body" "http://${API[$n]}$p"
  else
    curl -sS -X "$m" -H "Authorization: Bearer ${TOKEN[$n]}" "http://${API[$n]}$p"
  fi
}
admin() {  # node method path [body]
  local n=$1 m=$2 p=$3 body=${4:-{\}}
  curl -sS -X "$m" -H "Authorization: Bearer ${ADMIN_TOKEN[$n]}" --data "$body" "http://${ADMIN[$n]}$p"
}
rid() { echo "demo-$1-$RANDOM$RANDOM"; }
show() {  # node json: one-line summary of an op answer
  jq -r 'if .error then "REFUSED \(.error): \(.message)" else "ok  op \(.op)  points \(.points.balance)  wallet \(.wallet.balance) (rights here \(.wallet.rights_here))" end'
}
vv_of() { admin "$1" GET /admin/v1/node | jq -c '.version_vector'; }
wait_converged() {  # bounded: 100 x 0.1 s
  local want
  for _ in $(seq 1 100); do
    want=$(vv_of hq)
    local same=1
    for s in "$@"; do [[ "$(vv_of "$s")" == "$want" ]] || same=0; done
    [[ $same -eq 1 ]] && return 0
    sleep 0.1
  done
  return 1
}
for _ in $(seq 1 100); do
  up=$(admin hq GET /admin/v1/node | jq '.links_up')
  [[ "$up" -ge 3 ]] && break
  sleep 0.1
done
say "HQ has $up store links up"

bold "HQ issues the chain's program rules (signed with the root key, carried by sync)"
cat >"$DEMO_DIR/rules.toml" <<'RULES'
# Launch promotion: members earn 2 points per 1.00, silver 3, gold 4.
version = 2
unit_minor = 100
window_months = 12

[[tier]]
name = "member"
threshold_minor = 0
points_per_unit = 2

[[tier]]
name = "silver"
threshold_minor = 50_000
points_per_unit = 3

[[tier]]
name = "gold"
threshold_minor = 200_000
points_per_unit = 4
RULES
say "$("$OUTPOST" --data "$DEMO_DIR/hq" hq rules "$DEMO_DIR/rules.toml")"
for _ in $(seq 1 100); do
  behind=0
  for n in hq "${STORES[@]}"; do
    [[ "$(admin "$n" GET /admin/v1/node | jq '.rules_version')" == 2 ]] || behind=1
  done
  [[ $behind -eq 0 ]] && break
  sleep 0.1
done
[[ $behind -eq 0 ]] || die "the signed rules did not reach every store"
say "every node runs rules v2 from HQ: $("$OUTPOST" --data "$DEMO_DIR/store-2" rules show | head -1)"

# --- a day in the chain ---------------------------------------------------------------------
bold "Morning: members enroll and shop"
ANN=$(pos store-1 POST /v1/members "{\"request_id\":\"$(rid e)\",\"card\":\"40001234\",\"name\":\"Ann Lee\",\"phone\":\"+4915100001\"}" | jq -r .member)
say "store-1 enrolls Ann Lee, card 40001234, member $ANN"
BEN=$(pos store-2 POST /v1/members "{\"request_id\":\"$(rid e)\",\"card\":\"40005678\",\"name\":\"Ben Ode\"}" | jq -r .member)
say "store-2 enrolls Ben Ode, card 40005678, member $BEN"
say "store-1: Ann buys for 84.50 -> $(pos store-1 POST /v1/members/40001234/earn "{\"request_id\":\"$(rid p)\",\"purchase_minor\":8450,\"receipt\":\"R-1001\"}" | show)"
say "store-1: Ann tops up 100.00 -> $(pos store-1 POST /v1/members/40001234/topup "{\"request_id\":\"$(rid t)\",\"amount_minor\":10000}" | show)"
say "store-2: Ben tops up 20.00 -> $(pos store-2 POST /v1/members/40005678/topup "{\"request_id\":\"$(rid t)\",\"amount_minor\":2000}" | show)"
CY=$(pos store-3 POST /v1/members "{\"request_id\":\"$(rid e)\",\"card\":\"40009012\",\"name\":\"Cy Park\"}" | jq -r .member)
say "store-3 enrolls Cy Park, card 40009012, member $CY"
say "store-3: Cy tops up 40.00 -> $(pos store-3 POST /v1/members/40009012/topup "{\"request_id\":\"$(rid t)\",\"amount_minor\":4000}" | show)"
wait_converged "${STORES[@]}" || die "the chain did not converge"
say "all nodes converged: version vector $(vv_of hq)"

bold "Noon: store-3 loses its link"
admin store-3 POST /admin/v1/links '{"state":"down"}' >/dev/null
say "store-3 links: $(admin store-3 GET /admin/v1/peers | jq -c '[.peers[] | {name, state}]')"
say "store-3 (offline): Ann buys for 12.00 -> $(pos store-3 POST /v1/members/40001234/earn "{\"request_id\":\"$(rid p)\",\"purchase_minor\":1200}" | show)"
say "store-3 (offline): Ann pays 30.00 from her wallet ->"
say "   $(pos store-3 POST /v1/members/40001234/spend "{\"request_id\":\"$(rid s)\",\"amount_minor\":3000}" | show)"
say "   (her 100.00 of rights sit at store-1; store-3 cannot reach anyone, so it refuses rather than risk a negative balance)"
say "store-3 (offline): Cy pays 15.00 from his wallet -> $(pos store-3 POST /v1/members/40009012/spend "{\"request_id\":\"$(rid s)\",\"amount_minor\":1500}" | show)"
say "   (Cy topped up here: the rights are local, so store-3 serves him without any link)"
say "store-2 (online): Ann pays 30.00 from her wallet -> $(pos store-2 POST /v1/members/40001234/spend "{\"request_id\":\"$(rid s)\",\"amount_minor\":3000}" | show)"
say "   (store-2 asked HQ for rights; HQ gathered them from store-1 and moved them on)"
say "store-2: Ben pays 5.00 -> $(pos store-2 POST /v1/members/40005678/spend "{\"request_id\":\"$(rid s)\",\"amount_minor\":500}" | show)"

bold "Afternoon: store-3's link comes back"
admin store-3 POST /admin/v1/links '{"state":"up"}' >/dev/null
wait_converged "${STORES[@]}" || die "the chain did not converge after the outage"
for n in hq "${STORES[@]}"; do
  say "$(printf '%-8s' "$n") vv $(vv_of "$n")  Ann: $(pos "$n" GET /v1/members/40001234 | jq -r '"points \(.points.balance) wallet \(.wallet.balance) tier \(.tier)"')"
done

bold "Every node verifies its signed log"
for n in hq "${STORES[@]}"; do
  say "$(printf '%-8s' "$n") $("$OUTPOST" --data "$DEMO_DIR/$n" log verify | tail -1)"
done

bold "An auditor verifies the chain offline, with HQ's root public key alone"
ROOT_KEY=$("$OUTPOST" --data "$DEMO_DIR/hq" --json roster show | jq -r .root_public_key)
say "$("$OUTPOST" --data "$DEMO_DIR/hq" hq checkpoint | head -1)"
"$OUTPOST" --data "$DEMO_DIR/hq" export-audit --out "$DEMO_DIR/audit-bundle" >/dev/null
say "bundle exported to $DEMO_DIR/audit-bundle"
"$BIN/audit/outpost-audit" verify "$DEMO_DIR/audit-bundle" --root "$ROOT_KEY" --no-progress >"$DEMO_DIR/audit-report.txt" \
  || die "the audit found problems: $DEMO_DIR/audit-report.txt"
say "$(grep -m1 'RESULT' "$DEMO_DIR/audit-report.txt")  (full report: $DEMO_DIR/audit-report.txt)"

bold "HQ looks at its members (docs/reports.md)"
"$OUTPOST" --data "$DEMO_DIR/hq" report quadrants --svg "$DEMO_DIR/quadrants.svg" | sed 's/^/   /'
say "chart: $DEMO_DIR/quadrants.svg (opens in a browser)"
"$OUTPOST" --data "$DEMO_DIR/hq" report liability | sed 's/^/   /'

bold "Done"
if [[ $KEEP -eq 1 ]]; then
  say "The chain is still running (data in $DEMO_DIR)."
  say "Watch it:  $BIN/admin-tui/outpost-top --admin ${ADMIN[hq]} --token-file $DEMO_DIR/hq/admin.token"
  say "Stop it:   scripts/demo.sh --stop $DEMO_DIR"
else
  say "Stopping the chain (--no-keep)."
fi
