#include <doctest/doctest.h>

#include "framework/compiler.hpp"
#include "framework/yaml_loader.hpp"
#include "layers/registry.hpp"
#include "tests/test_util.hpp"

using fg::Dims;

namespace {
fg::CompiledGraph compile(const std::string& yaml) {
  return fg::compile_graph(fg::load_graph_string(yaml, "t.yaml"), fg::builtin_ops());
}
std::vector<std::string> schedule(const fg::CompiledGraph& g) {
  std::vector<std::string> out;
  for (const auto& n : g.nodes()) out.push_back(n.def->name);
  return out;
}
}  // namespace

TEST_CASE("did you mean finds close names and refuses far ones") {
  CHECK(fg::closest_match("rellu", fg::activation_names()) == "relu");
  CHECK(fg::closest_match("Conv2D", {"conv1d", "conv2d", "dense"}) == "conv2d");
  CHECK(fg::closest_match("zzzzzzzz", {"conv1d", "dense"}).empty());
  CHECK(fg::did_you_mean("dens", {"dense", "dropout"}) == "did you mean 'dense'?");
}

TEST_CASE("node order in the file does not matter: the schedule is topological and deterministic") {
  const std::string in_order = R"(
name: t
inputs: {x: {shape: [4]}}
nodes:
  - {name: a, op: dense, input: x, units: 3}
  - {name: b, op: dense, input: a, units: 2}
  - {name: c, op: dense, input: x, units: 2}
  - {name: s, op: add, inputs: [b, c]}
outputs: [s]
)";
  const std::string reversed = R"(
name: t
inputs: {x: {shape: [4]}}
nodes:
  - {name: s, op: add, inputs: [b, c]}
  - {name: c, op: dense, input: x, units: 2}
  - {name: b, op: dense, input: a, units: 2}
  - {name: a, op: dense, input: x, units: 3}
outputs: [s]
)";
  auto g1 = compile(in_order), g2 = compile(reversed);
  CHECK(schedule(g1) == std::vector<std::string>{"a", "b", "c", "s"});
  // ready nodes are taken in file order: c comes before a in the reversed file
  CHECK(schedule(g2) == std::vector<std::string>{"c", "a", "b", "s"});
  CHECK(schedule(compile(reversed)) == schedule(g2));
}

TEST_CASE("symbolic shapes: batch and null dims stay None, bind makes them concrete") {
  auto g = compile(R"(
name: t
inputs: {x: {shape: [null, 6]}}
nodes:
  - {name: d, op: dense, input: x, units: 5}
outputs: [d]
)");
  int d = g.find_tensor("d");
  CHECK(g.tensors()[d].type.shape == Dims{-1, -1, 5});
  auto types = g.bind({{3, 11, 6}});
  CHECK(types[d].shape == Dims{3, 11, 5});
  // a shape that does not fit the declared one is an error naming the input
  try {
    g.bind({{3, 11, 7}});
    FAIL("bind accepted a wrong shape");
  } catch (const fg::Error& e) {
    std::string m = e.what();
    CHECK(m.find("input 'x' expects shape (None, None, 6)") != std::string::npos);
    CHECK(m.find("(3, 11, 7)") != std::string::npos);
  }
}

TEST_CASE("several outputs and a graph input used as an output") {
  auto g = compile(R"(
name: t
inputs: {x: {shape: [4]}}
nodes:
  - {name: a, op: dense, input: x, units: 3}
  - {name: b, op: dense, input: x, units: 2}
outputs: [a, b, x]
)");
  CHECK(g.output_tensors().size() == 3);
  CHECK(g.warnings().empty());
}

TEST_CASE("concrete input shapes come from --dim style sizes") {
  auto g = compile(R"(
name: t
inputs:
  a: {shape: [null, 2]}
  b: {shape: [3]}
nodes:
  - {name: f, op: flatten, input: a}
outputs: [f, b]
)");
  auto shapes = g.concrete_input_shapes(4, {{"a", {7}}});
  CHECK(shapes[0] == Dims{4, 7, 2});
  CHECK(shapes[1] == Dims{4, 3});
  CHECK_THROWS_WITH_AS(g.concrete_input_shapes(1, {}), doctest::Contains("--dim a=N"), fg::Error);
  CHECK_THROWS_WITH_AS(g.concrete_input_shapes(1, {{"a", {7}}, {"c", {1}}}),
                       doctest::Contains("did you mean"), fg::Error);
}

TEST_CASE("an error carries file, line, column, node and op, and formats them") {
  fg::Error e("bad thing");
  e.at({"g.yaml", 3, 7}).node("n", "dense").hint("fix it");
  CHECK(std::string(e.what()) == "g.yaml:3:7: error: node 'n' (dense): bad thing\nhint: fix it");
  fg::Error f("truncated");
  f.in_file("w.safetensors").tensor("d.kernel");
  CHECK(std::string(f.what()) == "w.safetensors: error: tensor 'd.kernel': truncated");
}

TEST_CASE("YAML positions point at the value: quoted numbers are strings") {
  std::string m = fg::test::compile_error(R"(name: t
inputs: {x: {shape: [4]}}
nodes:
  - {name: d, op: dense, input: x, units: "4"}
outputs: [d]
)");
  CHECK(m.find("test.yaml:4:43: error: node 'd' (dense): attribute 'units' must be an integer") ==
        0);
}

TEST_CASE("a value error early in parse is reported as such, not as later keys being unknown") {
  std::string m = fg::test::compile_error(R"(name: t
inputs: {x: {shape: [4], dtype: int32}}
nodes:
  - {name: e, op: embedding, input: x, input_dim: 0, output_dim: 8}
outputs: [e]
)");
  CHECK(m.find("input_dim") != std::string::npos);
  CHECK(m.find("unknown attribute") == std::string::npos);
}
