// A C ABI over the fused decoding kernels for TorchSharp: arguments are TorchSharp tensor handles (at::Tensor*),
// checked here so that a wrong shape is an error message, never an out-of-bounds kernel; kernels run on libtorch's
// current stream, so they are recorded into CUDA graphs with the rest of the step. Built against the PyTorch the
// engine runs on (tools/gpu/build-cudagraph.sh). Every function returns 0 on success; errors go to stderr.
#include "../common/guarded.h"
#include "decode_kernels.h"

#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cstdio>
#include <stdexcept>
#include <string>

namespace {
using attnportal::Element;

const at::Tensor& tensor(void* handle) { return *static_cast<at::Tensor*>(handle); }

Element element(const at::Tensor& t, const char* name) {
  switch (t.scalar_type()) {
    case at::kFloat: return Element::Float32;
    case at::kHalf: return Element::Float16;
    case at::kBFloat16: return Element::BFloat16;
    default: throw std::invalid_argument(std::string(name) + ": unsupported dtype " + c10::toString(t.scalar_type()));
  }
}

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument(what);
}

const at::Tensor& on_device(void* handle, const char* name, int64_t numel, int device) {
  const at::Tensor& t = tensor(handle);
  require(t.is_cuda() && t.get_device() == device, std::string(name) + " must be on the same CUDA device");
  require(t.is_contiguous(), std::string(name) + " must be contiguous");
  require(t.numel() == numel, std::string(name) + " has " + std::to_string(t.numel()) + " elements, expected " +
                                  std::to_string(numel));
  return t;
}

template <typename F>
int guarded(const char* what, F&& f) {
  return attnportal::guarded("attnportal_kernels", what, std::forward<F>(f));
}

void check(cudaError_t err) {
  if (err != cudaSuccess) throw std::runtime_error(cudaGetErrorString(err));
}
}  // namespace

