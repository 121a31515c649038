// A C ABI over libtorch's Kineto profiler and the CUDA caching allocator's statistics, for diagnosing the engine on
// the GPU machine (Nsight Systems cannot make reports there). The profiler records every ATen op the engine dispatches
// and every CUDA kernel (those replayed from a CUDA graph too) and writes a Chrome trace; the statistics give peak
// allocated memory the way torch.cuda.max_memory_allocated does, so that the engine and HF transformers are measured
// alike. Built beside the CUDA graph shim by tools/gpu/build-cudagraph.sh.
#include <c10/cuda/CUDACachingAllocator.h>
#include <torch/csrc/autograd/profiler_kineto.h>
#include <cstdio>
#include <set>

namespace {
using torch::profiler::impl::ActivityType;
using torch::profiler::impl::ProfilerConfig;
using torch::profiler::impl::ProfilerState;

const std::set<ActivityType> activities{ActivityType::CPU, ActivityType::CUDA};
}  // namespace

extern "C" {
int ap_profiler_start() {
  try {
    ProfilerConfig config(ProfilerState::KINETO);
    torch::autograd::profiler::prepareProfiler(config, activities);
    torch::autograd::profiler::enableProfiler(config, activities);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "attnportal_profiler start: %s\n", e.what());
    return 1;
  }
}

int ap_profiler_stop(const char* trace_path) {
  try {
    auto result = torch::autograd::profiler::disableProfiler();
    result->save(trace_path);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "attnportal_profiler stop: %s\n", e.what());
    return 1;
  }
}

// Bytes allocated now and at the peak since the last reset, on device 0 (torch.cuda.memory_allocated and
// max_memory_allocated); -1 on failure.
long long ap_memory_allocated(int peak) {
  try {
    auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(0);
    return peak ? stats.allocated_bytes[0].peak : stats.allocated_bytes[0].current;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "attnportal_profiler memory: %s\n", e.what());
    return -1;
  }
}

void ap_memory_reset_peak() {
  try {
    c10::cuda::CUDACachingAllocator::resetPeakStats(0);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "attnportal_profiler reset: %s\n", e.what());
  }
}
}
