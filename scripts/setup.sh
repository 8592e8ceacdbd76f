#!/usr/bin/env bash
# Installs the Debian packages Outpost needs to build, test and run its demo.
# Idempotent: prints nothing and touches nothing when every package is present.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  clang libclang-rt-14-dev clang-format clang-tidy
  libsqlite3-dev sqlite3 libsodium-dev libboost-dev libcereal-dev
  nlohmann-json3-dev libcli11-dev libtomlplusplus-dev libncurses-dev
  libgtest-dev libgmock-dev
  tmux curl procps jq
  # The analytics sink's integration tests run a real ClickHouse (docs/analytics.md); Debian 12
  # ships 18.16. The tests start it from their own config: the package's service is not used.
  clickhouse-server
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "setup: installing ${missing[*]}" >&2
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done" >&2
