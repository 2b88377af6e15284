// A measured FP32 peak for "share of peak" figures: a short FMA kernel (independent
// accumulator chains, no memory traffic) run on N OpenMP threads. The kernel is picked at run
// time with __builtin_cpu_supports: AVX-512F, else AVX2+FMA, else a portable C++ loop.
#pragma once

#include <string>

namespace fg::perf {

enum class FmaKernel { best, avx512, avx2, portable };

struct PeakResult {
  double gflops = 0;   // best repetition, FP32 FLOP/s / 1e9 (an FMA counts 2 FLOPs)
  std::string kernel;  // "avx512f", "avx2_fma" or "portable"
  int threads = 1;
  int repetitions = 0;
  double seconds = 0;  // wall time spent measuring
};

// True if the CPU (and the compiler) can run this kernel here.
bool fma_kernel_available(FmaKernel kernel);
// Runs the kernel on `threads` threads (>= 1) for about `seconds` in total and returns the best
// repetition. Throws fg::Error if the kernel is not available.
PeakResult measure_fma_peak(int threads, double seconds = 0.3, FmaKernel kernel = FmaKernel::best);

}  // namespace fg::perf
