#!/usr/bin/env bash
# Builds the CUDA graph shim (native/cudagraph) against the PyTorch on this machine, into the directory given
# (default .gpu/app, next to the published engine, where it is found at run time).
set -euo pipefail
out=${1:-.gpu/app}
torch=$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))')
abi=$(python3 -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')
cuda=${CUDA_HOME:-/usr/local/cuda}
g++ -O2 -shared -fPIC -std=c++17 -D_GLIBCXX_USE_CXX11_ABI=$abi native/cudagraph/attnportal_cudagraph.cpp \
  -I"$torch/include" -I"$torch/include/torch/csrc/api/include" -I"$cuda/include" \
  -L"$torch/lib" -Wl,-rpath,"$torch/lib" -ltorch -ltorch_cpu -ltorch_cuda -lc10 -lc10_cuda \
  -o "$out/libattnportal_cudagraph.so"
echo "built $out/libattnportal_cudagraph.so"
