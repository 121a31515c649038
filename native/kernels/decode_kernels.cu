// Fused kernels for one decoding step of a LLaMA-family layer. Through TorchSharp the step's attention is ~11 kernels
// per layer (rotation, two cache writes, scores, mask, softmax, the capture copy, a cast, the value product); each is
// a few microseconds of launch-bound work, together about a seventh of a 7B step. decode_attention does all of it in
// one kernel, one block per query head, and silu_mul fuses the MLP's activation and product. gemv is the step's weight
// products: one warp per output row streaming the weights (tools/gpu/gemv-bench.sh times it against cuBLAS: 0.99-1.14x
// on LLaMA-7B's and Qwen2-7B's decoding shapes, 816 -> 757 us for the ten of them).
//
// Numerics follow HF's eager attention: every intermediate HF stores in the model's dtype (rotated q and k, the
// scores, the probabilities fed to the value product) is rounded to it here too; the softmax is float32.
#include "decode_kernels.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <math.h>

namespace attnportal {
namespace {

constexpr int kThreads = 512;
constexpr int kWarps = kThreads / 32;
constexpr int kChunkBytes = 16;   // one vector load
constexpr int kMaxChunksPerLane = 2;
constexpr int kRowsInFlight = 8;  // value rows each lane has loading at once in decode_attention

template <typename T> __device__ __forceinline__ float to_f(T x);
template <> __device__ __forceinline__ float to_f(float x) { return x; }
template <> __device__ __forceinline__ float to_f(__half x) { return __half2float(x); }
template <> __device__ __forceinline__ float to_f(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T> __device__ __forceinline__ T from_f(float x);
template <> __device__ __forceinline__ float from_f(float x) { return x; }
template <> __device__ __forceinline__ __half from_f(float x) { return __float2half_rn(x); }
template <> __device__ __forceinline__ __nv_bfloat16 from_f(float x) { return __float2bfloat16_rn(x); }

// What storing x in the model's dtype and reading it back gives.
template <typename T> __device__ __forceinline__ float round_to(float x) { return to_f(from_f<T>(x)); }

__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Every thread gets the block's maximum (sum); scratch holds kWarps floats.
__device__ float block_max(float v, float* scratch) {
  v = warp_max(v);
  if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = v;
  __syncthreads();
  v = warp_max(threadIdx.x % 32 < kWarps ? scratch[threadIdx.x % 32] : -INFINITY);
  __syncthreads();
  return v;
}

__device__ float block_sum(float v, float* scratch) {
  v = warp_sum(v);
  if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = v;
  __syncthreads();
  v = warp_sum(threadIdx.x % 32 < kWarps ? scratch[threadIdx.x % 32] : 0.f);
  __syncthreads();
  return v;
}

// Lanes that share one key row in the value product: a power of two (so groups tile a warp) covering at least half
// the row's 16-byte chunks, so a lane handles at most two chunks.
__host__ __device__ inline int lanes_per_row(int chunks) {
  int lanes = 1;
  while (lanes * 2 <= chunks && lanes < 32) lanes *= 2;
  return lanes;
}

__host__ __device__ inline size_t shared_floats(long long capacity, int head_dim, int chunks) {
  int groups = kThreads / lanes_per_row(chunks);
  // scores[capacity], q, new key, new value [head_dim] each, per-group partial outputs, reduction scratch
  return (size_t)capacity + 3 * (size_t)head_dim + (size_t)groups * head_dim + kWarps;
}

template <typename T>
__device__ __forceinline__ float dot_row(const float* q, const T* row, int chunks) {
  constexpr int per = kChunkBytes / sizeof(T);
  const uint4* vec = reinterpret_cast<const uint4*>(row);
  float acc = 0.f;
  // Sixteen chunks (a bf16 row of 128) unrolled: the compiler issues all the row's loads before the first product.
#pragma unroll 16
  for (int c = 0; c < chunks; ++c) {
    uint4 raw = vec[c];
    const T* e = reinterpret_cast<const T*>(&raw);
#pragma unroll
    for (int i = 0; i < per; ++i) acc = fmaf(q[c * per + i], to_f(e[i]), acc);
  }
  return acc;
}

// Rotation as HF writes it, x·cos + rotate_half(x)·sin with each product and the sum rounded to the model's dtype;
// sin's first half is negated (RotaryTables), so rotate_half is a swap of halves.
template <typename T>
__device__ __forceinline__ float rotated(const T* x, const T* cos, const T* sin, int d, int half) {
  const int other = d < half ? d + half : d - half;
  return round_to<T>(round_to<T>(to_f(x[d]) * to_f(cos[d])) + round_to<T>(to_f(x[other]) * to_f(sin[d])));
}

__device__ __forceinline__ float dot_shared(const float* q, const float* k, int n) {
  float acc = 0.f;
  for (int d = 0; d < n; ++d) acc = fmaf(q[d], k[d], acc);
  return acc;
}

template <typename T, typename C>
__global__ void __launch_bounds__(kThreads) decode_attention_kernel(DecodeAttentionArgs a) {
  extern __shared__ float shared[];
  const int D = a.head_dim, h = blockIdx.x, g = h / (a.heads / a.kv_heads), tid = threadIdx.x;
  const long long cap = a.capacity, pos = *a.position;
  constexpr int per = kChunkBytes / sizeof(T);
  const int chunks = D / per;
  const int lanes = lanes_per_row(chunks), groups = kThreads / lanes;

  float* scores = shared;
  float* q = scores + cap;
  float* knew = q + D;
  float* vnew = knew + D;
  float* partial = vnew + D;
  float* scratch = partial + (size_t)groups * D;

  const T* qkv = static_cast<const T*>(a.qkv);
  const T* qsrc = qkv + (size_t)h * D;
  const T* ksrc = qkv + (size_t)(a.heads + g) * D;
  const T* vsrc = qkv + (size_t)(a.heads + a.kv_heads + g) * D;
  const T* cos = static_cast<const T*>(a.cos);
  const T* sin = static_cast<const T*>(a.sin);
  T* keys = static_cast<T*>(a.keys) + (size_t)g * cap * D;
  T* values = static_cast<T*>(a.values) + (size_t)g * cap * D;
  const bool writes_cache = h % (a.heads / a.kv_heads) == 0;  // one block per KV head stores the new key and value

  const int half = D / 2;
  for (int d = tid; d < D; d += kThreads) {
    q[d] = rotated(qsrc, cos, sin, d, half);
    knew[d] = rotated(ksrc, cos, sin, d, half);
    vnew[d] = to_f(vsrc[d]);
    if (writes_cache) {
      keys[pos * D + d] = from_f<T>(knew[d]);
      values[pos * D + d] = vsrc[d];
    }
  }
  __syncthreads();

  // Scores, one key per thread. The new key is read from shared memory: another block may be writing it to the cache.
  // Keys the mask forbids are not read; their score is -inf, so their probability is exactly 0.
  float local_max = -INFINITY;
  for (long long j = tid; j < cap; j += kThreads) {
    const float m = a.mask[j];
    float s = -INFINITY;
    if (m != -INFINITY) {
      const float dot = j == pos ? dot_shared(q, knew, D) : dot_row(q, keys + j * D, chunks);
      s = round_to<T>(dot) * a.scale + m;
    }
    scores[j] = s;
    local_max = fmaxf(local_max, s);
  }
  const float max = block_max(local_max, scratch);

  float local_sum = 0.f;
  for (long long j = tid; j < cap; j += kThreads) {
    const float e = expf(scores[j] - max);
    scores[j] = e;
    local_sum += e;
  }
  const float sum = block_sum(local_sum, scratch);

  C* capture = static_cast<C*>(a.capture) + (size_t)h * cap;
  for (long long j = tid; j < cap; j += kThreads) {
    const float p = scores[j] / sum;
    capture[j] = from_f<C>(p);
    scores[j] = round_to<T>(p);  // HF casts the probabilities to the model's dtype before the value product
  }
  __syncthreads();

  // Value product: a group of `lanes` threads per key row, each lane summing its chunks over the group's keys in key
  // order. The group loads kRowsInFlight of its rows before summing any: one row at a time left every thread waiting
  // on one load after another, the kernel's largest cost at a thousand keys. The sums' order is unchanged.
  const int group = tid / lanes, lane = tid % lanes;
  float acc[kMaxChunksPerLane][per] = {};
  for (long long first = group; first < cap; first += (long long)groups * kRowsInFlight) {
    uint4 raw[kRowsInFlight][kMaxChunksPerLane];
    float p[kRowsInFlight];
#pragma unroll
    for (int r = 0; r < kRowsInFlight; ++r) {
      const long long j = first + (long long)r * groups;
      p[r] = j < cap ? scores[j] : 0.f;
#pragma unroll
      for (int k = 0; k < kMaxChunksPerLane; ++k) {
        const int c = lane + k * lanes;
        if (c < chunks && p[r] != 0.f && j != pos) raw[r][k] = reinterpret_cast<const uint4*>(values + j * D)[c];
      }
    }
#pragma unroll
    for (int r = 0; r < kRowsInFlight; ++r) {
      if (p[r] == 0.f) continue;  // masked keys add exactly nothing
      const bool is_new = first + (long long)r * groups == pos;
#pragma unroll
      for (int k = 0; k < kMaxChunksPerLane; ++k) {
        const int c = lane + k * lanes;
        if (c >= chunks) break;
        const T* e = reinterpret_cast<const T*>(&raw[r][k]);
#pragma unroll
        for (int i = 0; i < per; ++i) acc[k][i] = fmaf(p[r], is_new ? vnew[c * per + i] : to_f(e[i]), acc[k][i]);
      }
    }
  }
#pragma unroll
  for (int k = 0; k < kMaxChunksPerLane; ++k) {
    const int c = lane + k * lanes;
    if (c >= chunks) break;
#pragma unroll
    for (int i = 0; i < per; ++i) partial[(size_t)group * D + c * per + i] = acc[k][i];
  }
  __syncthreads();
  T* out = static_cast<T*>(a.output) + (size_t)h * D;
  for (int d = tid; d < D; d += kThreads) {
    float total = 0.f;
    for (int r = 0; r < groups; ++r) total += partial[(size_t)r * D + d];
    out[d] = from_f<T>(total);
  }
}

template <typename T>
__global__ void silu_mul_kernel(const T* gate_up, T* out, long long rows, long long width) {
  const long long n = rows * width;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    const long long r = i / width, c = i % width;
    const float gate = to_f(gate_up[r * 2 * width + c]);
    // torch computes silu in float32 as x / (1 + exp(-x)) and stores it; the product is another rounded op.
    const float act = round_to<T>(gate / (1.f + expf(-gate)));
    out[i] = from_f<T>(act * to_f(gate_up[r * 2 * width + width + c]));
  }
}

// The same attention with the keys split across blocks (decode_attention_split). decode_attention runs one block per
// query head: 28 blocks for OneVision's Qwen2-7B on 132 SMs, each reading its key/value head's keys alone (seven
// times over for the seven query heads sharing them), so its time grows with the keys (27 us a layer at 1290). Here a
// block takes one key/value head's query heads over one slice of the keys and reads each key and value row once for
// all of them, in three kernels:
//  1. the slice's scores (float32, to a scratch row per head) and its softmax statistics (maximum, sum of exponentials);
//  2. all slices' statistics merged (as flash-decoding merges them), the slice's probabilities (captured, and rounded
//     to the model's dtype as HF feeds them to the value product) and the slice's value product;
//  3. the slices' value products summed in slice order.
// A warp takes a key row, each lane E consecutive elements of it and of every query head's q (E = 1, 2, 4 or 8, the
// least with 32 E >= headDim; lanes past the row hold zeros), the dot products ending in a warp reduction. Scores, softmax sums and outputs are summed in other orders than decode_attention's, so results
// may differ from its in the last bits (a score can round to a neighbouring bf16 value); every order is fixed, so a
// run gives the same bits each time.
constexpr int kSplitThreads = 256;
constexpr int kSplitWarps = kSplitThreads / 32;
constexpr int kMaxGroup = 8;          // query heads per key/value head: one warp each for the statistics
constexpr int kTargetBlocks = 264;    // two per SM on an H100
constexpr int kMinSlice = 32;         // keys per block at least (below that the fixed costs dominate)
constexpr int kMaxSlice = 256;        // and at most: the slice's probabilities live in shared memory
constexpr int kKeysInFlight = 4;      // rows a warp loads before using any
constexpr size_t kSplitSharedFloats = 12288;  // 48 KiB, what a kernel gets without opting in to more

// Shared floats of the value kernel: per-warp partial outputs, the slice's probabilities, the merged statistics.
__host__ __device__ inline size_t split_values_floats(int group, int head_dim) {
  return (size_t)kSplitWarps * group * head_dim + (size_t)group * kMaxSlice + 2 * (size_t)group;
}

// A lane's part of a row: E consecutive elements from lane · E on, as float; zeros for a lane past the row's end.
template <typename T, int E>
__device__ __forceinline__ void load_part(const T* row, int lane, int head_dim, float (&out)[E]) {
  constexpr int bytes = E * (int)sizeof(T), per = kChunkBytes / (int)sizeof(T);
  const T* src = row + lane * E;
  if (lane * E >= head_dim) {
#pragma unroll
    for (int i = 0; i < E; ++i) out[i] = 0.f;
  } else if constexpr (bytes % kChunkBytes == 0) {
#pragma unroll
    for (int v = 0; v < bytes / kChunkBytes; ++v) {
      uint4 raw = reinterpret_cast<const uint4*>(src)[v];
      const T* e = reinterpret_cast<const T*>(&raw);
#pragma unroll
      for (int i = 0; i < per; ++i) out[v * per + i] = to_f(e[i]);
    }
  } else if constexpr (bytes == 8) {
    uint2 raw = *reinterpret_cast<const uint2*>(src);
    const T* e = reinterpret_cast<const T*>(&raw);
#pragma unroll
    for (int i = 0; i < E; ++i) out[i] = to_f(e[i]);
  } else {
#pragma unroll
    for (int i = 0; i < E; ++i) out[i] = to_f(src[i]);
  }
}

// Keys [first, first + n) of the block's slice.
__device__ __forceinline__ int slice_keys(long long capacity, long long first, int slice) {
  return (int)(first + slice <= capacity ? slice : (capacity > first ? capacity - first : 0));
}

template <typename T, int E>
__global__ void __launch_bounds__(kSplitThreads) split_scores_kernel(DecodeAttentionArgs a, float* scores, float2* stats,
                                                                     int slice, int splits) {
  extern __shared__ float shared[];
  const int D = a.head_dim, G = a.heads / a.kv_heads, g = blockIdx.x, split = blockIdx.y, tid = threadIdx.x;
  const int warp = tid / 32, lane = tid % 32;
  const bool active = lane * E < D;  // lanes past the row's end hold zeros
  const long long cap = a.capacity, pos = *a.position, first = (long long)split * slice;
  const int n = slice_keys(cap, first, slice);
  float* q = shared;               // [G, D], rotated
  float* knew = q + G * D;         // [D], rotated
  float* slice_scores = knew + D;  // [G, slice]

  const T* qkv = static_cast<const T*>(a.qkv);
  const T* ksrc = qkv + (size_t)(a.heads + g) * D;
  const T* vsrc = qkv + (size_t)(a.heads + a.kv_heads + g) * D;
  const T* cos = static_cast<const T*>(a.cos);
  const T* sin = static_cast<const T*>(a.sin);
  T* keys = static_cast<T*>(a.keys) + (size_t)g * cap * D;
  T* values = static_cast<T*>(a.values) + (size_t)g * cap * D;
  for (int i = tid; i < G * D; i += kSplitThreads) q[i] = rotated(qkv + (size_t)(g * G + i / D) * D, cos, sin, i % D, D / 2);
  for (int d = tid; d < D; d += kSplitThreads) {
    knew[d] = rotated(ksrc, cos, sin, d, D / 2);
    if (split == 0) {  // one block per key/value head stores the new key and value; the others use knew
      keys[pos * D + d] = from_f<T>(knew[d]);
      values[pos * D + d] = vsrc[d];
    }
  }
  __syncthreads();

  float qr[kMaxGroup][E];
#pragma unroll
  for (int h = 0; h < kMaxGroup; ++h)
#pragma unroll
    for (int e = 0; e < E; ++e) qr[h][e] = h < G && active ? q[h * D + lane * E + e] : 0.f;

  for (int base = warp; base < n; base += kSplitWarps * kKeysInFlight) {
    // Rows are loaded whatever the mask says (a masked row's products are dropped), so that no load waits on another.
    float k[kKeysInFlight][E], m[kKeysInFlight];
#pragma unroll
    for (int r = 0; r < kKeysInFlight; ++r) {
      const int i = base + r * kSplitWarps;
      const long long j = first + i;
      m[r] = -INFINITY;
      if (i >= n) continue;
      m[r] = a.mask[j];
      if (j == pos) {  // another block may be writing it to the cache
#pragma unroll
        for (int e = 0; e < E; ++e) k[r][e] = active ? knew[lane * E + e] : 0.f;
      } else {
        load_part<T, E>(keys + j * D, lane, D, k[r]);
      }
    }
#pragma unroll
    for (int r = 0; r < kKeysInFlight; ++r) {
      const int i = base + r * kSplitWarps;
      if (i >= n) break;
      float mine = -INFINITY;  // lane h keeps head h's score
      if (m[r] != -INFINITY) {
#pragma unroll
        for (int h = 0; h < kMaxGroup; ++h) {
          if (h >= G) break;
          float acc = 0.f;
#pragma unroll
          for (int e = 0; e < E; ++e) acc = fmaf(qr[h][e], k[r][e], acc);
          acc = warp_sum(acc);
          if (lane == h) mine = round_to<T>(acc) * a.scale + m[r];
        }
      }
      if (lane < G) {
        slice_scores[lane * slice + i] = mine;
        scores[(size_t)(g * G + lane) * cap + first + i] = mine;
      }
    }
  }
  __syncthreads();

  if (warp < G) {
    const float* row = slice_scores + warp * slice;
    float max = -INFINITY;
    for (int i = lane; i < n; i += 32) max = fmaxf(max, row[i]);
    max = warp_max(max);
    float sum = 0.f;
    if (max != -INFINITY)
      for (int i = lane; i < n; i += 32) sum += expf(row[i] - max);
    sum = warp_sum(sum);
    if (lane == 0) stats[(size_t)(g * G + warp) * splits + split] = make_float2(max, sum);
  }
}

template <typename T, typename C, int E>
__global__ void __launch_bounds__(kSplitThreads) split_values_kernel(DecodeAttentionArgs a, const float* scores,
                                                                     const float2* stats, float* partial, int slice,
                                                                     int splits) {
  extern __shared__ float shared[];
  const int D = a.head_dim, G = a.heads / a.kv_heads, g = blockIdx.x, split = blockIdx.y, tid = threadIdx.x;
  const int warp = tid / 32, lane = tid % 32;
  const long long cap = a.capacity, first = (long long)split * slice;
  const int n = slice_keys(cap, first, slice);
  float* outs = shared;                        // [warps, G, D]
  float* probs = outs + kSplitWarps * G * D;   // [G, slice]
  float* merged = probs + G * kMaxSlice;       // [G, 2]: maximum and sum over all slices

  if (warp < G) {
    const float2* s = stats + (size_t)(g * G + warp) * splits;
    float max = -INFINITY;
    for (int i = lane; i < splits; i += 32) max = fmaxf(max, s[i].x);
    max = warp_max(max);
    float sum = 0.f;
    for (int i = lane; i < splits; i += 32)
      if (s[i].x != -INFINITY) sum += s[i].y * expf(s[i].x - max);
    sum = warp_sum(sum);
    if (lane == 0) {
      merged[2 * warp] = max;
      merged[2 * warp + 1] = sum;
    }
  }
  __syncthreads();

  C* capture = static_cast<C*>(a.capture);
  for (int idx = tid; idx < G * n; idx += kSplitThreads) {
    const int h = idx / n, i = idx % n;
    const size_t at = (size_t)(g * G + h) * cap + first + i;
    const float p = expf(scores[at] - merged[2 * h]) / merged[2 * h + 1];
    capture[at] = from_f<C>(p);
    probs[h * slice + i] = round_to<T>(p);  // HF casts the probabilities to the model's dtype before the value product
  }
  __syncthreads();

  const T* values = static_cast<const T*>(a.values) + (size_t)g * cap * D;
  float acc[kMaxGroup][E];
#pragma unroll
  for (int h = 0; h < kMaxGroup; ++h)
#pragma unroll
    for (int e = 0; e < E; ++e) acc[h][e] = 0.f;
  for (int base = warp; base < n; base += kSplitWarps * kKeysInFlight) {
    float v[kKeysInFlight][E];
    bool used[kKeysInFlight];
#pragma unroll
    for (int r = 0; r < kKeysInFlight; ++r) {
      const int i = base + r * kSplitWarps;
      used[r] = false;
      if (i >= n) continue;
      for (int h = 0; h < G; ++h) used[r] = used[r] || probs[h * slice + i] != 0.f;
      if (used[r]) load_part<T, E>(values + (first + i) * D, lane, D, v[r]);  // rows no head attends to are not read
    }
#pragma unroll
    for (int r = 0; r < kKeysInFlight; ++r) {
      if (!used[r]) continue;
      const int i = base + r * kSplitWarps;
#pragma unroll
      for (int h = 0; h < kMaxGroup; ++h) {
        if (h >= G) break;
        const float p = probs[h * slice + i];
        if (p == 0.f) continue;  // masked keys add exactly nothing
#pragma unroll
        for (int e = 0; e < E; ++e) acc[h][e] = fmaf(p, v[r][e], acc[h][e]);
      }
    }
  }
#pragma unroll
  for (int h = 0; h < kMaxGroup; ++h) {
    if (h >= G || lane * E >= D) break;
#pragma unroll
    for (int e = 0; e < E; ++e) outs[(warp * G + h) * D + lane * E + e] = acc[h][e];
  }
  __syncthreads();
  for (int idx = tid; idx < G * D; idx += kSplitThreads) {
    float total = 0.f;
    for (int w = 0; w < kSplitWarps; ++w) total += outs[w * G * D + idx];
    partial[((size_t)split * a.heads + g * G) * D + idx] = total;
  }
}

template <typename T>
__global__ void split_sum_kernel(const float* partial, T* out, int count, int splits) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += gridDim.x * blockDim.x) {
    float total = 0.f;
    for (int s = 0; s < splits; ++s) total += partial[(size_t)s * count + i];
    out[i] = from_f<T>(total);
  }
}

