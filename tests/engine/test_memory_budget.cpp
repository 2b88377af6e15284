// The memory budget (engine/memory_budget.hpp): the estimate is checked against sizes computed
// by hand, and plans beyond the budget are refused before they are built, naming the largest
// consumer (issue 14: "internal error: std::bad_alloc" with nothing named).
#include <doctest/doctest.h>

#include "engine/memory_budget.hpp"
#include "engine/model.hpp"
#include "framework/yaml_loader.hpp"
#include "layers/registry.hpp"
#include "tests/test_util.hpp"

namespace {

// x (None, 13) -> dense 7 -> activation: per sample 13 + 7 + 7 floats, weights 13 * 7 + 7.
const char* kGraph =
    "inputs:\n  x: {shape: [13]}\nnodes:\n"
    "  - {name: d, op: dense, input: x, units: 7}\n"
    "  - {name: a, op: activation, input: d, activation: relu}\noutputs: [a]\n";

}  // namespace

TEST_CASE("the plan memory estimate counts weights and every activation tensor") {
  auto g = fg::test::compile_yaml(kGraph);
  const fg::WeightStore w = fg::WeightStore::initialize(*g, 0);
  const auto types = g->bind({{127, 13}});
  const fg::MemoryEstimate e = fg::estimate_plan_memory(*g, types, w);
  CHECK(e.weight_bytes == (13 * 7 + 7) * 4);
  CHECK(e.activation_bytes == 127 * (13 + 7 + 7) * 4);
  CHECK(e.largest.kind == "input");  // 127 x 13 floats
  CHECK(e.largest.bytes == 127 * 13 * 4);
}

TEST_CASE("a plan beyond max_memory is refused, naming the largest consumer and the bytes") {
  auto g = fg::test::compile_yaml(kGraph);
  const fg::WeightStore w = fg::WeightStore::initialize(*g, 0);
  const int64_t need = (13 * 7 + 7) * 4 + 127 * (13 + 7 + 7) * 4;
  CHECK_NOTHROW(fg::check_memory_budget(*g, {{127, 13}}, w, static_cast<uint64_t>(need)));
  try {
    fg::check_memory_budget(*g, {{127, 13}}, w, static_cast<uint64_t>(need - 1));
    FAIL("no error");
  } catch (const fg::Error& e) {
    const std::string what = e.what();
    CAPTURE(what);
    CHECK(what.find(std::to_string(need) + " bytes") != std::string::npos);
    CHECK(what.find("input 'x' with 6604 bytes") != std::string::npos);
    CHECK(what.find("(max_memory)") != std::string::npos);
  }
}

TEST_CASE("Model refuses to plan beyond ModelOptions::max_memory, and plans within it") {
  auto g = fg::test::compile_yaml(kGraph);
  fg::ModelOptions o;
  o.max_memory = 4096;
  fg::Model model(g, fg::WeightStore::initialize(*g, 0), o);
  CHECK_NOTHROW(model.plan_for({{1, 13}}));
  CHECK_THROWS_WITH_AS(model.plan_for({{1000, 13}}), doctest::Contains("max_memory"), fg::Error);
  CHECK(model.cached_plans() == 1);
}

TEST_CASE("the reference graph at --dim audio=100000000 or batch 10000 exceeds this machine") {
  auto def = fg::load_graph_file(fg::test::source_path("graphs/multimodal_fusion.yaml"));
  const fg::CompiledGraph g = fg::compile_graph(def, fg::builtin_ops());
  REQUIRE(fg::physical_memory_bytes() > 0);
  const fg::WeightStore none;  // the activations alone exceed the memory
  try {
    fg::check_memory_budget(
        g, g.concrete_input_shapes(1, {{"text", {100}}, {"audio", {100000000}}}), none, 0);
    FAIL("no error");
  } catch (const fg::Error& e) {
    CAPTURE(e.what());
    CHECK(e.node_name().rfind("audio", 0) == 0);
    CHECK(std::string(e.what()).find("physical memory") != std::string::npos);
  }
  CHECK_THROWS_AS(
      fg::check_memory_budget(
          g, g.concrete_input_shapes(10000, {{"text", {100}}, {"audio", {16000}}}), none, 0),
      fg::Error);
}
