#!/usr/bin/env bash
# Builds the CUDA graph shim (native/cudagraph) against the PyTorch on this machine, into the directory given
# (default .gpu/app, next to the published engine, where it is found at run time); and the profiler shim
# (native/profiler, used only by `bench --profile`), whose failure to build is reported but not fatal.
set -euo pipefail
out=${1:-.gpu/app}
torch=$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))')
abi=$(python3 -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')
cuda=${CUDA_HOME:-/usr/local/cuda}
flags=(-O2 -shared -fPIC -std=c++17 -D_GLIBCXX_USE_CXX11_ABI=$abi
  -I"$torch/include" -I"$torch/include/torch/csrc/api/include" -I"$cuda/include"
  -L"$torch/lib" -Wl,-rpath,"$torch/lib" -ltorch -ltorch_cpu -ltorch_cuda -lc10 -lc10_cuda)
g++ native/cudagraph/attnportal_cudagraph.cpp "${flags[@]}" -o "$out/libattnportal_cudagraph.so"
echo "built $out/libattnportal_cudagraph.so"
g++ native/profiler/attnportal_profiler.cpp "${flags[@]}" -o "$out/libattnportal_profiler.so" 2>/tmp/profiler-build.log \
  && echo "built $out/libattnportal_profiler.so" || { echo "profiler shim did not build:"; tail -20 /tmp/profiler-build.log; }