// Slices of the keys: enough blocks to fill the GPU, none too small to be worth a block or too large for shared memory.
int split_count(int kv_heads, long long capacity) {
  long long splits = (kTargetBlocks + kv_heads - 1) / kv_heads;
  const long long most = (capacity + kMinSlice - 1) / kMinSlice, least = (capacity + kMaxSlice - 1) / kMaxSlice;
  if (splits > most) splits = most;
  if (splits < least) splits = least;
  return (int)(splits < 1 ? 1 : splits);
}

template <typename T, typename C, int E>
cudaError_t launch_attention_split(const DecodeAttentionArgs& a, float* scratch, cudaStream_t stream) {
  const int G = a.heads / a.kv_heads, D = a.head_dim;
  const int splits = split_count(a.kv_heads, a.capacity);
  const int slice = (int)((a.capacity + splits - 1) / splits);
  float2* stats = reinterpret_cast<float2*>(scratch);  // first: the scratch is 8-byte aligned
  float* scores = scratch + 2 * (size_t)a.heads * splits;
  float* partial = scores + (size_t)a.heads * a.capacity;
  const dim3 grid(a.kv_heads, splits);
  const size_t score_bytes = ((size_t)(G + 1) * D + (size_t)G * slice) * sizeof(float);
  split_scores_kernel<T, E><<<grid, kSplitThreads, score_bytes, stream>>>(a, scores, stats, slice, splits);
  split_values_kernel<T, C, E><<<grid, kSplitThreads, split_values_floats(G, D) * sizeof(float), stream>>>(
      a, scores, stats, partial, slice, splits);
  const int count = a.heads * D;
  split_sum_kernel<T><<<(count + 255) / 256, 256, 0, stream>>>(partial, static_cast<T*>(a.output), count, splits);
  return cudaGetLastError();
}

