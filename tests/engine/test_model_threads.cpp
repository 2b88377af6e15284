// Threads and the plan cache: a run never changes the caller's OpenMP state, cached shapes run
// while another shape is being planned, a failed build is retried, and the cache stays bounded.
#include <doctest/doctest.h>
#include <omp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "engine/model.hpp"
#include "engine/plan.hpp"
#include "tests/test_util.hpp"

namespace {

const char* kGraph = R"(
name: threads
inputs:
  x: {shape: [null, 3]}
nodes:
  - {name: conv, op: conv1d, input: x, filters: 8, kernel_size: 3, activation: relu}
  - {name: soft, op: activation, input: conv, activation: softsign}
  - {name: gap, op: global_average_pooling1d, input: soft}
  - {name: head, op: dense, input: gap, units: 4, activation: softmax}
outputs: [head]
)";

std::map<std::string, fg::Tensor> input(int64_t batch, int64_t steps, uint64_t seed = 1) {
  return {{"x", fg::test::random_tensor({batch, steps, 3}, seed)}};
}

// Sets the calling thread's OpenMP thread count for a test and restores it afterwards.
struct CallerThreads {
  int saved = omp_get_max_threads();
  explicit CallerThreads(int n) { omp_set_num_threads(n); }
  ~CallerThreads() { omp_set_num_threads(saved); }
};

}  // namespace

TEST_CASE("building and running a plan leave the caller's OpenMP thread count unchanged") {
  auto graph = fg::test::compile_yaml(kGraph);
  const fg::WeightStore weights = fg::WeightStore::initialize(*graph, 3);
  for (int caller : {1, 3, 5})
    for (int threads : {1, 2}) {
      CAPTURE(caller);
      CAPTURE(threads);
      const CallerThreads scoped(caller);
      fg::ModelOptions options;
      options.threads = threads;
      fg::Model model(graph, weights, options);
      model.plan_for({{2, 11, 3}});  // a build
      CHECK(omp_get_max_threads() == caller);
      model.run(input(2, 11));  // a run of a cached plan
      CHECK(omp_get_max_threads() == caller);
      model.run(input(3, 13));  // a build and a run
      CHECK(omp_get_max_threads() == caller);
    }
}
