// reshape: data order, -1 inference (also from dynamic dims at bind time), and errors.
#include <fmt/format.h>

#include "framework/compiler.hpp"
#include "framework/op.hpp"
#include "framework/registry.hpp"
#include "framework/yaml_loader.hpp"
#include "layers/registry.hpp"
#include "tests/layers/gradient_check.hpp"
#include "tests/test_util.hpp"

using namespace fg;
using namespace fg::test;

namespace {
std::string reshape_yaml(const std::string& in_shape, const std::string& target) {
  return fmt::format(
      "name: t\ninputs:\n  x: {{shape: {}}}\nnodes:\n"
      "  - {{name: r, op: reshape, input: x, target_shape: {}}}\noutputs: [r]\n",
      in_shape, target);
}
}  // namespace

TEST_CASE("reshape keeps the data in C order") {
  struct Case {
    std::string in, target;
    Dims per_in, per_out;
  };
  for (const Case& c :
       {Case{"[7, 13]", "[13, 7]", {7, 13}, {13, 7}}, Case{"[7, 13]", "[-1]", {7, 13}, {91}},
        Case{"[4, 6, 8]", "[-1, 8, 2]", {4, 6, 8}, {12, 8, 2}},
        Case{"[127]", "[127, 1]", {127}, {127, 1}},
        Case{"[2, 3, 5, 7]", "[6, -1]", {2, 3, 5, 7}, {6, 35}}})
    for (int64_t batch : {1, 4}) {
      CAPTURE(c.target);
      CAPTURE(batch);
      Dims shape{batch};
      shape.insert(shape.end(), c.per_in.begin(), c.per_in.end());
      Tensor x = random_tensor(shape, 11 + batch);
      auto out = run_yaml(reshape_yaml(c.in, c.target), {{"x", x}}, {});
      Dims want{batch};
      want.insert(want.end(), c.per_out.begin(), c.per_out.end());
      check_shape(out.at("r"), want);
      check_close(out.at("r"), to_doubles(x), 0, 0);
    }
}

TEST_CASE("reshape resolves -1 from a dynamic dim at bind time") {
  auto def = load_graph_string(reshape_yaml("[null, 6]", "[-1, 3]"));
  auto g = compile_graph(def, builtin_ops());
  CHECK(format_shape(g.tensors()[g.find_tensor("r")].type.shape) == "(None, None, 3)");
  auto bound = g.bind({{2, 5, 6}});
  CHECK(bound[g.find_tensor("r")].shape == Dims{2, 10, 3});
  // And it runs with a concrete length.
  Tensor x = random_tensor({2, 5, 6}, 3);
  auto out = run_yaml(reshape_yaml("[null, 6]", "[-1, 3]"), {{"x", x}}, {});
  check_shape(out.at("r"), {2, 10, 3});
  check_close(out.at("r"), to_doubles(x), 0, 0);
  // A count mismatch is caught once the dim is known.
  auto def2 = load_graph_string(reshape_yaml("[null, 6]", "[4, 3]"));
  auto g2 = compile_graph(def2, builtin_ops());
  CHECK_THROWS_WITH_AS(g2.bind({{1, 5, 6}}), doctest::Contains("(30 elements per sample)"), Error);
  CHECK_NOTHROW(g2.bind({{1, 2, 6}}));
}

TEST_CASE("reshape errors") {
  std::string e = compile_error(reshape_yaml("[7, 13]", "[-1, -1]"));
  CHECK(e.find("only one can be inferred") != std::string::npos);
  CHECK(e.find("test.yaml:5:") != std::string::npos);
  e = compile_error(reshape_yaml("[7, 13]", "[10, 9]"));
  CHECK(e.find("(None, 7, 13) (91 elements per sample)") != std::string::npos);
  CHECK(e.find("target_shape (10, 9) (90 elements)") != std::string::npos);
  e = compile_error(reshape_yaml("[7, 13]", "[-1, 5]"));
  CHECK(e.find("91 elements") != std::string::npos);
  CHECK(e.find("not a multiple") != std::string::npos);
  e = compile_error(reshape_yaml("[7, 13]", "[0, 91]"));
  CHECK(e.find("must be positive") != std::string::npos);
  e = compile_error(reshape_yaml("[7, 13]", "91"));
  CHECK(e.find("must be a list of integers") != std::string::npos);
  CHECK(compile_error(reshape_yaml("[7, 13]", "[91]")) == "");
  CHECK_FALSE(builtin_ops().find("reshape")->create()->supports_masking());
}

// ---- training: the gradient against finite differences of the naive reference ----

TEST_CASE("reshape gradient: the forward copies, the backward copies d output back") {
  struct Case {
    std::string in, target;
    Dims per_in, per_out;
  };
  for (int64_t batch : {1, 4})
    for (const Case& k :
         {Case{"[7, 13]", "[13, 7]", {7, 13}, {13, 7}}, Case{"[7, 13]", "[-1]", {7, 13}, {91}},
          Case{"[4, 6, 8]", "[-1, 8, 2]", {4, 6, 8}, {12, 8, 2}},
          Case{"[127]", "[127, 1]", {127}, {127, 1}}}) {
      CAPTURE(batch);
      CAPTURE(k.target);
      TrainingNodeCase c;
      c.yaml = reshape_yaml(k.in, k.target);
      Dims shape{batch}, out{batch};
      shape.insert(shape.end(), k.per_in.begin(), k.per_in.end());
      out.insert(out.end(), k.per_out.begin(), k.per_out.end());
      c.inputs = {random_tensor(shape, 50 + batch)};
      GradientTolerance tol;
      tol.max_checked = 100;
      // Keras Reshape keeps C order: the same values in the same order.
      auto r = check_gradients(
          c, [](const auto& x, const auto&) { return std::vector<std::vector<double>>{x[0]}; },
          tol);
      check_shape(r.outputs[0], out);
    }
}
