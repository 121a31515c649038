// A C ABI over libtorch's at::cuda::CUDAGraph and CUDAEvent for AttnPortal's decoding loop (TorchSharp binds neither).
// Built against the same libtorch the engine runs on (tools/gpu/build-cudagraph.sh), so the graph, TorchSharp's ops and
// the caching allocator share one process-wide CUDA state. Every function returns 0 on success; errors go to stderr.
#include "../common/guarded.h"
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>
#include <cstdio>
#include <map>

namespace {
// One capture stream for the process (per device), as torch.cuda.graph does: libtorch caches per-stream state (a
// cuBLAS workspace of ~32 MiB per stream), so taking a new pool stream for each recording would add that much
// allocated memory per graph until the pool's streams wrap round.
std::map<c10::DeviceIndex, c10::cuda::CUDAStream> side_streams;

template <typename F>
int guarded(const char* what, F&& f) {
  return attnportal::guarded("attnportal_cudagraph", what, std::forward<F>(f));
}
}  // namespace

extern "C" {
void* ap_graph_new() {
  try {
    return new at::cuda::CUDAGraph();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "attnportal_cudagraph new: %s\n", e.what());
    return nullptr;
  }
}

// Capture needs a stream other than the legacy default one; libtorch launches on the "current" stream.
int ap_side_stream_begin() {
  return guarded("side stream", [] {
    const c10::DeviceIndex device = c10::cuda::current_device();
    auto it = side_streams.find(device);
    if (it == side_streams.end()) it = side_streams.emplace(device, c10::cuda::getStreamFromPool(false, device)).first;
    c10::cuda::setCurrentCUDAStream(it->second);
  });
}

int ap_side_stream_end() {
  return guarded("side stream end", [] { c10::cuda::setCurrentCUDAStream(c10::cuda::getDefaultCUDAStream()); });
}

// Thread-local capture: CUDA calls other threads make meanwhile (a finalizer freeing a tensor) do not break it.
int ap_capture_begin(void* graph) {
  return guarded("capture begin", [&] {
    static_cast<at::cuda::CUDAGraph*>(graph)->capture_begin({0, 0}, cudaStreamCaptureModeThreadLocal);
  });
}

int ap_capture_end(void* graph) {
  return guarded("capture end", [&] { static_cast<at::cuda::CUDAGraph*>(graph)->capture_end(); });
}

int ap_replay(void* graph) {
  return guarded("replay", [&] { static_cast<at::cuda::CUDAGraph*>(graph)->replay(); });
}

void ap_graph_free(void* graph) { delete static_cast<at::cuda::CUDAGraph*>(graph); }

// Bytes the caching allocator holds from CUDA on the current device (torch.cuda.memory_reserved); -1 on failure. Read
// around a recording, it gives the graph's private pool, which stays reserved while the graph lives.
long long ap_memory_reserved() {
  try {
    return c10::cuda::CUDACachingAllocator::getDeviceStats(c10::cuda::current_device()).reserved_bytes[0].current;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "attnportal_cudagraph memory: %s\n", e.what());
    return -1;
  }
}

// An event lets the host wait for one point of the stream (a step's outputs copied out) while later work (the next
// step, already launched) keeps the GPU busy; a stream synchronisation would wait for that too.
void* ap_event_new() {
  try {
    return new at::cuda::CUDAEvent();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "attnportal_cudagraph event new: %s\n", e.what());
    return nullptr;
  }
}

int ap_event_record(void* event) {
  return guarded("event record", [&] { static_cast<at::cuda::CUDAEvent*>(event)->record(); });
}

int ap_event_synchronize(void* event) {
  return guarded("event synchronize", [&] { static_cast<at::cuda::CUDAEvent*>(event)->synchronize(); });
}

void ap_event_free(void* event) { delete static_cast<at::cuda::CUDAEvent*>(event); }
}
