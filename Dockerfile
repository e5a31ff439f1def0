# syntax=docker/dockerfile:1
# lrtrain's GPU image, the one the manifests in k8s/ run:
#   docker build -t lrtrain:0.1-cuda12.4 .
# Build stage: Debian 12 with Go, nvcc and the CUDA runtime headers from NVIDIA's
# Debian 12 repository, and pip's CUDA torch in a venv (its include/ and lib/ are the
# libtorch; `make build-cuda` detects it, its C++ ABI and standard). It builds
# bin/lrtrain with the φ op's CUDA kernels (SASS for CUDA_ARCHS, PTX for the newest)
# and bin/nccl-check. Runtime stage: Debian 12 slim with the same venv's libraries
# (libtorch, and the CUDA runtime, cuBLAS, cuDNN and NCCL that pip installs with torch),
# Gloo and OpenBLAS; the GPU driver comes from the NVIDIA container toolkit.
#
# Build arguments: TORCH_VERSION and TORCH_INDEX pick the wheel (its CUDA must match
# CUDA_VERSION's major version), CUDA_ARCHS the GPUs to compile SASS for.

ARG CUDA_VERSION=12.4
ARG PYTHON_VERSION=3.11

FROM golang:1.26-bookworm AS build
ARG CUDA_VERSION
ARG PYTHON_VERSION
ARG TORCH_VERSION=2.5.1
ARG TORCH_INDEX=https://download.pytorch.org/whl/cu124
ARG CUDA_ARCHS="80 90"
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && curl -fsSL -o /tmp/cuda-keyring.deb \
      https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64/cuda-keyring_1.1-1_all.deb \
 && dpkg -i /tmp/cuda-keyring.deb && rm /tmp/cuda-keyring.deb \
 && apt-get update \
 && cuda_pkg=$(echo "${CUDA_VERSION}" | tr . -) \
 && apt-get install -y --no-install-recommends \
      "cuda-nvcc-${cuda_pkg}" "cuda-cudart-dev-${cuda_pkg}" \
      g++ make binutils libgloo-dev libopenblas0-pthread python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
ENV CUDA_HOME=/usr/local/cuda-${CUDA_VERSION}
ENV PATH=${CUDA_HOME}/bin:${PATH}
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --index-url "${TORCH_INDEX}" "torch==${TORCH_VERSION}"
# tools/gotchadapt asks this interpreter where torch is.
ENV PYTHON=/opt/venv/bin/python3 VIRTUAL_ENV=/opt/venv
WORKDIR /src
COPY go.mod go.sum ./
RUN GOWORK=off go mod download
COPY . .
RUN make build-cuda CUDA_ARCHS="${CUDA_ARCHS}" \
 && go build -o bin/nccl-check ./nccl/cmd/nccl-check \
 && readelf -d bin/lrtrain | grep -q 'libtorch_cuda.so' \
 && mkdir -p /out/site-packages \
 && cp -a /opt/venv/lib/python${PYTHON_VERSION}/site-packages/torch \
          /opt/venv/lib/python${PYTHON_VERSION}/site-packages/nvidia /out/site-packages/

FROM debian:bookworm-slim AS runtime
ARG PYTHON_VERSION
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libgloo0 libopenblas0-pthread libgomp1 \
 && rm -rf /var/lib/apt/lists/*
# The same path as in the build stage: bin/lrtrain's RUNPATH points into it.
COPY --from=build /out/site-packages/ /opt/venv/lib/python${PYTHON_VERSION}/site-packages/
COPY --from=build /src/bin/lrtrain /src/bin/nccl-check /usr/local/bin/
ENV VIRTUAL_ENV=/opt/venv \
    LD_LIBRARY_PATH=/opt/venv/lib/python${PYTHON_VERSION}/site-packages/torch/lib:/opt/venv/lib/python${PYTHON_VERSION}/site-packages/nvidia/cuda_runtime/lib:/opt/venv/lib/python${PYTHON_VERSION}/site-packages/nvidia/nccl/lib \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
WORKDIR /work
ENTRYPOINT ["lrtrain"]
CMD ["--help"]
