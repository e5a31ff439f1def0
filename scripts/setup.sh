#!/usr/bin/env bash
# Sets up everything lrtrain needs on Debian 12 / Ubuntu; idempotent and quick
# when nothing changed. Called by `make setup` (and so by `make demo` / `make test`).
#   - Debian packages: OpenBLAS (fast BLAS), g++, Gloo, and libtorch-dev (CPU
#     libtorch) unless another libtorch is found ($LIBTORCH, pip's torch).
#   - Go modules (through the Go module proxy).
#   - gotch adapted to the detected libtorch, and phiop's cgo flags for it
#     (tools/gotchadapt, cached in .build/; phiop/cgo_libtorch.go).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v go >/dev/null || { echo "setup: Go 1.26 or newer is required (https://go.dev/dl), or, offline, the bundle of scripts/gpu-bundle.sh: . scripts/offline-env.sh"; exit 1; }

# Offline (scripts/offline-env.sh sourced: Go, the module cache and Gloo come from the
# carried bundle): nothing to install, only gotch's adaptation to the libtorch found.
if [ "${LRTRAIN_OFFLINE:-}" = 1 ]; then
  echo "setup: offline (Go $(go env GOVERSION) from $(go env GOROOT), modules from $(go env GOMODCACHE)); no apt, no downloads"
  GOWORK=off go run ./tools/gotchadapt
  exit 0
fi

pkgs=(libopenblas0-pthread g++ make binutils libgloo-dev)
# Debian's libtorch only when no other is there: with LIBTORCH set (an unpacked
# libtorch) or pip's torch (e.g. a CUDA wheel on a GPU machine), that one is used.
if [ -z "${LIBTORCH:-}" ] && ! GOWORK=off go run ./tools/gotchadapt -detect >/dev/null 2>&1; then
  pkgs+=(libtorch-dev)
fi
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

GOWORK=off go mod download
GOWORK=off go run ./tools/gotchadapt
