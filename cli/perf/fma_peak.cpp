#include "cli/perf/fma_peak.hpp"

#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <fusiongraph/fusiongraph.hpp>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FG_PERF_X86 1
#endif

namespace fg::perf {

namespace {

// Each kernel runs `iters` iterations of A independent FMA chains acc = acc * b + c (b close to
// 1, c tiny, so the values stay bounded) and returns a sum so that nothing is optimized away.
// FLOPs per iteration: A accumulators x lanes x 2.

#ifdef FG_PERF_X86
constexpr int kAvx512Acc = 24;  // 32 zmm registers; 2 FMA ports x 4-cycle latency needs >= 8
constexpr int kAvx2Acc = 12;    // 16 ymm registers

__attribute__((target("avx512f"))) float kernel_avx512(int64_t iters, float seed) {
  __m512 acc[kAvx512Acc];
  for (int j = 0; j < kAvx512Acc; ++j) acc[j] = _mm512_set1_ps(seed + 0.01f * j);
  const __m512 b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-6f);
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 24
    for (int j = 0; j < kAvx512Acc; ++j) acc[j] = _mm512_fmadd_ps(acc[j], b, c);
  }
  __m512 s = acc[0];
  for (int j = 1; j < kAvx512Acc; ++j) s = _mm512_add_ps(s, acc[j]);
  alignas(64) float out[16];
  _mm512_store_ps(out, s);  // (not _mm512_reduce_add_ps: GCC 12's header warns about it)
  float r = 0;
  for (float v : out) r += v;
  return r;
}

__attribute__((target("avx2,fma"))) float kernel_avx2(int64_t iters, float seed) {
  __m256 acc[kAvx2Acc];
  for (int j = 0; j < kAvx2Acc; ++j) acc[j] = _mm256_set1_ps(seed + 0.01f * j);
  const __m256 b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-6f);
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 12
    for (int j = 0; j < kAvx2Acc; ++j) acc[j] = _mm256_fmadd_ps(acc[j], b, c);
  }
  __m256 s = acc[0];
  for (int j = 1; j < kAvx2Acc; ++j) s = _mm256_add_ps(s, acc[j]);
  alignas(32) float out[8];
  _mm256_store_ps(out, s);
  float r = 0;
  for (float v : out) r += v;
  return r;
}
#endif

constexpr int kPortableAcc = 32;

// Plain C++: the compiler vectorizes it with whatever the baseline ISA offers (SSE2 on x86-64);
// a multiply and an add count as 2 FLOPs whether or not they are contracted into an FMA.
float kernel_portable(int64_t iters, float seed) {
  float acc[kPortableAcc];
  for (int j = 0; j < kPortableAcc; ++j) acc[j] = seed + 0.01f * j;
  const float b = 0.999999f, c = 1e-6f;
  for (int64_t i = 0; i < iters; ++i)
    for (int j = 0; j < kPortableAcc; ++j) acc[j] = acc[j] * b + c;
  float r = 0;
  for (float v : acc) r += v;
  return r;
}

FmaKernel resolve(FmaKernel k) {
  if (k != FmaKernel::best) return k;
  if (fma_kernel_available(FmaKernel::avx512)) return FmaKernel::avx512;
  if (fma_kernel_available(FmaKernel::avx2)) return FmaKernel::avx2;
  return FmaKernel::portable;
}

}  // namespace

bool fma_kernel_available(FmaKernel kernel) {
  switch (kernel) {
    case FmaKernel::best:
    case FmaKernel::portable:
      return true;
#ifdef FG_PERF_X86
    case FmaKernel::avx512:
      return __builtin_cpu_supports("avx512f");
    case FmaKernel::avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    default:
      return false;
#endif
  }
  return false;
}

PeakResult measure_fma_peak(int threads, double seconds, FmaKernel requested) {
  if (threads < 1)
    throw Error(fmt::format("the FMA peak needs at least 1 thread, got {}", threads));
  if (!fma_kernel_available(requested))
    throw Error("this CPU cannot run the requested FMA kernel")
        .hint("use FmaKernel::best to pick the widest available one");
  const FmaKernel k = resolve(requested);
  PeakResult result;
  result.threads = threads;
  double flops_per_iter = 0;
  float (*fn)(int64_t, float) = kernel_portable;
  result.kernel = "portable";
  flops_per_iter = 2.0 * kPortableAcc;
#ifdef FG_PERF_X86
  if (k == FmaKernel::avx512) {
    fn = kernel_avx512;
    result.kernel = "avx512f";
    flops_per_iter = 2.0 * 16 * kAvx512Acc;
  } else if (k == FmaKernel::avx2) {
    fn = kernel_avx2;
    result.kernel = "avx2_fma";
    flops_per_iter = 2.0 * 8 * kAvx2Acc;
  }
#endif
  using clock = std::chrono::steady_clock;
  const auto begin = clock::now();
  volatile float sink = 0;
  // Calibrate on one thread: how many iterations take about 20 ms.
  int64_t iters = 1 << 14;
  for (;;) {
    auto t0 = clock::now();
    sink = sink + fn(iters, 1.0f);
    double dt = std::chrono::duration<double>(clock::now() - t0).count();
    if (dt > 0.005 || iters > (int64_t(1) << 40)) {
      iters = std::max<int64_t>(1, static_cast<int64_t>(iters * 0.02 / std::max(dt, 1e-9)));
      break;
    }
    iters *= 4;
  }
  const int reps = std::max(3, static_cast<int>(seconds / 0.02 + 0.5));
  for (int r = 0; r < reps; ++r) {
    float partial = 0;
    auto t0 = clock::now();
#pragma omp parallel num_threads(threads) reduction(+ : partial)
    partial += fn(iters, 1.0f + 0.001f * omp_get_thread_num());
    double dt = std::chrono::duration<double>(clock::now() - t0).count();
    sink = sink + partial;
    double gflops = flops_per_iter * static_cast<double>(iters) * threads / dt / 1e9;
    result.gflops = std::max(result.gflops, gflops);
    ++result.repetitions;
  }
  result.seconds = std::chrono::duration<double>(clock::now() - begin).count();
  return result;
}

}  // namespace fg::perf
