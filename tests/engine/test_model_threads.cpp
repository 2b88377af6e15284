// Threads and the plan cache: a run never changes the caller's OpenMP state, cached shapes run
// while another shape is being planned, a failed build is retried, and the cache stays bounded.
#include <doctest/doctest.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
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
      CHECK(model.plan_for({{2, 11, 3}})->arena_problem() == "");  // a build
      CHECK(omp_get_max_threads() == caller);
      model.run(input(2, 11));  // a run of a cached plan
      CHECK(omp_get_max_threads() == caller);
      model.run(input(3, 13));  // a build and a run
      CHECK(omp_get_max_threads() == caller);
    }
}

TEST_CASE("runs of a cached shape proceed while another shape is being planned") {
  auto graph = fg::test::compile_yaml(kGraph);
  const std::vector<fg::Dims> slow{{1, 29, 3}};
  constexpr int kRuns = 5;
  std::mutex m;
  std::condition_variable cv;
  bool building = false;
  int cached_runs = 0;
  bool runs_done_during_build = false;
  fg::ModelOptions options;
  options.threads = 1;
  // The build of `slow` waits (in its own thread) until the test thread has finished kRuns runs
  // of a cached shape: with a build holding the cache's lock, those runs could not finish and
  // the wait would time out.
  options.on_plan_build = [&](const std::vector<fg::Dims>& shapes) {
    if (shapes != slow) return;
    std::unique_lock<std::mutex> lock(m);
    building = true;
    cv.notify_all();
    runs_done_during_build =
        cv.wait_for(lock, std::chrono::seconds(20), [&] { return cached_runs >= kRuns; });
  };
  fg::Model model(graph, fg::WeightStore::initialize(*graph, 5), options);
  const auto want = model.run(input(2, 11));  // now cached
  std::thread planner([&] { model.run(input(1, 29)); });
  {
    std::unique_lock<std::mutex> lock(m);
    cv.wait(lock, [&] { return building; });
  }
  for (int r = 0; r < kRuns; ++r) {
    const auto got = model.run(input(2, 11));
    fg::test::check_close(got.at("head"), fg::test::to_doubles(want.at("head")), 0, 0);
    std::lock_guard<std::mutex> lock(m);
    ++cached_runs;
    cv.notify_all();
  }
  planner.join();
  CHECK(runs_done_during_build);
  CHECK(model.cached_plans() == 2);
}

TEST_CASE("a failed plan build is not cached: the next call builds again and fails again") {
  auto graph = fg::test::compile_yaml(kGraph);
  int builds = 0;
  fg::ModelOptions options;
  options.on_plan_build = [&](const std::vector<fg::Dims>&) { ++builds; };
  fg::Model model(graph, fg::WeightStore::initialize(*graph, 5), options);
  model.run(input(1, 9));
  CHECK(builds == 1);
  // Two steps are too few for a kernel of 3: the build fails (in binding the shapes).
  for (int attempt = 1; attempt <= 2; ++attempt) {
    CAPTURE(attempt);
    CHECK_THROWS_AS(model.run(input(1, 2)), fg::Error);
    CHECK(builds == 1 + attempt);
    CHECK(model.cached_plans() == 1);
  }
  // A hook that throws fails the build the same way, and a later call succeeds.
  bool fail = true;
  options.on_plan_build = [&](const std::vector<fg::Dims>&) {
    if (fail) throw fg::Error("planned failure");
  };
  fg::Model flaky(graph, fg::WeightStore::initialize(*graph, 5), options);
  CHECK_THROWS_WITH_AS(flaky.run(input(1, 9)), doctest::Contains("planned failure"), fg::Error);
  CHECK(flaky.cached_plans() == 0);
  fail = false;
  CHECK(flaky.run(input(1, 9)).count("head") == 1);
  CHECK(flaky.cached_plans() == 1);
}

