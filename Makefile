# lrtrain — the two commands:
#   make demo   set up everything (apt packages, Go modules, gotch for the installed
#               libtorch) and run the demo
#   make test   set up everything and run all tests
# Both are idempotent; a second run only re-checks.

GO ?= go
export CGO_ENABLED = 1
# libtorch picks one intra-op thread on some VMs unless told; lrtrain also sets
# it programmatically (phiop.InitThreads), this covers the test binaries too.
export OMP_NUM_THREADS ?= $(shell nproc)

.PHONY: all setup demo test test-short bench vet fmt build build-cuda clean

all: build

setup:
	@scripts/setup.sh

build: setup
	$(GO) build -o bin/lrtrain ./cmd/lrtrain

# GPU build: a CUDA libtorch (pip's torch, found through python3, or LIBTORCH=/path),
# the CUDA runtime (beside pip's torch or CUDA_HOME) and nvcc for the fused op's CUDA
# kernels. Refuses up front without a CUDA libtorch, and fails if the binary does not
# link libtorch_cuda. Not part of the two commands (no GPU in CI).
build-cuda: setup
	@GOWORK=off $(GO) run ./tools/gotchadapt -detect -require-cuda
	$(MAKE) -C phiop cuda
	$(GO) build -tags cuda -o bin/lrtrain ./cmd/lrtrain
	@readelf -d bin/lrtrain | grep -q 'NEEDED.*\[libtorch_cuda\.so' || { \
	  echo "build-cuda: bin/lrtrain does not link libtorch_cuda (readelf -d); it would train on the CPU"; exit 1; }

# A trimmed Go toolchain, the module cache lrtrain's builds need, and Gloo, in one file
# (.bundle/go-offline.tar.xz) to carry to a machine with neither Go nor network (a lent
# GPU machine): there, `. scripts/offline-env.sh` and then make / scripts/gpu-check.sh.
.PHONY: gpu-bundle
gpu-bundle: setup
	scripts/gpu-bundle.sh

# The test suite against libtorch 2.6 in a Debian trixie root (debootstrap, cached
# in /var/cache/lrtrain/trixie; needs root). About the time of `make test` plus the
# libtorch 2.6 build of gotch; see BENCHMARKS.md.
.PHONY: test-libtorch26
test-libtorch26:
	scripts/test-libtorch26.sh

demo: build
	scripts/demo.sh

# The LR-LoRA reproduction grid (experiments/rank/README.md): about 30 min on 2 cores;
# writes runs/reproduce/results.md. One intra-op thread: the model is tiny, and two
# OpenMP threads on a shared machine were measured 15× slower.
.PHONY: reproduce
reproduce: setup
	OMP_NUM_THREADS=1 $(GO) run ./experiments/rank --config experiments/rank/reproduce.yaml --out runs/reproduce -jobs 2

# The learning-rate check of the reproduction (experiments/rank/lr-check.yaml).
.PHONY: reproduce-lr-check
reproduce-lr-check: setup
	OMP_NUM_THREADS=1 $(GO) run ./experiments/rank --config experiments/rank/lr-check.yaml --out runs/lr-check -jobs 2

vet: setup
	$(GO) vet ./...

# The last step reruns the numerics-sensitive packages under another OpenBLAS kernel
# and thread count (.ci/other-kernel says which and checks that it computes differently).
test: setup
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GO) test -timeout 20m ./...
	GO="$(GO)" .ci/other-kernel

test-short: setup
	$(GO) test -short ./...

# BENCHMARKS.md's tables regenerated side by side in one run (bench/all: φ fused vs
# naive, φ overhead, LR-LoRA vs LoRA step with the FLOP bound, data-parallel scaling,
# CPU collectives, tokenizer), each with its command and load; under 20 min on 2 cores.
# BENCH_FLAGS=-quick checks the harness at tiny sizes; BENCH_FLAGS='-sections step' one section.
bench: setup
	$(GO) run ./bench/all $(BENCH_FLAGS)

clean:
	rm -rf .build go.work go.work.sum bin

# The multi-node harness (dist/multinode): network namespaces as nodes, a 3-member
# etcd cluster over TLS, one lrtrain launch per node, faults. Needs root; `make test`
# skips it (it takes several minutes).
.PHONY: test-multinode
test-multinode: setup
	@scripts/setup-multinode.sh
	LRTRAIN_MULTINODE=1 $(GO) test -count=1 -v -timeout 45m ./dist/multinode
