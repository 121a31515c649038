// A check and a benchmark, run on purpose (tools/gpu/attention-check.sh): the engine's decoding attention with the
// keys split across blocks (decode_attention_split) against the one-block-per-head kernel (decode_attention, which
// the CUDA parity runs hold to HF), on one decoding step of the 7B models' shapes with random bf16 inputs. Prints,
// per shape, whether the caches are the same bits, how far the captured probabilities and the outputs are apart
// (the split kernel sums in other orders: a score may round to a neighbouring bf16 value, so a few probabilities
// move by up to a percent of themselves), and each kernel's time replayed from a CUDA graph (as the engine runs them).
//
// `--save FILE` writes the one-block kernel's caches, captured rows and outputs for every shape; `--against FILE`
// compares this build's with them, bit for bit: how a change to that kernel shows it computes what it did before.
#include "../cuda_check.h"
#include "decode_kernels.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

using attnportal::DecodeAttentionArgs;
using attnportal::Element;

struct Case {
  const char* name;
  int heads, kv_heads, head_dim;
  long long capacity, position;
  long long masked_from, masked_to;  // keys [from, to) masked as a modality mask would (none when from == to)
  bool float_capture;
};

template <typename T>
T* upload(const std::vector<T>& host) {
  T* device = nullptr;
  CHECK(cudaMalloc(&device, host.size() * sizeof(T)));
  CHECK(cudaMemcpy(device, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
  return device;
}

template <typename T>
std::vector<T> download(const T* device, size_t n) {
  std::vector<T> host(n);
  CHECK(cudaMemcpy(host.data(), device, n * sizeof(T), cudaMemcpyDeviceToHost));
  return host;
}

// Microseconds per call of `run`, replayed from a graph of 20 calls, as the engine replays a decoding step.
template <typename F>
double graph_time(F run, cudaStream_t stream) {
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  for (int i = 0; i < 20; ++i) CHECK(run(stream));
  CHECK(cudaStreamEndCapture(stream, &graph));
  CHECK(cudaGraphInstantiate(&exec, graph, 0));
  CHECK(cudaGraphLaunch(exec, stream));
  CHECK(cudaStreamSynchronize(stream));
  cudaEvent_t t0, t1;
  CHECK(cudaEventCreate(&t0));
  CHECK(cudaEventCreate(&t1));
  CHECK(cudaEventRecord(t0, stream));
  for (int i = 0; i < 10; ++i) CHECK(cudaGraphLaunch(exec, stream));
  CHECK(cudaEventRecord(t1, stream));
  CHECK(cudaEventSynchronize(t1));
  float ms = 0;
  CHECK(cudaEventElapsedTime(&ms, t0, t1));
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  return ms * 1000.0 / 200.0;
}

int main(int argc, char** argv) {
  const char* save = argc == 3 && std::strcmp(argv[1], "--save") == 0 ? argv[2] : nullptr;
  const char* against = argc == 3 && std::strcmp(argv[1], "--against") == 0 ? argv[2] : nullptr;
  if (argc != 1 && !save && !against) {
    std::fprintf(stderr, "usage: attention_check [--save FILE | --against FILE]\n");
    return 2;
  }
  std::FILE* saved = save ? std::fopen(save, "wb") : against ? std::fopen(against, "rb") : nullptr;
  if ((save || against) && !saved) {
    std::fprintf(stderr, "cannot open %s\n", save ? save : against);
    return 2;
  }

  const Case cases[] = {
      {"OneVision-Qwen2-7B, 1290 keys", 28, 4, 128, 1408, 1289, 0, 0, false},
      {"same, keys 14-1218 masked (alternating)", 28, 4, 128, 1408, 1289, 14, 1219, false},
      {"LLaVA-1.5-7B, 626 keys", 32, 32, 128, 640, 625, 0, 0, false},
      {"same, float32 capture", 32, 32, 128, 640, 625, 0, 0, true},
      {"NeXT-Mistral-7B, 2900 keys", 32, 8, 128, 3072, 2899, 0, 0, false},
  };
  cudaStream_t stream;
  CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  std::printf("| shape | caches equal | captured rows: max abs diff (values differing) | output max abs diff / max abs | one block per head us | split us | speed-up | one block as saved (bits) |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  int failures = 0;
  for (const Case& c : cases) {
    std::mt19937 rng(1234);
    std::normal_distribution<float> normal(0.f, 1.f);
    const int D = c.head_dim;
    const size_t qkvCount = (size_t)(c.heads + 2 * c.kv_heads) * D, cacheCount = (size_t)c.kv_heads * c.capacity * D;
    std::vector<__nv_bfloat16> qkv(qkvCount), cache(cacheCount), cosRow(D), sinRow(D);
    for (auto& x : qkv) x = __float2bfloat16_rn(normal(rng));
    for (int g = 0; g < c.kv_heads; ++g)
      for (long long j = 0; j < c.capacity; ++j)
        for (int d = 0; d < D; ++d)
          cache[((size_t)g * c.capacity + j) * D + d] = __float2bfloat16_rn(j < c.position ? normal(rng) : 0.f);
    for (int d = 0; d < D; ++d) {
      const double theta = c.position * std::pow(10000.0, -2.0 * (d % (D / 2)) / D);
      cosRow[d] = __float2bfloat16_rn((float)std::cos(theta));
      sinRow[d] = __float2bfloat16_rn((float)(d < D / 2 ? -std::sin(theta) : std::sin(theta)));
    }
    std::vector<float> mask(c.capacity, 0.f);
    for (long long j = 0; j < c.capacity; ++j)
      if (j > c.position || (j >= c.masked_from && j < c.masked_to)) mask[j] = -INFINITY;
    std::vector<long long> position{c.position};

    const size_t captureBytes = (size_t)c.heads * c.capacity * (c.float_capture ? 4 : 2);
    DecodeAttentionArgs a{};
    a.qkv = upload(qkv);
    a.cos = upload(cosRow);
    a.sin = upload(sinRow);
    a.position = upload(position);
    a.mask = upload(mask);
    a.scale = 1.f / std::sqrt((float)D);
    a.heads = c.heads;
    a.kv_heads = c.kv_heads;
    a.head_dim = D;
    a.capacity = c.capacity;
    a.model = Element::BFloat16;
    a.captured = c.float_capture ? Element::Float32 : Element::Float16;
    DecodeAttentionArgs one = a, split = a;
    one.keys = upload(cache);
    one.values = upload(cache);
    split.keys = upload(cache);
    split.values = upload(cache);
    CHECK(cudaMalloc(&one.capture, captureBytes));
    CHECK(cudaMalloc(&split.capture, captureBytes));
    CHECK(cudaMalloc(&one.output, (size_t)c.heads * D * 2));
    CHECK(cudaMalloc(&split.output, (size_t)c.heads * D * 2));
    float* scratch = nullptr;
    CHECK(cudaMalloc(&scratch, attnportal::decode_attention_split_floats(c.heads, c.kv_heads, D, c.capacity) * sizeof(float)));

    CHECK(attnportal::decode_attention(one, stream));
    CHECK(attnportal::decode_attention_split(split, scratch, stream));
    CHECK(cudaStreamSynchronize(stream));

    const bool cachesEqual =
        std::memcmp(download((const __nv_bfloat16*)one.keys, cacheCount).data(), download((const __nv_bfloat16*)split.keys, cacheCount).data(), cacheCount * 2) == 0 &&
        std::memcmp(download((const __nv_bfloat16*)one.values, cacheCount).data(), download((const __nv_bfloat16*)split.values, cacheCount).data(), cacheCount * 2) == 0;
    auto capOne = download((const unsigned char*)one.capture, captureBytes);
    auto capSplit = download((const unsigned char*)split.capture, captureBytes);
    double captureDiff = 0;
    size_t captureDiffering = 0;
    const size_t captured = (size_t)c.heads * c.capacity;
    for (size_t i = 0; i < captured; ++i) {
      const double x = c.float_capture ? ((const float*)capOne.data())[i] : __half2float(((const __half*)capOne.data())[i]);
      const double y = c.float_capture ? ((const float*)capSplit.data())[i] : __half2float(((const __half*)capSplit.data())[i]);
      captureDiff = std::fmax(captureDiff, std::fabs(x - y));
      captureDiffering += x != y;
    }
    auto outOne = download((const __nv_bfloat16*)one.output, (size_t)c.heads * D);
    auto outSplit = download((const __nv_bfloat16*)split.output, (size_t)c.heads * D);
    double diff = 0, largest = 0;
    for (size_t i = 0; i < outOne.size(); ++i) {
      diff = std::fmax(diff, std::fabs(__bfloat162float(outOne[i]) - __bfloat162float(outSplit[i])));
      largest = std::fmax(largest, std::fabs(__bfloat162float(outOne[i])));
    }
    // The one-block kernel's results, bit for bit, to save or to compare with a saved build's.
    std::vector<unsigned char> bits;
    for (const void* part : {one.keys, one.values}) {
      auto b = download((const unsigned char*)part, cacheCount * 2);
      bits.insert(bits.end(), b.begin(), b.end());
    }
    bits.insert(bits.end(), capOne.begin(), capOne.end());
    auto outBits = download((const unsigned char*)one.output, (size_t)c.heads * D * 2);
    bits.insert(bits.end(), outBits.begin(), outBits.end());
    const char* sameAsSaved = "-";
    if (save && std::fwrite(bits.data(), 1, bits.size(), saved) != bits.size()) {
      std::fprintf(stderr, "cannot write %s\n", save);
      return 2;
    }
    if (against) {
      std::vector<unsigned char> before(bits.size());
      const bool same = std::fread(before.data(), 1, before.size(), saved) == before.size() &&
                        std::memcmp(before.data(), bits.data(), bits.size()) == 0;
      sameAsSaved = same ? "yes" : "NO";
      failures += !same;
    }

    // A value product summed in another order may round its bf16 output one step apart: ~8e-3 for outputs below 2.
    const bool ok = cachesEqual && captureDiff <= 1e-2 && diff <= largest / 64;
    failures += !ok;

    const double tOne = graph_time([&](cudaStream_t s) { return attnportal::decode_attention(one, s); }, stream);
    const double tSplit = graph_time([&](cudaStream_t s) { return attnportal::decode_attention_split(split, scratch, s); }, stream);
    std::printf("| %s | %s | %.2e (%zu of %zu) | %.2e / %.2e | %.1f | %.1f | %.2fx | %s |\n", c.name,
                cachesEqual ? "yes" : "NO", captureDiff, captureDiffering, captured, diff, largest, tOne, tSplit,
                tOne / tSplit, sameAsSaved);
  }
  if (saved) std::fclose(saved);
  std::printf("\n%s\n", failures ? "MISMATCH: see the rows marked NO, the captured rows (> 1e-2) or the outputs (> max / 64)" : "all shapes agree");
  return failures ? 1 : 0;
}