TEST_CASE("the plan cache keeps the least recently used plans out past its bounds") {
  auto graph = fg::test::compile_yaml(kGraph);
  const fg::WeightStore weights = fg::WeightStore::initialize(*graph, 5);
  std::vector<int64_t> built;  // steps of each shape built
  fg::ModelOptions options;
  options.threads = 1;
  options.on_plan_build = [&](const std::vector<fg::Dims>& shapes) {
    built.push_back(shapes[0][1]);
  };
  SUBCASE("by count") {
    options.max_cached_plans = 3;
    fg::Model model(graph, weights, options);
    for (int64_t steps = 5; steps < 25; ++steps) {
      model.run(input(1, steps));
      CHECK(model.cached_plans() <= 3);
    }
    CHECK(built.size() == 20);
    for (int64_t steps : {22, 23, 24}) model.run(input(1, steps));  // the newest three hit
    CHECK(built.size() == 20);
    model.run(input(1, 22));  // 22 is now the most recent; 23 the least
    model.run(input(1, 30));  // drops 23
    CHECK(built.size() == 21);
    model.run(input(1, 22));
    model.run(input(1, 24));
    CHECK(built.size() == 21);
    model.run(input(1, 23));
    CHECK(built.size() == 22);
    CHECK(built.back() == 23);
    CHECK(model.cached_plans() == 3);
  }
  SUBCASE("by bytes: the newest plan always stays") {
    options.max_cached_plan_bytes = 1;
    fg::Model model(graph, weights, options);
    for (int64_t steps = 5; steps < 10; ++steps) {
      model.run(input(1, steps));
      CHECK(model.cached_plans() == 1);
    }
    model.run(input(1, 9));
    CHECK(built.size() == 5);
  }
  SUBCASE("a cache of no plans is refused") {
    options.max_cached_plans = 0;
    CHECK_THROWS_AS(fg::Model(graph, weights, options), fg::Error);
  }
}

TEST_CASE(
    "threads asking for one new shape at once build it once; different shapes build at once") {
  auto graph = fg::test::compile_yaml(kGraph);
  const fg::WeightStore weights = fg::WeightStore::initialize(*graph, 7);
  std::atomic<int> builds{0};
  fg::ModelOptions options;
  options.threads = 1;
  options.on_plan_build = [&](const std::vector<fg::Dims>&) { ++builds; };
  fg::Model model(graph, weights, options);
  fg::ModelOptions serial_options;
  serial_options.threads = 1;
  fg::Model serial(graph, weights, serial_options);
  constexpr int kThreads = 4;
  std::vector<std::map<std::string, fg::Tensor>> got(kThreads);
  std::vector<std::thread> pool;
  for (int k = 0; k < kThreads; ++k)
    pool.emplace_back([&, k] { got[k] = model.run(input(2, 17, 3)); });
  for (auto& t : pool) t.join();
  CHECK(builds == 1);
  const auto want = serial.run(input(2, 17, 3));
  for (const auto& out : got)
    fg::test::check_close(out.at("head"), fg::test::to_doubles(want.at("head")), 0, 0);
  // Different new shapes, one per thread: each built once, each as a serial build gives.
  pool.clear();
  for (int k = 0; k < kThreads; ++k)
    pool.emplace_back([&, k] { got[k] = model.run(input(1, 20 + k, 4)); });
  for (auto& t : pool) t.join();
  CHECK(builds == 1 + kThreads);
  for (int k = 0; k < kThreads; ++k) {
    const auto one = serial.run(input(1, 20 + k, 4));
    fg::test::check_close(got[k].at("head"), fg::test::to_doubles(one.at("head")), 0, 0);
  }
}

namespace {

// Holds each run at its first step until `expected` runs are inside at once (or 20 s passed),
// so that that many execution states are in use together.
class Rendezvous final : public fg::StepObserver {
 public:
  explicit Rendezvous(int expected) : expected_(expected) {}
  void before_step(size_t step) override {
    if (step != 0) return;
    std::unique_lock<std::mutex> lock(m_);
    ++arrived_;
    cv_.notify_all();
    if (!cv_.wait_for(lock, std::chrono::seconds(20), [&] { return arrived_ >= expected_; }))
      timed_out_ = true;
  }
  void after_step(size_t) override {}
  bool timed_out() const { return timed_out_; }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  int expected_, arrived_ = 0;
  bool timed_out_ = false;
};

// Resident memory of this process in bytes (VmRSS), or 0 where /proc is missing.
int64_t resident_bytes() {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  int64_t kb = 0;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
  std::fclose(f);
  return kb * 1024;
}

}  // namespace

TEST_CASE("a plan keeps at most max_idle_states execution states after concurrent runs") {
  auto graph = fg::test::compile_yaml(kGraph);
  const fg::WeightStore weights = fg::WeightStore::initialize(*graph, 9);
  constexpr int kThreads = 6;
  for (size_t bound : {size_t{0}, size_t{2}, size_t{4}}) {
    CAPTURE(bound);
    fg::ModelOptions options;
    options.threads = 1;
    options.max_idle_states = bound;
    fg::Model model(graph, weights, options);
    const auto want = model.run(input(2, 11));
    const auto plan = model.plan_for({{2, 11, 3}});
    CHECK(plan->idle_states() == std::min<size_t>(bound, 1));
    Rendezvous together(kThreads);
    fg::RunOptions ro;
    ro.observer = &together;
    std::vector<std::map<std::string, fg::Tensor>> got(kThreads);
    std::vector<std::thread> pool;
    for (int k = 0; k < kThreads; ++k)
      pool.emplace_back([&, k] { got[k] = model.run(input(2, 11), ro); });
    for (auto& t : pool) t.join();
    CHECK_FALSE(together.timed_out());  // six states were in use at once
    CHECK(plan->idle_states() == bound);
    for (const auto& out : got)
      fg::test::check_close(out.at("head"), fg::test::to_doubles(want.at("head")), 0, 0);
    model.run(input(2, 11));  // a later run reuses an idle state (or makes one for bound 0)
    CHECK(plan->idle_states() == bound);
  }
}

