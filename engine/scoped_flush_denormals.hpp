// Denormal floats flushed to zero for the scope of a training pass, as TensorFlow (and so Keras)
// runs its kernels: once a loss nears zero, gradients and Adam's moments fall into the denormal
// range, where every x86 multiply takes a microcode assist (measured here: the reference graph's
// epoch went from 22 s to 96-154 s once its loss reached 1e-11).
#pragma once

#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#define FG_HAS_MXCSR 1
#endif

#include <omp.h>

#include <vector>

namespace fg {

class ScopedFlushDenormals {
 public:
  // MXCSR's flush-to-zero and denormals-are-zero bits on the calling thread and on the OpenMP
  // threads of a `threads`-wide team (those the passes' parallel regions and oneDNN use);
  // each thread's previous state comes back at the end of the scope.
  explicit ScopedFlushDenormals(int threads) : threads_(threads) {
#ifdef FG_HAS_MXCSR
    saved_.assign(static_cast<size_t>(threads), 0);
#pragma omp parallel num_threads(threads_)
    {
      const int t = omp_get_thread_num();
      if (t < threads_) saved_[static_cast<size_t>(t)] = _mm_getcsr();
      _mm_setcsr(_mm_getcsr() | kFlushBits);
    }
#endif
  }
  ~ScopedFlushDenormals(){
#ifdef FG_HAS_MXCSR
#pragma omp parallel num_threads(threads_)
      {const int t = omp_get_thread_num();
  if (t < threads_) _mm_setcsr(saved_[static_cast<size_t>(t)]);
}
#endif
}  // namespace fg
ScopedFlushDenormals(const ScopedFlushDenormals&) = delete;
ScopedFlushDenormals& operator=(const ScopedFlushDenormals&) = delete;

static constexpr unsigned kFlushBits = 0x8040;  // FTZ (bit 15) | DAZ (bit 6)

private:
int threads_;
std::vector<unsigned> saved_;
}
;

}  // namespace fg
