#!/usr/bin/env bash
# Runs ON the GPU machine: builds and runs tools/gpu/attention/attention_check.cu, the decoding attention with the keys
# split across blocks against the one-block-per-head kernel (native/kernels, linked in) on the 7B models' shapes:
# same cache writes, captured rows and outputs close (the split kernel sums in other orders), and each one's time
# replayed from a CUDA graph.
# Exits nonzero on a mismatch; the times are a benchmark (printed, never asserted). Arguments go to the check:
# `--save FILE` keeps the one-block kernel's bits, `--against FILE` compares a changed kernel's with them.
set -uo pipefail
cuda=${CUDA_HOME:-/usr/local/cuda}
"$cuda/bin/nvcc" -O3 -std=c++17 -gencode arch=compute_90,code=sm_90 -Inative/kernels \
  tools/gpu/attention/attention_check.cu native/kernels/decode_kernels.cu -o /tmp/attention_check || exit 1
nvidia-smi --query-gpu=name --format=csv,noheader
/tmp/attention_check "$@"
