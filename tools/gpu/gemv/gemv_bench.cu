// A benchmark, run on purpose (tools/gpu/gemv-bench.sh): a decoding step's weight products are matrix-vector
// products (one token), bound by reading the weights. This times the engine's bf16 GEMV (native/kernels, linked in)
// against cuBLAS (what libtorch's linear calls) on the 7B models' shapes, weights cycled through more memory than L2
// holds, and compares the two vectors, plain and with an addend summed in place (the residual).
#include "../cuda_check.h"
#include "decode_kernels.h"

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

__global__ void fill(__nv_bfloat16* p, size_t n, unsigned seed, float scale) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    unsigned h = (unsigned)i * 2654435761u ^ seed;
    h ^= h >> 15; h *= 2246822519u; h ^= h >> 13; h *= 3266489917u; h ^= h >> 16;
    p[i] = __float2bfloat16_rn(scale * ((h & 0xffffff) / 8388608.f - 1.f));
  }
}

struct Shape { const char* name; int n, k; };

int main() {
  const Shape shapes[] = {
      {"llama7b q/k/v", 12288, 4096}, {"llama7b o", 4096, 4096},        {"llama7b gate/up", 22016, 4096},
      {"llama7b down", 4096, 11008},  {"llama7b lm_head", 32000, 4096}, {"qwen2-7b q/k/v", 4608, 3584},
      {"qwen2-7b o", 3584, 3584},     {"qwen2-7b gate/up", 37888, 3584}, {"qwen2-7b down", 3584, 18944},
      {"qwen2-7b lm_head", 152064, 3584}};
  cublasHandle_t handle;
  cublasCreate(&handle);
  cublasSetMathMode(handle, CUBLAS_DEFAULT_MATH);
  const size_t cycleBytes = 512ull << 20;  // weights cycled through 512 MiB: ten times H100's L2
  __nv_bfloat16 *pool, *x, *addend, *yRef, *y;
  CHECK(cudaMalloc(&pool, cycleBytes + (2ull << 30)));
  CHECK(cudaMalloc(&x, 64 << 10));
  CHECK(cudaMalloc(&addend, 1 << 20));
  CHECK(cudaMalloc(&yRef, 1 << 20));
  CHECK(cudaMalloc(&y, 1 << 20));
  cudaEvent_t t0, t1;
  cudaEventCreate(&t0);
  cudaEventCreate(&t1);
  std::printf("| shape | N x K | MB | cuBLAS us | GB/s | engine gemv us | GB/s | speed-up | max abs diff / max abs | same, + addend in place |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|\n");
  double totalCublas = 0, totalEngine = 0;
  for (const Shape& s : shapes) {
    const size_t bytes = (size_t)s.n * s.k * 2;
    const int copies = (int)std::max<size_t>(1, (cycleBytes + bytes - 1) / bytes);
    fill<<<1024, 256>>>(pool, bytes / 2 * copies, 1234u, 0.05f);
    fill<<<64, 256>>>(x, s.k, 99u, 1.f);
    fill<<<64, 256>>>(addend, s.n, 7u, 4.f);
    CHECK(cudaDeviceSynchronize());
    auto weights = [&](int i) { return pool + (size_t)(i % copies) * s.n * s.k; };
    auto cublas = [&](int i, __nv_bfloat16* out, float beta) {
      const float alpha = 1.f;
      cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, s.n, 1, s.k, &alpha, weights(i), CUDA_R_16BF, s.k, x, CUDA_R_16BF,
                   s.k, &beta, out, CUDA_R_16BF, s.n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    };
    auto engine = [&](int i, const __nv_bfloat16* add, __nv_bfloat16* out) {
      CHECK(attnportal::gemv(weights(i), x, add, out, s.n, s.k, attnportal::Element::BFloat16, 0));
    };
    auto time = [&](auto&& f) {
      const int reps = std::max(20, std::min(400, (int)(4e9 / bytes)));
      for (int i = 0; i < 10; i++) f(i);
      cudaEventRecord(t0);
      for (int i = 0; i < reps; i++) f(i);
      cudaEventRecord(t1);
      CHECK(cudaEventSynchronize(t1));
      float ms;
      cudaEventElapsedTime(&ms, t0, t1);
      return 1000.0 * ms / reps;
    };
    const double usCublas = time([&](int i) { cublas(i, yRef, 0.f); });
    const double usEngine = time([&](int i) { engine(i, nullptr, y); });
    // Same weights for both, then the residual form: y = addend + W x, in place (cuBLAS: beta = 1).
    auto diff = [&](auto&& run) {
      CHECK(cudaMemcpy(yRef, addend, s.n * 2, cudaMemcpyDeviceToDevice));
      CHECK(cudaMemcpy(y, addend, s.n * 2, cudaMemcpyDeviceToDevice));
      run();
      CHECK(cudaDeviceSynchronize());
      std::vector<__nv_bfloat16> a(s.n), b(s.n);
      CHECK(cudaMemcpy(a.data(), yRef, s.n * 2, cudaMemcpyDeviceToHost));
      CHECK(cudaMemcpy(b.data(), y, s.n * 2, cudaMemcpyDeviceToHost));
      double d = 0, m = 0;
      for (int i = 0; i < s.n; i++) {
        const double p = __bfloat162float(a[i]), q = __bfloat162float(b[i]);
        d = std::max(d, std::fabs(p - q));
        m = std::max(m, std::fabs(p));
      }
      char text[64];
      std::snprintf(text, sizeof text, "%.2e / %.2e", d, m);
      return std::string(text);
    };
    const std::string plain = diff([&] { cublas(0, yRef, 0.f); engine(0, nullptr, y); });
    const std::string summed = diff([&] { cublas(0, yRef, 1.f); engine(0, y, y); });
    totalCublas += usCublas;
    totalEngine += usEngine;
    std::printf("| %s | %d x %d | %.1f | %.1f | %.0f | %.1f | %.0f | %.2fx | %s | %s |\n", s.name, s.n, s.k, bytes / 1e6,
                usCublas, bytes / usCublas / 1e3, usEngine, bytes / usEngine / 1e3, usCublas / usEngine, plain.c_str(),
                summed.c_str());
  }
  std::printf("\nsum over the shapes: cuBLAS %.1f us, engine gemv %.1f us\n", totalCublas, totalEngine);
  return 0;
}
