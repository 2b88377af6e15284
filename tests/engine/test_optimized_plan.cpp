// The optimized plan (views instead of copies, Winograd convolutions, blocked layouts kept
// along convolution / pooling chains) must give the numbers of the plain one-kernel-per-node
// plan.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <fstream>
#include <sstream>

#include "engine/model.hpp"
#include "engine/plan.hpp"
#include "framework/compiler.hpp"
#include "framework/yaml_loader.hpp"
#include "layers/registry.hpp"
#include "tests/test_util.hpp"

TEST_CASE("optimized and unfused plans agree on the reference graph, node by node") {
  std::ifstream in(fg::test::source_path("graphs/multimodal_fusion.yaml"));
  std::stringstream ss;
  ss << in.rdbuf();
  std::string yaml = ss.str();
  const std::string from = "image: {shape: [224, 224, 3]}";
  yaml.replace(yaml.find(from), from.size(), "image: {shape: [45, 45, 3]}");
  auto graph = std::make_shared<fg::CompiledGraph>(
      fg::compile_graph(fg::load_graph_string(yaml, "multimodal_fusion.yaml"), fg::builtin_ops()));
  fg::WeightStore weights = fg::WeightStore::initialize(*graph, 3);
  fg::ModelOptions fast, plain;
  plain.optimize = false;
  fg::Model optimized(graph, weights, fast), unfused(graph, weights, plain);
  for (int64_t batch : {1, 3}) {
    CAPTURE(batch);
    std::map<std::string, fg::Tensor> inputs = {
        {"text", fg::test::random_ints({batch, 17}, 1, 1, 999)},
        {"image", fg::test::random_tensor({batch, 45, 45, 3}, 2, 0.f, 1.f)},
        {"audio", fg::test::random_tensor({batch, 1000, 1}, 3, -1.f, 1.f)}};
    std::map<std::string, fg::Tensor> a, b;
    fg::RunOptions ra, rb;
    ra.intermediates = &a;
    rb.intermediates = &b;
    auto out_a = optimized.run(inputs, ra);
    auto out_b = unfused.run(inputs, rb);
    CHECK(a.size() == b.size());
    for (const auto& [name, t] : b) {
      CAPTURE(name);
      REQUIRE(a.count(name));
      fg::test::check_shape(a[name], t.shape());
      fg::test::check_close(a[name], fg::test::to_doubles(t), 1e-5, 1e-6);
    }
    fg::test::check_close(out_a["classifier"], fg::test::to_doubles(out_b["classifier"]), 1e-5,
                          1e-7);
  }
  // the optimized plan really is different: flatten is a view there, a copy in the other
  auto p_fast = optimized.plan_for({{1, 17}, {1, 45, 45, 3}, {1, 1000, 1}});
  auto p_plain = unfused.plan_for({{1, 17}, {1, 45, 45, 3}, {1, 1000, 1}});
  CHECK(p_fast->arena_problem() == "");
  CHECK(p_plain->arena_problem() == "");
  CHECK(fg::test::step_impl(*p_fast, "image_flatten") == "view");
  CHECK(fg::test::step_impl(*p_plain, "image_flatten") != "view");
  // Layouts: no conversion back to plain inside the image chain conv -> pool -> conv -> pool;
  // only where flatten (which needs plain) reads it.
  for (const char* node : {"image_conv2", "image_pool2", "image_conv3"})
    CHECK(fg::test::step_impl(*p_fast, std::string(node) + "/to_plain").rfind("no step", 0) == 0);
  // Reuse still works: the optimized arena is at most the unfused one plus the largest
  // primitive scratchpad (Winograd's is large).
  CHECK(p_fast->arena_bytes() <= p_plain->arena_bytes() + p_fast->scratchpad_bytes());
}

TEST_CASE("global pooling reads a conv chain's blocked layout; optimized and unfused agree") {
  const char* yaml = R"(name: gp
inputs:
  x: {shape: [11, 13, 16]}
  s: {shape: [37, 16]}
nodes:
  - {name: a, op: conv2d, input: x, filters: 32, kernel_size: 3, activation: relu}
  - {name: ga, op: global_average_pooling2d, input: a}
  - {name: b, op: conv2d, input: x, filters: 20, kernel_size: 3}
  - {name: gb, op: global_max_pooling2d, input: b}
  - {name: c, op: conv1d, input: s, filters: 16, kernel_size: 3}
  - {name: pc, op: max_pooling1d, input: c}
  - {name: gc, op: global_average_pooling1d, input: pc, keepdims: true}
  - {name: out, op: concatenate, inputs: [ga, gb], axis: -1}
outputs: [out, gc]
)";
  auto graph = fg::test::compile_yaml(yaml, "gp.yaml");
  fg::WeightStore weights = fg::WeightStore::initialize(*graph, 11);
  fg::ModelOptions plain;
  plain.optimize = false;
  fg::Model optimized(graph, weights), unfused(graph, weights, plain);
  for (int64_t batch : {1, 2}) {
    CAPTURE(batch);
    std::map<std::string, fg::Tensor> inputs{
        {"x", fg::test::random_tensor({batch, 11, 13, 16}, 21)},
        {"s", fg::test::random_tensor({batch, 37, 16}, 22)}};
    auto got = optimized.run(inputs);
    auto want = unfused.run(inputs);
    for (const char* name : {"out", "gc"}) {
      CAPTURE(name);
      fg::test::check_shape(got.at(name), want.at(name).shape());
      fg::test::check_close(got.at(name), fg::test::to_doubles(want.at(name)), 1e-4, 1e-5);
    }
  }
  // 32 channels fill whole blocks: no conversion to plain between the conv and its pooling.
  auto p = optimized.plan_for({{1, 11, 13, 16}, {1, 37, 16}});
  CHECK(p->arena_problem() == "");
  CHECK(fg::test::step_impl(*p, "a/to_plain").rfind("no step", 0) == 0);
  CHECK(fg::test::step_impl(*p, "c/to_plain").rfind("no step", 0) == 0);
}