// Elements of a row per lane: the least of 1, 2, 4, 8 with 32 of them covering the row.
__host__ __device__ inline int part_elements(int head_dim) {
  return head_dim <= 32 ? 1 : head_dim <= 64 ? 2 : head_dim <= 128 ? 4 : 8;
}

template <typename T, typename C>
cudaError_t launch_attention_split_dim(const DecodeAttentionArgs& a, float* scratch, cudaStream_t stream) {
  switch (part_elements(a.head_dim)) {
    case 1: return launch_attention_split<T, C, 1>(a, scratch, stream);
    case 2: return launch_attention_split<T, C, 2>(a, scratch, stream);
    case 4: return launch_attention_split<T, C, 4>(a, scratch, stream);
    default: return launch_attention_split<T, C, 8>(a, scratch, stream);
  }
}

template <typename T>
cudaError_t launch_attention_split_for(const DecodeAttentionArgs& a, float* scratch, cudaStream_t stream) {
  return a.captured == Element::Float32 ? launch_attention_split_dim<T, float>(a, scratch, stream)
                                        : launch_attention_split_dim<T, __half>(a, scratch, stream);
}

// Sum of the products of one 16-byte chunk of a weight row and of the input.
template <typename T>
__device__ __forceinline__ float dot_chunk(uint4 w, uint4 x) {
  constexpr int per = kChunkBytes / sizeof(T);
  const T* wt = reinterpret_cast<const T*>(&w);
  const T* xt = reinterpret_cast<const T*>(&x);
  float s = 0.f;
#pragma unroll
  for (int i = 0; i < per; i++) s = fmaf(to_f(wt[i]), to_f(xt[i]), s);
  return s;
}

