// The runtime as a library user sees it: input checks, plan caching by shape, thread safety,
// the activation arena, and that oneDNN primitives (not hand-written loops) run the graph.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <set>
#include <thread>

#include "engine/model.hpp"
#include "engine/plan.hpp"
#include "framework/compiler.hpp"
#include "framework/yaml_loader.hpp"
#include "layers/registry.hpp"
#include "tests/test_util.hpp"

namespace {

const char* kSmallGraph = R"(
name: small
inputs:
  tokens: {shape: [null], dtype: int32}
  signal: {shape: [null, 2]}
nodes:
  - {name: emb, op: embedding, input: tokens, input_dim: 50, output_dim: 8}
  - {name: rnn, op: lstm, input: emb, units: 6}
  - {name: conv, op: conv1d, input: signal, filters: 5, kernel_size: 3, activation: relu}
  - {name: pool, op: max_pooling1d, input: conv, pool_size: 2}
  - {name: gap, op: global_average_pooling1d, input: pool}
  - {name: cat, op: concatenate, inputs: [rnn, gap]}
  - {name: head, op: dense, input: cat, units: 4, activation: softmax}
outputs: [head]
)";

std::shared_ptr<fg::CompiledGraph> compile(const std::string& yaml) {
  return std::make_shared<fg::CompiledGraph>(
      fg::compile_graph(fg::load_graph_string(yaml, "small.yaml"), fg::builtin_ops()));
}

std::map<std::string, fg::Tensor> inputs(int64_t batch, int64_t steps, int64_t samples,
                                         uint64_t seed) {
  return {{"tokens", fg::test::random_ints({batch, steps}, seed, 1, 49)},
          {"signal", fg::test::random_tensor({batch, samples, 2}, seed + 1)}};
}

}  // namespace

TEST_CASE("run checks its inputs and names what is wrong") {
  auto g = compile(kSmallGraph);
  fg::Model model(g, fg::WeightStore::initialize(*g, 1));
  auto in = inputs(1, 5, 20, 1);
  auto missing = in;
  missing.erase("signal");
  CHECK_THROWS_WITH_AS(model.run(missing), doctest::Contains("input 'signal' is missing"),
                       fg::Error);
  auto unknown = in;
  unknown["signl"] = in["signal"];
  CHECK_THROWS_WITH_AS(model.run(unknown), doctest::Contains("did you mean 'signal'?"), fg::Error);
  auto wrong_dtype = in;
  wrong_dtype["tokens"] = fg::test::random_tensor({1, 5}, 3);
  CHECK_THROWS_WITH_AS(model.run(wrong_dtype),
                       doctest::Contains("input 'tokens' must be int32, got float32"), fg::Error);
  auto wrong_shape = in;
  wrong_shape["signal"] = fg::test::random_tensor({1, 20, 3}, 3);
  CHECK_THROWS_WITH_AS(
      model.run(wrong_shape),
      doctest::Contains("expects shape (None, None, 2) (batch first), got (1, 20, 3)"), fg::Error);
  auto too_short = in;
  too_short["signal"] = fg::test::random_tensor({1, 3, 2}, 3);  // conv 3 -> 1, pool 2 -> 0
  CHECK_THROWS_AS(model.run(too_short), fg::Error);
}

TEST_CASE("weights are checked against the graph before anything runs, every problem at once") {
  auto g = compile(kSmallGraph);
  fg::WeightStore w = fg::WeightStore::initialize(*g, 1);
  fg::WeightStore broken;
  for (const auto& [key, t] : w.tensors())
    if (key != "rnn.bias" && key != "head.kernel") broken.set(key, t);
  broken.set("head.kernal", fg::test::random_tensor({11, 4}, 1));
  try {
    fg::Model model(g, broken);
    FAIL("a model was built with broken weights");
  } catch (const fg::Error& e) {
    std::string m = e.what();
    CAPTURE(m);
    CHECK(m.find("rnn.bias") != std::string::npos);
    CHECK(m.find("head.kernel") != std::string::npos);
    CHECK(m.find("head.kernal") != std::string::npos);
  }
}

TEST_CASE("plans are cached per input-shape signature") {
  auto g = compile(kSmallGraph);
  fg::Model model(g, fg::WeightStore::initialize(*g, 1));
  auto a1 = model.run(inputs(2, 7, 30, 1));
  CHECK(model.cached_plans() == 1);
  model.run(inputs(2, 9, 30, 2));
  CHECK(model.cached_plans() == 2);
  model.run(inputs(3, 7, 30, 3));
  CHECK(model.cached_plans() == 3);
  auto a2 = model.run(inputs(2, 7, 30, 1));
  CHECK(model.cached_plans() == 3);  // seen before: nothing new is built
  fg::test::check_close(a2["head"], fg::test::to_doubles(a1["head"]), 0, 0);
  auto p1 = model.plan_for({{2, 7}, {2, 30, 2}});
  CHECK(p1->arena_problem() == "");
  auto p2 = model.plan_for({{2, 7}, {2, 30, 2}});
  CHECK(p1.get() == p2.get());
}

