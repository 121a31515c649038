// Launchers for the fused decoding kernels (decode_kernels.cu), in plain C types so that the CUDA file needs no
// libtorch headers: attnportal_kernels.cpp checks the tensors and passes their pointers and the current stream.
#pragma once
#include <cstddef>
#include <cuda_runtime.h>

namespace attnportal {

enum class Element { Float32 = 0, Float16 = 1, BFloat16 = 2 };

size_t element_size(Element e);

struct DecodeAttentionArgs {
  const void* qkv;          // [heads + 2 kvHeads, headDim], model dtype: q, k, v of the new token before rotation
  const void* cos;          // [headDim], model dtype: the rotation table row of the token's position
  const void* sin;          // [headDim], first half negated (RotaryTables)
  const long long* position;  // [1], on the device
  void* keys;               // [kvHeads, capacity, headDim], model dtype
  void* values;
  const float* mask;        // [capacity]: 0 where the query may attend, -inf where not
  void* capture;            // [heads, capacity], float32 or float16: the attention probabilities
  void* output;             // [heads, headDim], model dtype
  float scale;
  int heads, kv_heads, head_dim;
  long long capacity;
  Element model, captured;
};

// The largest key capacity decode_attention supports for this head size and dtype on the current device (its scores
// live in shared memory); 0 when the head size is not supported.
long long decode_attention_max_keys(Element model, int head_dim);

cudaError_t decode_attention(const DecodeAttentionArgs& a, cudaStream_t stream);

// decode_attention with the keys split across blocks (three kernels; no limit on the capacity from shared memory),
// for up to 8 query heads per key/value head and even head sizes up to 256 (decode_attention_split_supports). Its
// sums run in other orders than decode_attention's, so captured rows and outputs may differ from its in the last bits.
// Needs a float32 device scratch of decode_attention_split_floats(...) elements, 8-byte aligned.
bool decode_attention_split_supports(int heads, int kv_heads, int head_dim);
size_t decode_attention_split_floats(int heads, int kv_heads, int head_dim, long long capacity);
cudaError_t decode_attention_split(const DecodeAttentionArgs& a, float* scratch, cudaStream_t stream);

// out[r, i] = silu(gate_up[r, i]) * gate_up[r, width + i], rounded as torch rounds silu's result and the product.
cudaError_t silu_mul(const void* gate_up, void* out, long long rows, long long width, Element model, cudaStream_t stream);

// out[n] = addend[n] + sum_k weight[n, k] input[k] for one input row (a decoding step's products, which read the
// weights once and are bound by that): float32 sums, one rounding to the model dtype at the end, as cuBLAS rounds.
// addend may be null or equal to out (a residual summed in place); weight rows are 16-byte aligned (k a multiple of
// 16 bytes' worth of elements).
cudaError_t gemv(const void* weight, const void* input, const void* addend, void* out, long long n, long long k,
                 Element model, cudaStream_t stream);

}  // namespace attnportal
