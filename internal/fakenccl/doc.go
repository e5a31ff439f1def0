// Package fakenccl builds stand-ins for libnccl.so.2 and libcudart.so from
// the C sources in its testdata, for tests on machines without a GPU. The
// fakes implement one rank with host memory as "device" memory; see the
// comments at the top of each C file for their behaviour and knobs.
//
// They stand for the absent GPU libraries only: the nccl package's real
// path is checked on a GPU machine with cmd/nccl-check.
package fakenccl
