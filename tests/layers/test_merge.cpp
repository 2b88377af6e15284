// add, subtract, multiply, average, maximum, minimum against the naive reference, with
// size-1 broadcasting, masks, and error messages.
#include <fmt/format.h>

#include "tests/layers/gradient_check.hpp"
#include "tests/layers/run_node_directly.hpp"
#include "tests/reference/norm_merge.hpp"
#include "tests/test_util.hpp"

using namespace fg;
using namespace fg::test;

namespace {

const std::vector<std::string> kKinds{"add",     "subtract", "multiply",
                                      "average", "maximum",  "minimum"};

std::string dims_list(const Dims& shape) {
  std::string out = "[";
  for (size_t i = 1; i < shape.size(); ++i) out += (i > 1 ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

std::string merge_yaml(const std::string& kind, const std::vector<Dims>& shapes) {
  std::string inputs, names;
  for (size_t i = 0; i < shapes.size(); ++i) {
    inputs += fmt::format("  in{}: {{shape: {}}}\n", i, dims_list(shapes[i]));
    names += fmt::format("{}in{}", i ? ", " : "", i);
  }
  return fmt::format(
      "name: t\ninputs:\n{}nodes:\n  - {{name: m, op: {}, inputs: [{}]}}\noutputs: [m]\n", inputs,
      kind, names);
}

void check_merge(const std::string& kind, const std::vector<Dims>& shapes, const Dims& out_shape,
                 uint64_t seed) {
  CAPTURE(kind);
  CAPTURE(format_shape(shapes[0]));
  CAPTURE(format_shape(shapes[1]));
  std::map<std::string, Tensor> feeds;
  std::vector<std::vector<double>> xs;
  for (size_t i = 0; i < shapes.size(); ++i) {
    Tensor t = random_tensor(shapes[i], seed + i, -2.f, 2.f);
    feeds[fmt::format("in{}", i)] = t;
    xs.push_back(to_doubles(t));
  }
  auto out = run_yaml(merge_yaml(kind, shapes), feeds, {});
  check_shape(out.at("m"), out_shape);
  check_close(out.at("m"), ref::merge(kind, xs, shapes, out_shape), 1e-5, 1e-6);
}

}  // namespace

TEST_CASE("merges with two inputs of equal shape") {
  uint64_t seed = 300;
  for (const auto& kind : kKinds)
    for (Dims shape : {Dims{1, 3}, Dims{5, 7}, Dims{5, 13, 7}, Dims{1, 127}, Dims{5, 4, 6, 64}})
      check_merge(kind, {shape, shape}, shape, seed++);
}

TEST_CASE("merges with three inputs") {
  uint64_t seed = 400;
  for (const auto& kind : kKinds) {
    if (kind == "subtract") continue;
    check_merge(kind, {{5, 13}, {5, 13}, {5, 13}}, {5, 13}, seed++);
    check_merge(kind, {{1, 3, 127}, {1, 3, 127}, {1, 3, 127}}, {1, 3, 127}, seed++);
    check_merge(kind, {{5, 7}, {5, 7}, {5, 7}, {5, 7}}, {5, 7}, seed++);
  }
}

TEST_CASE("merges broadcast size-1 dims") {
  uint64_t seed = 500;
  for (const auto& kind : kKinds) {
    check_merge(kind, {{5, 4, 7}, {5, 1, 7}}, {5, 4, 7}, seed++);    // second broadcasts
    check_merge(kind, {{5, 1, 7}, {5, 4, 7}}, {5, 4, 7}, seed++);    // first broadcasts
    check_merge(kind, {{5, 4, 1}, {5, 1, 13}}, {5, 4, 13}, seed++);  // both broadcast
    check_merge(kind, {{1, 3, 1}, {1, 3, 1}}, {1, 3, 1}, seed++);
    if (kind == "subtract") continue;
    check_merge(kind, {{5, 1, 7}, {5, 4, 1}, {5, 4, 7}}, {5, 4, 7}, seed++);
    check_merge(kind, {{2, 1, 3, 1}, {2, 6, 1, 1}, {2, 1, 1, 5}}, {2, 6, 3, 5}, seed++);
  }
}

TEST_CASE("merge masks are the AND of the input masks") {
  const std::string yaml = merge_yaml("add", {{2, 3, 2}, {2, 3, 2}});
  Tensor a = random_tensor({2, 3, 2}, 1), b = random_tensor({2, 3, 2}, 2);
  std::vector<uint8_t> ma{1, 1, 0, 1, 0, 1}, mb{1, 0, 1, 1, 1, 1};
  auto r = run_direct(yaml, {a, b}, {ma, mb});
  REQUIRE(r.type.masked);
  CHECK(r.mask == std::vector<uint8_t>{1, 0, 0, 1, 0, 1});
  check_close(r.out,
              ref::merge("add", {to_doubles(a), to_doubles(b)}, {{2, 3, 2}, {2, 3, 2}}, {2, 3, 2}),
              1e-6, 1e-6);
  r = run_direct(yaml, {a, b}, {ma, {}});
  CHECK(r.mask == ma);
  r = run_direct(yaml, {a, b}, {{}, {}});
  CHECK_FALSE(r.type.masked);
  // A size-1 steps dim broadcasts its mask too.
  const std::string yaml_b = merge_yaml("multiply", {{2, 3, 2}, {2, 1, 2}});
  Tensor c = random_tensor({2, 1, 2}, 3);
  r = run_direct(yaml_b, {a, c}, {ma, {1, 0}});
  CHECK(r.mask == std::vector<uint8_t>{1, 1, 0, 0, 0, 0});
}

TEST_CASE("merge shape mismatch lists every shape") {
  const std::string e = compile_error(merge_yaml("add", {{1, 5}, {1, 7}, {1, 5}}));
  CAPTURE(e);
  CHECK(e.find("'in1' has 7 on axis 1 where 'in0' has 5") != std::string::npos);
  CHECK(e.find("\n  in0: (None, 5)\n  in1: (None, 7)\n  in2: (None, 5)") != std::string::npos);
  const std::string e2 = compile_error(merge_yaml("maximum", {{1, 4, 3}, {1, 4, 2}}));
  CHECK(e2.find("'in1' has 2 on axis 2 where 'in0' has 3") != std::string::npos);
  const std::string e3 = compile_error(merge_yaml("multiply", {{1, 4, 3}, {1, 12}}));
  CHECK(e3.find("equal rank") != std::string::npos);
  CHECK(e3.find("\n  in0: (None, 4, 3)\n  in1: (None, 12)") != std::string::npos);
}

TEST_CASE("merge errors for input count and dtype") {
  std::string e = compile_error(merge_yaml("subtract", {{1, 5}, {1, 5}, {1, 5}}));
  CHECK(e.find("subtract takes exactly 2 inputs, got 3") != std::string::npos);
  CHECK(e.find("\n  in2: (None, 5)") != std::string::npos);
  CHECK(compile_error(merge_yaml("add", {{1, 5}})).find("at least 2 inputs") != std::string::npos);
  CHECK(compile_error(merge_yaml("subtract", {{1, 5}})).find("exactly 2 inputs") !=
        std::string::npos);
  e = compile_error(
      "name: t\ninputs:\n  a: {shape: [3]}\n  b: {shape: [3], dtype: int32}\nnodes:\n"
      "  - {name: m, op: add, inputs: [a, b]}\noutputs: [m]\n");
  CHECK(e.find("same dtype") != std::string::npos);
  CHECK(e.find("'b' is int32") != std::string::npos);
  e = compile_error(
      "name: t\ninputs:\n  a: {shape: [3], dtype: int32}\n  b: {shape: [3], dtype: int32}\nnodes:\n"
      "  - {name: m, op: average, inputs: [a, b]}\noutputs: [m]\n");
  CHECK(e.find("average needs float32") != std::string::npos);
  CHECK(compile_error("name: t\ninputs:\n  a: {shape: [3]}\n  b: {shape: [3]}\nnodes:\n"
                      "  - {name: m, op: add, inputs: [a, b], axis: 1}\noutputs: [m]\n") != "");
  CHECK(compile_error("name: t\ninputs:\n  a: {shape: [null, 3]}\n  b: {shape: [4, 1]}\nnodes:\n"
                      "  - {name: m, op: add, inputs: [a, b]}\noutputs: [m]\n") == "");
}

TEST_CASE("merges of int32 tensors") {
  for (const std::string kind : {"add", "subtract", "multiply", "maximum", "minimum"}) {
    CAPTURE(kind);
    const std::string yaml = fmt::format(
        "name: t\ninputs:\n  a: {{shape: [3, 4], dtype: int32}}\n  b: {{shape: [1, 4], dtype: "
        "int32}}\nnodes:\n"
        "  - {{name: m, op: {}, inputs: [a, b]}}\noutputs: [m]\n",
        kind);
    Tensor a = random_ints({5, 3, 4}, 1, -100, 100), b = random_ints({5, 1, 4}, 2, -100, 100);
    auto out = run_yaml(yaml, {{"a", a}, {"b", b}}, {});
    REQUIRE(out.at("m").dtype() == DType::i32);
    check_close(out.at("m"),
                ref::merge(kind, {to_doubles(a), to_doubles(b)}, {{5, 3, 4}, {5, 1, 4}}, {5, 3, 4}),
                0, 0);
  }
}

// ---- gradients (Op::compile_training) ----

namespace {

TrainingNodeCase merge_case(const std::string& kind, const std::vector<Dims>& shapes,
                            uint64_t seed) {
  TrainingNodeCase c;
  c.yaml = merge_yaml(kind, shapes);
  for (size_t i = 0; i < shapes.size(); ++i)
    c.inputs.push_back(random_tensor(shapes[i], seed + i, -2.f, 2.f));
  return c;
}

TrainingNodeResult check_merge_gradient(const TrainingNodeCase& c, const std::string& kind,
                                        const std::vector<Dims>& shapes, const Dims& out_shape) {
  CAPTURE(kind);
  CAPTURE(format_shape(shapes[0]));
  CAPTURE(format_shape(shapes[1]));
  GradientTolerance tol;
  tol.max_checked = 120;  // the naive merge is slow per call; 120 entries per input suffice
  return check_gradients(
      c,
      [&](const auto& x, const auto&) {
        return std::vector<std::vector<double>>{ref::merge(kind, x, shapes, out_shape)};
      },
      tol);
}

}  // namespace

TEST_CASE("merge gradients: every kind, equal shapes, 2 and 3 inputs") {
  uint64_t seed = 70;
  for (const std::string& kind : kKinds) {
    for (const Dims& shape : {Dims{7, 13}, Dims{4, 127}, Dims{2, 3, 16}}) {
      const std::vector<Dims> shapes{shape, shape};
      check_merge_gradient(merge_case(kind, shapes, seed++), kind, shapes, shape);
    }
    if (kind == "subtract") continue;
    const std::vector<Dims> three{{5, 13}, {5, 13}, {5, 13}};
    check_merge_gradient(merge_case(kind, three, seed++), kind, three, {5, 13});
  }
}

TEST_CASE("merge gradients: broadcast inputs sum over their size-1 dims") {
  uint64_t seed = 90;
  for (const std::string& kind : kKinds) {
    const std::vector<Dims> one_full{{2, 7, 5}, {2, 1, 5}};
    check_merge_gradient(merge_case(kind, one_full, seed++), kind, one_full, {2, 7, 5});
    const std::vector<Dims> none_full{{2, 7, 1}, {2, 1, 5}};  // the output is {2, 7, 5}
    check_merge_gradient(merge_case(kind, none_full, seed++), kind, none_full, {2, 7, 5});
    if (kind == "subtract") continue;
    const std::vector<Dims> three{{3, 1, 13}, {3, 4, 13}, {3, 4, 1}};
    check_merge_gradient(merge_case(kind, three, seed++), kind, three, {3, 4, 13});
  }
}

TEST_CASE("maximum / minimum gradients go to the first extreme on ties") {
  for (const std::string kind : {"maximum", "minimum"}) {
    CAPTURE(kind);
    TrainingNodeCase c;
    c.yaml = merge_yaml(kind, {{1, 4}, {1, 4}, {1, 4}});
    const float s = kind == "maximum" ? 1.f : -1.f;
    c.inputs = {make_tensor({1, 4}, {s * 1, s * 2, s * 3, s * 0}),
                make_tensor({1, 4}, {s * 1, s * 5, s * 3, s * 4}),
                make_tensor({1, 4}, {s * 0, s * 5, s * 3, s * 4})};
    auto r = run_training_node(c, {make_tensor({1, 4}, {10, 20, 30, 40})});
    check_close(r.outputs[0], {s * 1, s * 5, s * 3, s * 4}, 0, 0);
    check_close(r.diff_inputs[0], {10, 0, 30, 0}, 0, 0);
    check_close(r.diff_inputs[1], {0, 20, 0, 40}, 0, 0);
    check_close(r.diff_inputs[2], {0, 0, 0, 0}, 0, 0);
  }
}

TEST_CASE("merge gradients: masks pass as the AND, the gradient ignores them") {
  const std::vector<Dims> shapes{{3, 7, 5}, {3, 7, 5}};
  TrainingNodeCase c = merge_case("multiply", shapes, 120);
  std::vector<uint8_t> m0(21, 1), m1(21, 1);
  m0[2] = 0;
  m1[9] = 0;
  c.masks = {m0, m1};
  auto r = check_merge_gradient(c, "multiply", shapes, {3, 7, 5});
  REQUIRE(r.output_masks[0].size() == 21);
  CHECK(r.output_masks[0][2] == 0);
  CHECK(r.output_masks[0][9] == 0);
  CHECK(r.output_masks[0][3] == 1);
}