constexpr int kGemvThreads = 256;
constexpr int kGemvUnroll = 4;  // chunks in flight per lane: enough loads outstanding to keep HBM busy

// One warp per output row; addend and out may be the same buffer (each row is read, then written, by one lane).
template <typename T>
__global__ void gemv_kernel(const T* __restrict__ weight, const T* __restrict__ input, const T* addend, T* out,
                            long long n, long long k) {
  const long long row = (long long)blockIdx.x * (kGemvThreads / 32) + threadIdx.x / 32;
  if (row >= n) return;
  const int lane = threadIdx.x % 32;
  const long long chunks = k / (kChunkBytes / sizeof(T));
  const uint4* w = reinterpret_cast<const uint4*>(weight + row * k);
  const uint4* x = reinterpret_cast<const uint4*>(input);
  float acc = 0.f;
  long long c = lane;
  for (; c + 32 * (kGemvUnroll - 1) < chunks; c += 32 * kGemvUnroll) {
    uint4 wv[kGemvUnroll], xv[kGemvUnroll];
#pragma unroll
    for (int u = 0; u < kGemvUnroll; u++) {
      wv[u] = __ldcs(w + c + 32 * u);  // read once: do not keep the weights in cache
      xv[u] = __ldg(x + c + 32 * u);
    }
#pragma unroll
    for (int u = 0; u < kGemvUnroll; u++) acc += dot_chunk<T>(wv[u], xv[u]);
  }
  for (; c < chunks; c += 32) acc += dot_chunk<T>(__ldcs(w + c), __ldg(x + c));
  acc = warp_sum(acc);
  if (lane == 0) out[row] = from_f<T>(addend ? to_f(addend[row]) + acc : acc);
}

