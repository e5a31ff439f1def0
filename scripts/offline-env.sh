# Sourced (`. scripts/offline-env.sh`) to build lrtrain with neither Go nor network on
# the machine, from the file scripts/gpu-bundle.sh packs: unpacks it once into
# .bundle/go-offline (next to the file) and points the go command, cgo and the loader
# at it, and sets LRTRAIN_OFFLINE=1, under which scripts/setup.sh installs nothing
# (no apt, no go mod download). Then `make build`, `make build-cuda` and
# scripts/gpu-check.sh work as on a connected machine.
lrtrain_bundle_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.bundle
if [ ! -x "$lrtrain_bundle_dir/go-offline/go/bin/go" ]; then
  if [ ! -f "$lrtrain_bundle_dir/go-offline.tar.xz" ]; then
    echo "offline-env: no Go bundle at $lrtrain_bundle_dir/go-offline.tar.xz (make gpu-bundle on a machine with Go and network, and carry it)" >&2
    return 1
  fi
  mkdir -p "$lrtrain_bundle_dir/go-offline.tmp" &&
    tar -C "$lrtrain_bundle_dir/go-offline.tmp" -xJf "$lrtrain_bundle_dir/go-offline.tar.xz" &&
    rm -rf "$lrtrain_bundle_dir/go-offline" &&
    mv "$lrtrain_bundle_dir/go-offline.tmp" "$lrtrain_bundle_dir/go-offline" || return 1
fi
export LRTRAIN_OFFLINE=1
export GOROOT=$lrtrain_bundle_dir/go-offline/go
export GOMODCACHE=$lrtrain_bundle_dir/go-offline/mod
export GOPROXY=off GOSUMDB=off GOTOOLCHAIN=local
export PATH=$GOROOT/bin:$PATH
export CGO_CXXFLAGS="-I$lrtrain_bundle_dir/go-offline/sys/include ${CGO_CXXFLAGS:--O2 -g}"
export CGO_LDFLAGS="-L$lrtrain_bundle_dir/go-offline/sys/lib -Wl,-rpath,$lrtrain_bundle_dir/go-offline/sys/lib ${CGO_LDFLAGS:--O2 -g}"
export LD_LIBRARY_PATH=$lrtrain_bundle_dir/go-offline/sys/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