TEST_CASE("the arena reuses buffers whose lifetimes do not overlap") {
  auto g = compile(R"(
name: chain
inputs: {x: {shape: [64]}}
nodes:
  - {name: a, op: dense, input: x, units: 256}
  - {name: b, op: dense, input: a, units: 256}
  - {name: c, op: dense, input: b, units: 256}
  - {name: d, op: dense, input: c, units: 256}
  - {name: e, op: dense, input: d, units: 8}
outputs: [e]
)");
  fg::Model model(g, fg::WeightStore::initialize(*g, 1));
  auto plan = model.plan_for({{16, 64}});
  CHECK(plan->arena_problem() == "");
  // five outputs of 16 x 256 floats at most would be 4 x 16 KiB + 512 B without reuse; two
  // live at a time with reuse
  CHECK(plan->unplanned_bytes() >= 4 * 16 * 256 * 4);
  CHECK(plan->arena_bytes() <= 2 * 16 * 256 * 4 + plan->scratchpad_bytes() + 1024);
  CHECK(plan->arena_bytes() < plan->unplanned_bytes());
}

TEST_CASE("one model runs from several threads at once with the single-threaded results") {
  auto g = compile(kSmallGraph);
  fg::Model model(g, fg::WeightStore::initialize(*g, 5));
  std::vector<std::map<std::string, fg::Tensor>> ins;
  std::vector<std::vector<double>> want;
  for (int i = 0; i < 4; ++i) {
    ins.push_back(inputs(2, 5 + i % 2, 25, 10 + i));
    want.push_back(fg::test::to_doubles(model.run(ins.back())["head"]));
  }
  std::vector<std::vector<double>> got(4 * 6);
  std::vector<std::thread> threads;
  std::atomic<int> errors{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t]() {
      try {
        for (int r = 0; r < 6; ++r)
          got[t * 6 + r] = fg::test::to_doubles(model.run(ins[(t + r) % 4])["head"]);
      } catch (...) {
        ++errors;
      }
    });
  for (auto& th : threads) th.join();
  CHECK(errors == 0);
  for (int t = 0; t < 4; ++t)
    for (int r = 0; r < 6; ++r) {
      double worst = 0;
      for (size_t k = 0; k < want[(t + r) % 4].size() && k < got[t * 6 + r].size(); ++k)
        worst = std::max(worst, std::fabs(got[t * 6 + r][k] - want[(t + r) % 4][k]));
      CAPTURE(worst);
      CHECK(got[t * 6 + r] == want[(t + r) % 4]);
    }
}

TEST_CASE("conv, normalization and matmul primitives also run concurrently with exact results") {
  auto g = compile(R"(
name: mixed
inputs:
  image: {shape: [19, 17, 3]}
  seq: {shape: [11, 6]}
nodes:
  - {name: conv, op: conv2d, input: image, filters: 8, kernel_size: 3, padding: same, activation: relu}
  - {name: bn, op: batch_normalization, input: conv}
  - {name: pool, op: global_average_pooling2d, input: bn}
  - {name: proj, op: dense, input: seq, units: 8}
  - {name: ln, op: layer_normalization, input: proj}
  - {name: gap, op: global_max_pooling1d, input: ln}
  - {name: sum, op: add, inputs: [pool, gap]}
  - {name: head, op: dense, input: sum, units: 3, activation: softmax}
outputs: [head]
)");
  fg::Model model(g, fg::WeightStore::initialize(*g, 9));
  std::vector<std::map<std::string, fg::Tensor>> ins;
  std::vector<std::vector<double>> want;
  for (int i = 0; i < 3; ++i) {
    ins.push_back({{"image", fg::test::random_tensor({2, 19, 17, 3}, 40 + i)},
                   {"seq", fg::test::random_tensor({2, 11, 6}, 50 + i)}});
    want.push_back(fg::test::to_doubles(model.run(ins.back())["head"]));
  }
  std::vector<std::vector<double>> got(3 * 8);
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t)
    threads.emplace_back([&, t]() {
      for (int r = 0; r < 8; ++r)
        got[t * 8 + r] = fg::test::to_doubles(model.run(ins[(t + r) % 3])["head"]);
    });
  for (auto& th : threads) th.join();
  for (int t = 0; t < 3; ++t)
    for (int r = 0; r < 8; ++r) CHECK(got[t * 8 + r] == want[(t + r) % 3]);
}

TEST_CASE("the reference graph runs on oneDNN primitives (ONEDNN_VERBOSE)") {
  std::string cmd = std::string("ONEDNN_VERBOSE=1 ") + fg::test::graph_runner_path() + " run " +
                    fg::test::source_path("graphs/multimodal_fusion.yaml") +
                    " --dim text=20 --dim audio=2000 --output-dir /tmp/fg_verbose_out_" +
                    std::to_string(::getpid()) + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::set<std::string> kinds;
  std::array<char, 8192> line;
  while (fgets(line.data(), line.size(), pipe)) {
    std::string s(line.data());
    const std::string prefix = "onednn_verbose,exec,cpu,";
    if (s.rfind(prefix, 0) != 0) continue;
    kinds.insert(s.substr(prefix.size(), s.find(',', prefix.size()) - prefix.size()));
  }
  int status = pclose(pipe);
  CHECK(WEXITSTATUS(status) == 0);
  std::string seen;
  for (const auto& k : kinds) seen += k + " ";
  CAPTURE(seen);
  CHECK(kinds.count("convolution"));
  CHECK((kinds.count("pooling") || kinds.count("pooling_v2")));
  CHECK((kinds.count("inner_product") || kinds.count("matmul")));
  // text_lstm at batch 1 takes the projected path (layers/recurrent.hpp): a matmul for the input
  // projection, then a C++ recurrence, no rnn primitive (lstm_forward runs for large batch x
  // units).
  CHECK(kinds.count("matmul"));
  CHECK((kinds.count("softmax") || kinds.count("softmax_v2")));
  CHECK(kinds.count("concat"));
}