template <typename T>
cudaError_t launch_gemv(const void* weight, const void* input, const void* addend, void* out, long long n, long long k,
                        cudaStream_t stream) {
  const long long blocks = (n + kGemvThreads / 32 - 1) / (kGemvThreads / 32);
  gemv_kernel<T><<<(unsigned)blocks, kGemvThreads, 0, stream>>>(static_cast<const T*>(weight), static_cast<const T*>(input),
                                                                 static_cast<const T*>(addend), static_cast<T*>(out), n, k);
  return cudaGetLastError();
}

template <typename T, typename C>
cudaError_t launch_attention(const DecodeAttentionArgs& a, cudaStream_t stream) {
  const int chunks = a.head_dim / (kChunkBytes / (int)sizeof(T));
  const size_t bytes = shared_floats(a.capacity, a.head_dim, chunks) * sizeof(float);
  auto kernel = decode_attention_kernel<T, C>;
  // Above 48 KiB a kernel must opt in to more shared memory; set once per instantiation and device, to the maximum,
  // outside any graph capture (the first step of a workspace runs uncaptured).
  static bool opted_in[64] = {};
  int device = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err != cudaSuccess) return err;
  if (device < 64 && !opted_in[device]) {
    int optin = 0;
    err = cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
    if (err == cudaSuccess) err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, optin);
    if (err != cudaSuccess) return err;
    opted_in[device] = true;
  }
  kernel<<<a.heads, kThreads, bytes, stream>>>(a);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_attention_for(const DecodeAttentionArgs& a, cudaStream_t stream) {
  return a.captured == Element::Float32 ? launch_attention<T, float>(a, stream) : launch_attention<T, __half>(a, stream);
}

}  // namespace

