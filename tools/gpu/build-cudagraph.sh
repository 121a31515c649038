#!/usr/bin/env bash
# Builds, against the PyTorch on this machine, into the directory given (default .gpu/app, next to the published
# engine, where they are found at run time):
# - the CUDA graph shim (native/cudagraph): graphs and events for the decoding loop;
# - the fused decoding kernels (native/kernels, nvcc), linked to the CUDA runtime PyTorch itself loads so that both
#   share one runtime, streams and graphs;
# - the profiler shim (native/profiler, used only by `bench --profile`).
# Without the kernels or the profiler the engine still runs (eager attention ops; no profiling): their failure to
# build is reported, not fatal.
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

build_kernels() {
  local cudart
  cudart=$(ldd "$torch/lib/libtorch_cuda.so" | awk '/libcudart/ {print $3; exit}')
  [[ -n $cudart ]] || { echo "PyTorch's libcudart not found"; return 1; }
  local arch=${CUDA_ARCHS:-"-gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90"}
  "$cuda/bin/nvcc" -O3 -std=c++17 -Xcompiler -fPIC $arch -c native/kernels/decode_kernels.cu -o /tmp/decode_kernels.o
  g++ native/kernels/attnportal_kernels.cpp /tmp/decode_kernels.o "${flags[@]}" \
    -L"$(dirname "$cudart")" -Wl,-rpath,"$(dirname "$cudart")" -l:"$(basename "$cudart")" -o "$out/libattnportal_kernels.so"
}
build_kernels >/tmp/kernels-build.log 2>&1 \
  && echo "built $out/libattnportal_kernels.so" || { echo "fused kernels did not build:"; tail -30 /tmp/kernels-build.log; }

g++ native/profiler/attnportal_profiler.cpp "${flags[@]}" -o "$out/libattnportal_profiler.so" 2>/tmp/profiler-build.log \
  && echo "built $out/libattnportal_profiler.so" || { echo "profiler shim did not build:"; tail -20 /tmp/profiler-build.log; }