TEST_CASE("200 new shapes stay within the cache bounds and bounded memory; cached shapes run") {
  auto graph = fg::test::compile_yaml(kGraph);
  // oneDNN's primitive cache (1024 primitives by default, each with its JIT code: about 46 MB
  // for this graph's 200 shapes) is held small here, so that what remains is what the plan
  // cache keeps.
  struct PrimitiveCache {
    int saved = dnnl::get_primitive_cache_capacity();
    PrimitiveCache() { dnnl::set_primitive_cache_capacity(64); }
    ~PrimitiveCache() { dnnl::set_primitive_cache_capacity(saved); }
  } small_primitive_cache;
  fg::ModelOptions options;  // the default bounds: 16 plans, 1 GiB of arenas, 4 idle states
  options.threads = 1;

  fg::Model model(graph, fg::WeightStore::initialize(*graph, 13), options);
  const auto want = model.run(input(2, 11));
  // One thread runs the cached shape over and over (checking its result bit for bit) while
  // this thread plans 200 new shapes.
  std::atomic<bool> done{false};
  std::atomic<int> cached_runs{0}, mismatches{0};
  std::thread runner([&] {
    while (!done) {
      const auto got = model.run(input(2, 11));
      const float* a = got.at("head").data<float>();
      const float* b = want.at("head").data<float>();
      if (!std::equal(a, a + got.at("head").size(), b)) ++mismatches;
      ++cached_runs;
    }
  });
  int64_t rss_after_warmup = 0;
  size_t most_plans = 0;
  for (int64_t k = 0; k < 200; ++k) {
    model.run(input(1, 20 + k, static_cast<uint64_t>(k)));
    most_plans = std::max(most_plans, model.cached_plans());
    if (k == 19) rss_after_warmup = resident_bytes();
  }
  done = true;
  runner.join();
  const int64_t growth = resident_bytes() - rss_after_warmup;
  CAPTURE(growth);
  CHECK(most_plans <= 16);
  CHECK(cached_runs > 0);
  CHECK(mismatches == 0);
  // 180 more shapes, each with its own plan, arena and primitives: dropped plans give their
  // memory back (about 4 MB of growth remains; with all 200 plans kept, 57 MB).
  CHECK(growth < 16 * 1024 * 1024);
  const auto plan = model.plan_for({{2, 11, 3}});
  CHECK(plan->idle_states() <= options.max_idle_states);
}

TEST_CASE("the cache's byte bound counts one arena per idle execution state of each plan") {
  auto graph = fg::test::compile_yaml(kGraph);
  const fg::WeightStore weights = fg::WeightStore::initialize(*graph, 9);
  size_t a_bytes = 0, b_bytes = 0;  // arenas of the shapes (3, 40, 3) and (1, 9, 3)
  {
    fg::ModelOptions one_thread;
    one_thread.threads = 1;  // as below: the arena depends on the thread count
    fg::Model sizes(graph, weights, one_thread);
    a_bytes = sizes.plan_for({{3, 40, 3}})->arena_bytes();
    b_bytes = sizes.plan_for({{1, 9, 3}})->arena_bytes();
  }
  REQUIRE(a_bytes > 0);
  for (int concurrent : {1, 3}) {
    CAPTURE(concurrent);
    fg::ModelOptions options;
    options.threads = 1;
    options.max_cached_plan_bytes = 2 * a_bytes + b_bytes;  // A once and B fit; A three times not
    fg::Model model(graph, weights, options);
    Rendezvous together(concurrent);
    fg::RunOptions ro;
    ro.observer = &together;
    std::vector<std::thread> pool;
    for (int k = 0; k < concurrent; ++k) pool.emplace_back([&] { model.run(input(3, 40), ro); });
    for (auto& t : pool) t.join();
    CHECK(model.plan_for({{3, 40, 3}})->idle_states() == static_cast<size_t>(concurrent));
    model.run(input(1, 9));  // a new plan: the bound is checked
    CHECK(model.cached_plans() == (concurrent == 1 ? 2 : 1));
  }
}