size_t element_size(Element e) { return e == Element::Float32 ? 4 : 2; }

long long decode_attention_max_keys(Element model, int head_dim) {
  const int per = kChunkBytes / (int)element_size(model);
  if (head_dim <= 0 || head_dim % 2 != 0 || head_dim % per != 0) return 0;
  const int chunks = head_dim / per;
  if (chunks > kMaxChunksPerLane * lanes_per_row(chunks)) return 0;
  int device = 0, optin = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) != cudaSuccess)
    return 0;
  const long long fixed = (long long)shared_floats(0, head_dim, chunks) * (long long)sizeof(float);
  return optin > fixed ? (optin - fixed) / (long long)sizeof(float) : 0;
}

cudaError_t decode_attention(const DecodeAttentionArgs& a, cudaStream_t stream) {
  switch (a.model) {
    case Element::Float32: return launch_attention_for<float>(a, stream);
    case Element::Float16: return launch_attention_for<__half>(a, stream);
    default: return launch_attention_for<__nv_bfloat16>(a, stream);
  }
}

bool decode_attention_split_supports(int heads, int kv_heads, int head_dim) {
  if (kv_heads <= 0 || heads % kv_heads != 0 || heads / kv_heads > kMaxGroup) return false;
  // A lane's part must not straddle rows' ends (for its vector load); rotation swaps halves.
  return head_dim > 0 && head_dim <= 256 && head_dim % 2 == 0 && head_dim % part_elements(head_dim) == 0 &&
         split_values_floats(heads / kv_heads, head_dim) <= kSplitSharedFloats;
}

