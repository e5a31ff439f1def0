#!/usr/bin/env bash
# What `make test-multinode` needs beyond `make setup`: root (the harness creates
# network namespaces) and iproute2's ip. Idempotent.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "test-multinode: needs root (it creates network namespaces): sudo make test-multinode" >&2
  exit 1
fi
if ! dpkg-query -W -f='${Status}' iproute2 2>/dev/null | grep -q "ok installed"; then
  echo "setup: installing Debian package iproute2"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends iproute2 >/dev/null
fi
