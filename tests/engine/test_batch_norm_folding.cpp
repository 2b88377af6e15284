// Batch normalization folded into the conv before it and activation nodes fused as its post-op
// (optimized plans): same numbers as the unfused plan, only where that is exact (no activation
// between conv and normalization, the conv's output feeds nothing else), with and without a conv
// bias, on the Winograd and direct paths.
#include <doctest/doctest.h>

#include "engine/model.hpp"
#include "engine/plan.hpp"
#include "tests/test_util.hpp"

namespace {

const char* kGraph = R"(name: bn_folding
inputs:
  image: {shape: [13, 17, 16]}
  signal: {shape: [29, 3]}
nodes:
  - {name: c1, op: conv2d, input: image, filters: 32, kernel_size: 3, use_bias: false}
  - {name: bn1, op: batch_normalization, input: c1}
  - {name: act1, op: activation, input: bn1, activation: relu}
  - {name: p1, op: max_pooling2d, input: act1}
  - {name: c2, op: conv2d, input: p1, filters: 7, kernel_size: 3, padding: same, activation: relu}
  - {name: bn2, op: batch_normalization, input: c2}
  - {name: g1, op: global_average_pooling2d, input: bn2}
  - {name: c3, op: conv1d, input: signal, filters: 13, kernel_size: 3}
  - {name: bn3, op: batch_normalization, input: c3, center: false, epsilon: 0.01}
  - {name: act3, op: activation, input: bn3, activation: tanh}
  - {name: g3, op: global_max_pooling1d, input: act3}
  - {name: c5, op: conv1d, input: signal, filters: 4, kernel_size: 3}
  - {name: act5, op: activation, input: c5, activation: softmax}
  - {name: g6, op: global_max_pooling1d, input: act5}
  - {name: c6, op: conv1d, input: signal, filters: 4, kernel_size: 3}
  - {name: act6, op: activation, input: c6, activation: gelu}
  - {name: g7, op: global_max_pooling1d, input: act6}
  - {name: c4, op: conv1d, input: signal, filters: 5, kernel_size: 2}
  - {name: bn4, op: batch_normalization, input: c4}
  - {name: g4, op: global_max_pooling1d, input: c4}
  - {name: g5, op: global_max_pooling1d, input: bn4}
  - {name: out, op: concatenate, inputs: [g1, g3, g4, g5, g6, g7]}
outputs: [out]
)";

}  // namespace

TEST_CASE("batch norm and activation nodes fold into the conv before them, same numbers") {
  auto graph = fg::test::compile_yaml(kGraph, "bn.yaml");
  fg::WeightStore weights = fg::WeightStore::initialize(*graph, 5);
  // Statistics far from the identity, so a wrong fold shows.
  uint64_t seed = 50;
  for (const char* bn : {"bn1", "bn2", "bn3", "bn4"}) {
    const std::string name(bn);
    const fg::Dims c = weights.find(name + ".moving_mean")->shape();
    weights.set(name + ".moving_mean", fg::test::random_tensor(c, ++seed, -2.f, 2.f));
    weights.set(name + ".moving_variance", fg::test::random_tensor(c, ++seed, 0.2f, 3.f));
    if (weights.find(name + ".gamma"))
      weights.set(name + ".gamma", fg::test::random_tensor(c, ++seed, -1.5f, 1.5f));
    if (weights.find(name + ".beta"))
      weights.set(name + ".beta", fg::test::random_tensor(c, ++seed, -1.f, 1.f));
  }
  weights.set("c3.bias", fg::test::random_tensor({13}, ++seed));
  fg::ModelOptions unfused_options;
  unfused_options.optimize = false;
  fg::Model optimized(graph, weights), unfused(graph, weights, unfused_options);

  for (int64_t batch : {1, 3}) {
    CAPTURE(batch);
    std::map<std::string, fg::Tensor> inputs{
        {"image", fg::test::random_tensor({batch, 13, 17, 16}, 7)},
        {"signal", fg::test::random_tensor({batch, 29, 3}, 8)}};
    std::map<std::string, fg::Tensor> a, b;
    fg::RunOptions ra, rb;
    ra.intermediates = &a;
    rb.intermediates = &b;
    auto out_a = optimized.run(inputs, ra);
    auto out_b = unfused.run(inputs, rb);
    fg::test::check_close(out_a.at("out"), fg::test::to_doubles(out_b.at("out")), 1e-4, 1e-5);
    for (const auto& [name, t] : a) {
      CAPTURE(name);
      REQUIRE(b.count(name));
      fg::test::check_close(t, fg::test::to_doubles(b.at(name)), 1e-4, 1e-5);
    }
    // A folded conv's own output no longer exists (it holds the normalized values), nor does a
    // normalization's when an activation is fused after it.
    CHECK(a.count("c1") == 0);
    CHECK(a.count("c3") == 0);
    CHECK(a.count("bn1") == 0);
    CHECK(a.count("act1") == 1);
    CHECK(b.count("c1") == 1);
    CHECK(b.count("bn1") == 1);
  }
  auto plan = optimized.plan_for({{1, 13, 17, 16}, {1, 29, 3}});
  CHECK(plan->arena_problem() == "");
  CHECK(fg::test::step_impl(*plan, "bn1") == "folded into c1");
  CHECK(fg::test::step_impl(*plan, "bn3") == "folded into c3");
  CHECK(fg::test::step_impl(*plan, "act1") == "fused into c1");
  CHECK(fg::test::step_impl(*plan, "act3") == "fused into c3");
  CHECK(fg::test::step_impl(*plan, "act6") == "fused into c6");
  CHECK(fg::test::step_impl(*plan, "act5").rfind("fused", 0) != 0);  // softmax: not a post-op
  // relu between conv and normalization, or a conv output read twice: not folded.
  CHECK(fg::test::step_impl(*plan, "bn2").rfind("folded", 0) != 0);
  CHECK(fg::test::step_impl(*plan, "bn4").rfind("folded", 0) != 0);
  auto plain = unfused.plan_for({{1, 13, 17, 16}, {1, 29, 3}});
  CHECK(plain->arena_problem() == "");
  CHECK(fg::test::step_impl(*plain, "bn1").rfind("folded", 0) != 0);
}
