#!/usr/bin/env bash
# Runs lrtrain's test suite against libtorch 2.6 (Debian trixie's libtorch-dev and
# python3-torch) on a machine that has another libtorch, without touching the host's
# /usr: `make test-libtorch26`.
#
#   1. builds a trixie root with debootstrap in $TRIXIE_ROOT (default
#      /var/cache/lrtrain/trixie, outside the clone; reused when present) and installs
#      libtorch 2.6, python3-torch, Gloo, OpenBLAS and g++ into it;
#   2. copies the checkout (tracked and untracked, not ignored, files; or the commit
#      REV names) into the root —
#      a copy, not a bind mount, because setup writes .build/, go.work and phiop's
#      generated cgo flags into the tree it runs in, and the host tree's are for the
#      host's libtorch; the copy keeps its own .build/ between runs;
#   3. bind-mounts the host's Go toolchain (read-only), its module cache, and a
#      separate build cache ($TRIXIE_ROOT-gocache: Go's cache does not hash system
#      headers, so objects built against libtorch 1.13 must not be reused);
#   4. runs `make test` (setup, gofmt, vet, every test) inside the root, or, given
#      arguments, that command after `make setup` (scripts/test-libtorch26.sh go test
#      -run TestX ./model).
#
# Everything is mounted in a private mount namespace, so the mounts vanish with the
# script however it ends; the trap unmounts them too. Needs root (debootstrap,
# chroot, mount). Environment: TRIXIE_ROOT, DEBIAN_MIRROR, MAKE_TARGET (default test),
# REV (a commit to test instead of the working tree).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
root=${TRIXIE_ROOT:-/var/cache/lrtrain/trixie}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
target=${MAKE_TARGET:-test}
pkgs=(libtorch-dev python3-torch libgloo-dev libopenblas0-pthread g++ make binutils git ca-certificates)

if [ "$(id -u)" -ne 0 ]; then
  exec sudo -E "$0" "$@"
fi

# Re-run in a private mount namespace: nothing mounted here is seen by, or left on,
# the host.
if [ -z "${LRTRAIN_IN_NS:-}" ]; then
  LRTRAIN_IN_NS=1 exec unshare --mount --propagation private "$0" "$@"
fi

log() { echo "test-libtorch26: $*"; }
start=$(date +%s)

if ! command -v debootstrap >/dev/null; then
  log "installing debootstrap"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

mounts=()
cleanup() {
  local i
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
    umount "${mounts[i]}" 2>/dev/null || umount -l "${mounts[i]}" 2>/dev/null || true
  done
}
trap cleanup EXIT
bind() { # bind SRC DST [ro]
  mkdir -p "$2"
  mount --bind "$1" "$2"
  mounts+=("$2")
  [ "${3:-}" = ro ] && mount -o remount,bind,ro "$2"
  return 0
}
system_mounts() {
  mkdir -p "$root/proc" "$root/sys" "$root/dev/shm" "$root/dev/pts"
  mount -t proc proc "$root/proc" && mounts+=("$root/proc")
  bind /sys "$root/sys" ro
  bind /dev "$root/dev"
  mount -t tmpfs -o mode=1777 shm "$root/dev/shm" && mounts+=("$root/dev/shm")
  bind /dev/pts "$root/dev/pts"
}

# 1. The root: debootstrap once (into a temporary directory, renamed when complete),
#    then the packages, re-installed only when the list changes.
if [ ! -x "$root/usr/bin/apt-get" ]; then
  log "debootstrap trixie into $root (first run; downloads ~150 MB)"
  mkdir -p "$(dirname "$root")"
  rm -rf "$root.tmp"
  debootstrap --variant=minbase trixie "$root.tmp" "$mirror"
  mv "$root.tmp" "$root"
fi
cp /etc/resolv.conf "$root/etc/resolv.conf"
system_mounts
want="${pkgs[*]}"
if [ "$(cat "$root/.lrtrain-packages" 2>/dev/null)" != "$want" ]; then
  log "installing into the root: $want (first run; ~1.5 GB)"
  chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
  chroot "$root" apt-get clean
  echo "$want" >"$root/.lrtrain-packages"
fi
log "libtorch-dev $(chroot "$root" dpkg-query -W -f='${Version}' libtorch-dev), g++ $(chroot "$root" g++ -dumpversion)"

# 2. The checkout, copied; .build/ of the previous run is kept (gotchadapt's cache).
dst="$root/lrtrain"
mkdir -p "$dst"
find "$dst" -mindepth 1 -maxdepth 1 ! -name .build -exec rm -rf {} +
if [ -n "${REV:-}" ]; then # a commit, e.g. REV=HEAD: without others' uncommitted edits
  git -C "$repo" archive "$REV" | tar -C "$dst" -xf -
else
  (cd "$repo" && git ls-files -z -co --exclude-standard | tar --null --ignore-failed-read -T - -cf -) | tar -C "$dst" -xf -
fi
# A repository of its own, so `git ls-files` (gofmt's file list) sees exactly the copy.
chroot "$root" sh -c 'cd /lrtrain && git init -q && git add -A' </dev/null

# 3. Go: the toolchain read-only, the module cache shared, a build cache of its own.
goroot=$(go env GOROOT)
modcache=$(go env GOMODCACHE)
gocache="${root}-gocache"
mkdir -p "$gocache"
bind "$goroot" "$root/opt/go" ro
bind "$modcache" "$root/opt/gomodcache"
bind "$gocache" "$root/opt/gocache"

# 4. The suite. OpenBLAS and thread settings come from the host's environment.
cmd=(make -C /lrtrain "$target")
[ $# -gt 0 ] && cmd=(sh -c 'cd /lrtrain && make setup >/dev/null && "$@"' sh "$@")
log "${cmd[*]} in the trixie root"
set +e
chroot "$root" env -i HOME=/root PATH=/opt/go/bin:/usr/local/bin:/usr/bin:/bin \
  GOROOT=/opt/go GOMODCACHE=/opt/gomodcache GOCACHE=/opt/gocache GOTOOLCHAIN=local \
  GOFLAGS="$(go env GOFLAGS)" GOPROXY="$(go env GOPROXY)" GOSUMDB="$(go env GOSUMDB)" \
  ${OPENBLAS_CORETYPE:+OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE} \
  ${OPENBLAS_L2_SIZE:+OPENBLAS_L2_SIZE=$OPENBLAS_L2_SIZE} \
  ${OMP_NUM_THREADS:+OMP_NUM_THREADS=$OMP_NUM_THREADS} \
  "${cmd[@]}"
rc=$?
set -e
log "${cmd[*]} against libtorch 2.6: exit $rc after $(($(date +%s) - start))s"
exit $rc
