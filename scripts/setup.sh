#!/usr/bin/env bash
# Sets up everything lrtrain needs on Debian 12 / Ubuntu; idempotent and quick
# when nothing changed. Called by `make setup` (and so by `make demo` / `make test`).
#   - Debian packages: libtorch-dev (CPU libtorch), OpenBLAS (fast BLAS), g++.
#   - Go modules (through the Go module proxy).
#   - gotch adapted to the installed libtorch (tools/gotchadapt, cached in .build/).
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(libopenblas0-pthread g++ make binutils libgloo-dev)
# With LIBTORCH set (an unpacked libtorch, e.g. CUDA 2.1) Debian's is not needed.
[ -z "${LIBTORCH:-}" ] && pkgs+=(libtorch-dev)
need=()
for pkg in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || need+=("$pkg")
done
if [ "${#need[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${need[*]}"
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

command -v go >/dev/null || { echo "setup: Go 1.26 or newer is required (https://go.dev/dl)"; exit 1; }

GOWORK=off go mod download
GOWORK=off go run ./tools/gotchadapt
