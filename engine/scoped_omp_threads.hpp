// The thread count of a plan (inference or training), for the scope of a build or a run.
#pragma once

#include <omp.h>

namespace fg {

// oneDNN's primitives use the
// calling thread's OpenMP thread count (omp_get_max_threads), the plan's C++ loops use
// ctx.threads (num_threads clauses); this sets the former and restores the caller's value on
// exit, so running a plan never changes the caller's OpenMP state.
class ScopedOmpThreads {
 public:
  explicit ScopedOmpThreads(int threads) : saved_(omp_get_max_threads()) {
    omp_set_num_threads(threads);
  }
  ~ScopedOmpThreads() { omp_set_num_threads(saved_); }
  ScopedOmpThreads(const ScopedOmpThreads&) = delete;
  ScopedOmpThreads& operator=(const ScopedOmpThreads&) = delete;

 private:
  int saved_;
};

}  // namespace fg
