#!/usr/bin/env bash
# Packs what a machine without Go and without network needs to build lrtrain: a trimmed
# Go toolchain and the part of the module cache the builds use, in one compressed file
# that travels with the tree (`make gpu-bundle`). For a GPU machine that has CUDA,
# pip's torch and NCCL but no Go: carry the file, and scripts/gpu-check.sh unpacks it
# and builds offline.
#
#   scripts/gpu-bundle.sh                  # writes .bundle/go-offline.tar.xz
#   BUNDLE=/tmp/b.tar.xz scripts/gpu-bundle.sh
#
# What is kept:
#   go/    GOROOT without what a build never reads: bin/go and gofmt, the compile,
#          link, asm, cgo and vet tools (go test runs vet), pkg/include (cgo), lib/time,
#          go.env, VERSION, and src/ without cmd/, tests and testdata;
#   mod/   GOMODCACHE restricted to the modules whose packages lrtrain's builds
#          compile (lrtrain and nccl-check with and without -tags cuda, gotchadapt,
#          phiop's and nccl's tests), their extracted trees without tests, testdata or
#          gotch's examples and generator, plus cache/download's .info, .mod and
#          .ziphash files of every module in the module graph (the go command resolves
#          the graph from the .mod files and checks each extracted tree against go.sum
#          through its .ziphash), but none of the zips;
#   sys/   Debian 12's Gloo (headers, libgloo and the libraries it loads: hiredis,
#          ibverbs, libnl), which the CPU collective backend links and pip's torch
#          does not provide; they need glibc 2.34 or newer on the target.
# Unpacked into .bundle/go-offline, `make ... LRTRAIN_OFFLINE=1` (or scripts/offline-env.sh
# sourced) builds with the network unused: GOROOT and GOMODCACHE from the bundle,
# GOPROXY=off, Gloo from sys/; scripts/setup.sh then unpacks it and skips apt and
# `go mod download`. Idempotent:
# the file is rewritten only when its inputs (Go version, go.sum) changed.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${BUNDLE:-.bundle/go-offline.tar.xz}
command -v go >/dev/null || { echo "gpu-bundle: needs Go (it packs the toolchain it runs)"; exit 1; }
goroot=$(go env GOROOT)
modcache=$(go env GOMODCACHE)
goos_arch="$(go env GOOS)_$(go env GOARCH)"
key="$(go env GOVERSION) $goos_arch $(sha256sum go.sum | cut -c1-16) $(sha256sum "$0" | cut -c1-16)"
if [ -f "$out" ] && [ "$(cat "$out.key" 2>/dev/null)" = "$key" ]; then
  echo "gpu-bundle: $out is current ($(du -h "$out" | cut -f1))"
  exit 0
fi

export GOWORK=off # the upstream gotch in the module cache, not .build/'s adapted copy
GOFLAGS= go mod download # the zips' trees extracted (online side), so there is something to pack

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/go" "$stage/mod"

# 1. The toolchain.
(
  cd "$goroot"
  tools=()
  for t in compile link asm cgo vet; do tools+=("pkg/tool/$goos_arch/$t"); done
  find bin/go bin/gofmt "${tools[@]}" pkg/include lib/time go.env VERSION src \
    \( -path src/cmd -o -name testdata -o -name '*_test.go' \) -prune -o \( -type f -print \)
) | tar -C "$goroot" -cf - --files-from=- | tar -C "$stage/go" -xf -

# 2. The modules a build reads: each module of the build list whose path is a prefix of
#    an imported package's path. That is more than the modules whose packages are
#    compiled: resolving an import, the go command looks into every module that could
#    hold it (etcd's import of go-grpc-middleware/providers/prometheus, its own module,
#    also opens go-grpc-middleware v1.3.0), and that needs the module's tree.
pkgs() { go list -deps -test "$@" -f '{{if not .Standard}}{{.ImportPath}}{{end}}' \
  ./cmd/lrtrain ./nccl/cmd/nccl-check ./tools/gotchadapt ./phiop/ ./nccl/; }
#    A module only looked into may not be extracted yet: go mod download extracts it.
mods=$(awk 'NR == FNR { sub(/ \[.*/, ""); pkg[$0] = 1; next }
  { for (p in pkg) if (p == $1 || index(p, $1 "/") == 1) { print $1 "@" $2, $3; next } }' \
  <( { pkgs; pkgs -tags cuda; } | sort -u) \
  <(go list -m -f '{{if not .Main}}{{.Path}} {{.Version}} {{.Dir}}{{end}}' all))
echo "$mods" | while read -r mod dir; do
  [ -n "$dir" ] || dir=$(go mod download -json "$mod" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  rel=${dir#"$modcache"/}
  case $rel in /* | "") echo "gpu-bundle: $mod: directory '$dir' not in GOMODCACHE $modcache"; exit 1 ;; esac
  (
    cd "$modcache"
    find "$rel" \( -name testdata -o -name '*_test.go' -o -path "*/gotch@*/example" -o -path "*/gotch@*/gen" \) \
      -prune -o \( -type f -print \)
  ) | tar -C "$modcache" -cf - --files-from=- | tar -C "$stage/mod" -xf -
done

# 3. The module graph's metadata: every .info, .mod and .ziphash of the modules the
#    graph names (go mod graph), so resolving and verifying need no network.
go mod graph | tr ' ' '\n' | grep '@' | sort -u | while read -r m; do
  path=${m%@*} version=${m#*@}
  esc=$(printf '%s' "$path" | sed -E 's/[A-Z]/!\L&/g') # the cache's case encoding
  for ext in info mod ziphash; do
    f="cache/download/$esc/@v/$version.$ext"
    if [ -f "$modcache/$f" ]; then printf '%s\n' "$f"; fi
  done
done | tar -C "$modcache" -cf - --files-from=- | tar -C "$stage/mod" -xf -
# 4. Gloo, for the CPU backend (the GPU check compares against a CPU run).
glib=$(ls /usr/lib/libgloo.so.0* /usr/lib/x86_64-linux-gnu/libgloo.so.0* 2>/dev/null | head -n 1 || true)
[ -n "$glib" ] && [ -d /usr/include/gloo ] || { echo "gpu-bundle: Gloo not found (apt install libgloo-dev; make setup does)"; exit 1; }
mkdir -p "$stage/sys/include" "$stage/sys/lib"
cp -r /usr/include/gloo "$stage/sys/include/"
cp -L "$glib" "$stage/sys/lib/libgloo.so.0"
ln -s libgloo.so.0 "$stage/sys/lib/libgloo.so"
ldd "$glib" | awk '/(hiredis|ibverbs|libnl)/ {print $1, $3}' | while read -r name path; do
  cp -L "$path" "$stage/sys/lib/$name"
done
chmod -R u+w "$stage"

mkdir -p "$(dirname "$out")"
raw=$(du -sm "$stage/go" "$stage/mod" "$stage/sys" | awk '{sub(".*/", "", $2); printf "%s%s %s MB", (NR>1?", ":""), $2, $1}')
XZ_OPT="-9 -T0" tar -C "$stage" -cJf "$out.tmp" go mod sys
mv "$out.tmp" "$out"
printf '%s\n' "$key" >"$out.key"
echo "gpu-bundle: $out $(du -h "$out" | cut -f1) (raw: $raw; $(echo "$mods" | wc -l) modules)"