extern "C" {
long long ap_decode_attention_max_keys(int element_size, int head_dim) {
  Element model = element_size == 4 ? Element::Float32 : Element::BFloat16;  // only the size matters
  return attnportal::decode_attention_max_keys(model, head_dim);
}

// keys/values: [1, kvHeads, capacity, headDim]; qkv: [.., (heads + 2 kvHeads) headDim]; cos/sin: [.., headDim];
// position: [1] int64; mask: [capacity] float32; capture: [heads, capacity]; output: [.., heads headDim].
// split: nonzero for decode_attention_split where it supports the heads and head size (the keys across blocks; its
// scratch comes from libtorch's allocator, so inside a graph capture it is the graph's), decode_attention otherwise.
int ap_decode_attention(void* qkv, void* cos, void* sin, void* position, void* keys, void* values, void* mask,
                        double scale, void* capture, void* output, int heads, int split) {
  return guarded("decode_attention", [&] {
    const at::Tensor& k = tensor(keys);
    require(k.is_cuda() && k.dim() == 4 && k.size(0) == 1, "keys must be a [1, kvHeads, capacity, headDim] CUDA tensor");
    const int device = k.get_device();
    c10::cuda::CUDAGuard guard(device);
    const int kv = (int)k.size(1), dim = (int)k.size(3);
    const int64_t cap = k.size(2);
    require(heads > 0 && heads % kv == 0, "heads must be a multiple of the key/value heads");
    attnportal::DecodeAttentionArgs a{};
    a.model = element(k, "keys");
    a.captured = element(tensor(capture), "capture");
    require(a.captured != Element::BFloat16, "capture must be float32 or float16");
    split = split && attnportal::decode_attention_split_supports(heads, kv, dim);
    if (!split) require(cap <= attnportal::decode_attention_max_keys(a.model, dim), "head size or key capacity not supported");
    const at::Tensor* same[] = {&on_device(qkv, "qkv", (int64_t)(heads + 2 * kv) * dim, device),
                                &on_device(cos, "cos", dim, device), &on_device(sin, "sin", dim, device),
                                &on_device(values, "values", k.numel(), device), &on_device(output, "output", (int64_t)heads * dim, device)};
    for (const at::Tensor* t : same) require(t->scalar_type() == k.scalar_type(), "every tensor but the mask and capture must have the keys' dtype");
    require(k.is_contiguous() && (uintptr_t)k.data_ptr() % 16 == 0 && (uintptr_t)tensor(values).data_ptr() % 16 == 0,
            "keys and values must be contiguous and 16-byte aligned");
    const at::Tensor& pos = on_device(position, "position", 1, device);
    require(pos.scalar_type() == at::kLong, "position must be int64");
    const at::Tensor& m = on_device(mask, "mask", cap, device);
    require(m.scalar_type() == at::kFloat, "mask must be float32");
    on_device(capture, "capture", (int64_t)heads * cap, device);
    a.qkv = tensor(qkv).data_ptr();
    a.cos = tensor(cos).data_ptr();
    a.sin = tensor(sin).data_ptr();
    a.position = static_cast<const long long*>(pos.data_ptr());
    a.keys = k.data_ptr();
    a.values = tensor(values).data_ptr();
    a.mask = m.data_ptr<float>();
    a.capture = tensor(capture).data_ptr();
    a.output = tensor(output).data_ptr();
    a.scale = (float)scale;
    a.heads = heads;
    a.kv_heads = kv;
    a.head_dim = dim;
    a.capacity = cap;
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(device).stream();
    if (split) {
      at::Tensor scratch = at::empty({(int64_t)attnportal::decode_attention_split_floats(heads, kv, dim, cap)},
                                     k.options().dtype(at::kFloat));
      check(attnportal::decode_attention_split(a, scratch.data_ptr<float>(), stream));
    } else {
      check(attnportal::decode_attention(a, stream));
    }
  });
}

// weight: [n, k]; input: k elements; addend: null or n elements (may be output itself); output: n elements; one dtype.
int ap_gemv(void* input, void* weight, void* addend, void* output) {
  return guarded("gemv", [&] {
    const at::Tensor& w = tensor(weight);
    require(w.is_cuda() && w.dim() == 2 && w.is_contiguous(), "weight must be a contiguous [n, k] CUDA tensor");
    const int device = w.get_device();
    c10::cuda::CUDAGuard guard(device);
    const Element model = element(w, "weight");
    const int64_t n = w.size(0), k = w.size(1);
    require(k % (int64_t)(16 / attnportal::element_size(model)) == 0, "weight rows must be a multiple of 16 bytes");
    const at::Tensor& x = on_device(input, "input", k, device);
    const at::Tensor& out = on_device(output, "output", n, device);
    const at::Tensor* add = addend ? &on_device(addend, "addend", n, device) : nullptr;
    for (const at::Tensor* t : {&x, &out, add})
      require(!t || t->scalar_type() == w.scalar_type(), "input, addend and output must have the weight's dtype");
    require((uintptr_t)w.data_ptr() % 16 == 0 && (uintptr_t)x.data_ptr() % 16 == 0,
            "weight and input must be 16-byte aligned");
    check(attnportal::gemv(w.data_ptr(), x.data_ptr(), add ? add->data_ptr() : nullptr, out.data_ptr(), n, k, model,
                           c10::cuda::getCurrentCUDAStream(device).stream()));
  });
}

// gate_up: [.., 2 width]; output: [.., width], same dtype.
int ap_silu_mul(void* gate_up, void* output) {
  return guarded("silu_mul", [&] {
    const at::Tensor& gu = tensor(gate_up);
    require(gu.is_cuda() && gu.is_contiguous() && gu.size(-1) % 2 == 0, "gate_up must be contiguous on CUDA, with an even last dimension");
    const int64_t width = gu.size(-1) / 2, rows = gu.numel() / gu.size(-1);
    const at::Tensor& out = on_device(output, "output", rows * width, gu.get_device());
    require(out.scalar_type() == gu.scalar_type(), "output must have gate_up's dtype");
    check(attnportal::silu_mul(gu.data_ptr(), out.data_ptr(), rows, width, element(gu, "gate_up"),
                               c10::cuda::getCurrentCUDAStream(gu.get_device()).stream()));
  });
}
}
