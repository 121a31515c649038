#!/usr/bin/env bash
# Runs ON the GPU machine: builds and runs tools/gpu/gemv/gemv_bench.cu (the engine's bf16 GEMV, native/kernels,
# against cuBLAS on the 7B models' decoding shapes, with the two results compared). A benchmark: it prints a table and
# asserts nothing.
set -uo pipefail
cuda=${CUDA_HOME:-/usr/local/cuda}
# cuBLAS from the toolkit, else the one PyTorch ships (its wheel has the headers too).
lib=$(ls "$cuda"/lib64/libcublas.so 2>/dev/null || find / -name 'libcublas.so*' -not -path '/proc/*' 2>/dev/null | head -1)
hdr=$(ls "$cuda"/include/cublas_v2.h 2>/dev/null || find / -name cublas_v2.h -not -path '/proc/*' 2>/dev/null | head -1)
echo "cuBLAS: $lib, $hdr"
"$cuda/bin/nvcc" -O3 -std=c++17 -gencode arch=compute_90,code=sm_90 -I"$(dirname "$hdr")" -Inative/kernels \
  tools/gpu/gemv/gemv_bench.cu native/kernels/decode_kernels.cu \
  -L"$(dirname "$lib")" -Xlinker -rpath -Xlinker "$(dirname "$lib")" -l:"$(basename "$lib")" -o /tmp/gemv_bench || exit 1
nvidia-smi --query-gpu=name --format=csv,noheader
/tmp/gemv_bench