size_t decode_attention_split_floats(int heads, int kv_heads, int head_dim, long long capacity) {
  const size_t splits = (size_t)split_count(kv_heads, capacity);
  return 2 * (size_t)heads * splits + (size_t)heads * capacity + splits * heads * head_dim;
}

cudaError_t decode_attention_split(const DecodeAttentionArgs& a, float* scratch, cudaStream_t stream) {
  if (!decode_attention_split_supports(a.heads, a.kv_heads, a.head_dim)) return cudaErrorInvalidValue;
  switch (a.model) {
    case Element::Float32: return launch_attention_split_for<float>(a, scratch, stream);
    case Element::Float16: return launch_attention_split_for<__half>(a, scratch, stream);
    default: return launch_attention_split_for<__nv_bfloat16>(a, scratch, stream);
  }
}

cudaError_t gemv(const void* weight, const void* input, const void* addend, void* out, long long n, long long k,
                 Element model, cudaStream_t stream) {
  switch (model) {
    case Element::Float32: return launch_gemv<float>(weight, input, addend, out, n, k, stream);
    case Element::Float16: return launch_gemv<__half>(weight, input, addend, out, n, k, stream);
    default: return launch_gemv<__nv_bfloat16>(weight, input, addend, out, n, k, stream);
  }
}

cudaError_t silu_mul(const void* gate_up, void* out, long long rows, long long width, Element model, cudaStream_t stream) {
  const long long n = rows * width;
  const int threads = 256;
  const int blocks = (int)((n + threads - 1) / threads < 4096 ? (n + threads - 1) / threads : 4096);
  switch (model) {
    case Element::Float32:
      silu_mul_kernel<<<blocks, threads, 0, stream>>>(static_cast<const float*>(gate_up), static_cast<float*>(out), rows, width);
      break;
    case Element::Float16:
      silu_mul_kernel<<<blocks, threads, 0, stream>>>(static_cast<const __half*>(gate_up), static_cast<__half*>(out), rows, width);
      break;
    default:
      silu_mul_kernel<<<blocks, threads, 0, stream>>>(static_cast<const __nv_bfloat16*>(gate_up), static_cast<__nv_bfloat16*>(out), rows, width);
      break;
  }
  return cudaGetLastError();
}

}  // namespace attnportal
