// concatenate against the naive reference, its masks, and its error messages.
#include <fmt/format.h>

#include "tests/layers/gradient_check.hpp"
#include "tests/layers/run_node_directly.hpp"
#include "tests/reference/norm_merge.hpp"
#include "tests/test_util.hpp"

using namespace fg;
using namespace fg::test;

namespace {

std::string dims_list(const Dims& shape) {
  std::string out = "[";
  for (size_t i = 1; i < shape.size(); ++i) out += (i > 1 ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

void check_concat(const std::vector<Dims>& shapes, int axis, uint64_t seed) {
  CAPTURE(axis);
  CAPTURE(format_shape(shapes[0]));
  CAPTURE(format_shape(shapes[1]));
  std::string inputs, names;
  std::map<std::string, Tensor> feeds;
  std::vector<std::vector<double>> xs;
  for (size_t i = 0; i < shapes.size(); ++i) {
    const std::string name = fmt::format("in{}", i);
    inputs += fmt::format("  {}: {{shape: {}}}\n", name, dims_list(shapes[i]));
    names += (i ? ", " : "") + name;
    feeds[name] = random_tensor(shapes[i], seed + i);
    xs.push_back(to_doubles(feeds[name]));
  }
  const std::string yaml = fmt::format(
      "name: t\ninputs:\n{}nodes:\n  - {{name: c, op: concatenate, inputs: [{}], axis: "
      "{}}}\noutputs: [c]\n",
      inputs, names, axis);
  const int rank = static_cast<int>(shapes[0].size());
  const int a = axis < 0 ? axis + rank : axis;
  Dims out_shape = shapes[0];
  out_shape[a] = 0;
  for (const auto& s : shapes) out_shape[a] += s[a];
  auto out = run_yaml(yaml, feeds, {});
  check_shape(out.at("c"), out_shape);
  check_close(out.at("c"), ref::concat(xs, shapes, a), 0, 0);  // a copy: exact
}

std::string two_inputs(const std::string& a, const std::string& b, const std::string& attrs = "") {
  return fmt::format(
      "name: t\ninputs:\n  a: {}\n  b: {}\nnodes:\n  - {{name: c, op: concatenate, inputs: [a, "
      "b]{}}}\n"
      "outputs: [c]\n",
      a, b, attrs);
}

}  // namespace

TEST_CASE("concatenate on the last axis") {
  check_concat({{5, 3}, {5, 7}}, -1, 1);
  check_concat({{1, 13}, {1, 7}, {1, 127}}, -1, 2);
  check_concat({{5, 4, 3}, {5, 4, 64}}, -1, 3);
  check_concat({{5, 2, 3, 7}, {5, 2, 3, 13}, {5, 2, 3, 1}}, -1, 4);
  check_concat({{1, 2, 3, 7}, {1, 2, 3, 13}}, 3, 5);
}

TEST_CASE("concatenate on axis 1") {
  check_concat({{5, 7, 3}, {5, 13, 3}}, 1, 11);
  check_concat({{1, 7, 3}, {1, 13, 3}, {1, 1, 3}}, 1, 12);
  check_concat({{5, 3}, {5, 7}, {5, 13}}, 1, 13);
  check_concat({{5, 7, 2, 3}, {5, 4, 2, 3}}, 1, 14);
}

TEST_CASE("concatenate on a middle axis") {
  check_concat({{2, 3, 5, 4}, {2, 3, 7, 4}}, 2, 21);
  check_concat({{5, 3, 5, 4}, {5, 3, 7, 4}, {5, 3, 13, 4}}, -2, 22);
  check_concat({{1, 3, 5, 4}, {1, 3, 1, 4}, {1, 3, 127, 4}}, 2, 23);
}

TEST_CASE("concatenate accepts dynamic dims and infers the output shape") {
  CHECK(compile_error(two_inputs("{shape: [null, 8]}", "{shape: [null, 4]}")) == "");
  CHECK(compile_error(two_inputs("{shape: [null, 8]}", "{shape: [5, 4]}")) == "");
  CHECK(compile_error(two_inputs("{shape: [3, 8]}", "{shape: [null, 8]}", ", axis: 1")) == "");
  CHECK(compile_error(two_inputs("{shape: [7], dtype: int32}", "{shape: [3], dtype: int32}")) ==
        "");
}

TEST_CASE("concatenate masks: AND on the feature axis, joined on the steps axis") {
  const std::string yaml_last = two_inputs("{shape: [3, 2]}", "{shape: [3, 4]}");
  Tensor a = random_tensor({2, 3, 2}, 1), b = random_tensor({2, 3, 4}, 2);
  std::vector<uint8_t> ma{1, 1, 0, 1, 0, 1}, mb{1, 0, 1, 1, 1, 1};
  auto r = run_direct(yaml_last, {a, b}, {ma, mb});
  REQUIRE(r.type.masked);
  CHECK(r.mask == std::vector<uint8_t>{1, 0, 0, 1, 0, 1});
  r = run_direct(yaml_last, {a, b}, {{}, mb});  // a has no mask: all ones
  CHECK(r.mask == mb);
  r = run_direct(yaml_last, {a, b}, {{}, {}});
  CHECK_FALSE(r.type.masked);
  check_close(r.out, ref::concat({to_doubles(a), to_doubles(b)}, {{2, 3, 2}, {2, 3, 4}}, 2), 0, 0);

  const std::string yaml_steps = two_inputs("{shape: [3, 2]}", "{shape: [2, 2]}", ", axis: 1");
  Tensor c = random_tensor({2, 2, 2}, 3);
  std::vector<uint8_t> mc{0, 1, 1, 0};
  r = run_direct(yaml_steps, {a, c}, {ma, mc});
  CHECK(r.mask == std::vector<uint8_t>{1, 1, 0, 0, 1, 1, 0, 1, 1, 0});
  r = run_direct(yaml_steps, {a, c}, {{}, mc});
  CHECK(r.mask == std::vector<uint8_t>{1, 1, 1, 0, 1, 1, 1, 1, 1, 0});
}

TEST_CASE("concatenate rank mismatch lists every input and hints at pooling") {
  const std::string yaml = R"(name: seed
inputs:
  text_lstm: {shape: [32]}
  audio_dense: {shape: [250, 256]}
nodes:
  - {name: fusion, op: concatenate, inputs: [text_lstm, audio_dense]}
outputs: [fusion]
)";
  const std::string e = compile_error(yaml);
  CAPTURE(e);
  CHECK(e.find("fusion") != std::string::npos);
  CHECK(e.find("'audio_dense' has rank 3") != std::string::npos);
  CHECK(e.find("\n  text_lstm: (None, 32)\n  audio_dense: (None, 250, 256)") != std::string::npos);
  CHECK(
      e.find(
          "apply global_average_pooling1d, global_max_pooling1d or flatten to the rank-3 input(s) "
          "to make them rank 2") != std::string::npos);
  CHECK(e.find("test.yaml:6:") != std::string::npos);  // points at the node's inputs line

  // Three inputs: the majority rank wins; the rank-4 input gets the 2d pooling hint.
  const std::string e3 = compile_error(R"(name: t
inputs:
  a: {shape: [8]}
  b: {shape: [4]}
  img: {shape: [5, 5, 3]}
nodes:
  - {name: c, op: concatenate, inputs: [a, img, b]}
outputs: [c]
)");
  CHECK(e3.find("'img' has rank 4") != std::string::npos);
  CHECK(e3.find("\n  a: (None, 8)\n  img: (None, 5, 5, 3)\n  b: (None, 4)") != std::string::npos);
  CHECK(e3.find("global_average_pooling2d, global_max_pooling2d or flatten to the rank-4") !=
        std::string::npos);
}

TEST_CASE("concatenate rank mismatch with a dynamic audio length, as in the seed model") {
  const std::string e = compile_error(R"(name: seed
inputs:
  text_lstm: {shape: [32]}
  image_dense: {shape: [256]}
  audio_dense: {shape: [null, 256]}
nodes:
  - {name: fusion, op: concatenate, inputs: [text_lstm, image_dense, audio_dense]}
outputs: [fusion]
)");
  CAPTURE(e);
  CHECK(e.find("test.yaml:7:") != std::string::npos);
  CHECK(e.find("\n  text_lstm: (None, 32)\n  image_dense: (None, 256)\n  audio_dense: (None, None, "
               "256)\n") != std::string::npos);
  CHECK(e.find("hint: apply global_average_pooling1d, global_max_pooling1d or flatten to the "
               "rank-3 input(s) to "
               "make them rank 2") != std::string::npos);
}

TEST_CASE("concatenate dim mismatch names the input and axis") {
  const std::string e = compile_error(two_inputs("{shape: [5, 3]}", "{shape: [7, 4]}"));
  CAPTURE(e);
  CHECK(e.find("'b' has 7 on axis 1 where 'a' has 5") != std::string::npos);
  CHECK(e.find("\n  a: (None, 5, 3)\n  b: (None, 7, 4)") != std::string::npos);
  const std::string e2 =
      compile_error(two_inputs("{shape: [5, 3]}", "{shape: [5, 4]}", ", axis: 1"));
  CHECK(e2.find("'b' has 4 on axis 2 where 'a' has 3") != std::string::npos);
}

TEST_CASE("concatenate errors for axis, dtype and input count") {
  std::string e = compile_error(two_inputs("{shape: [5, 3]}", "{shape: [5, 4]}", ", axis: 3"));
  CHECK(e.find("axis 3 is out of range for rank-3 inputs") != std::string::npos);
  CHECK(compile_error(two_inputs("{shape: [5, 3]}", "{shape: [5, 4]}", ", axis: -4"))
            .find("out of range") != std::string::npos);
  CHECK(compile_error(two_inputs("{shape: [5, 3]}", "{shape: [5, 4]}", ", axis: 0"))
            .find("batch axis") != std::string::npos);
  e = compile_error(two_inputs("{shape: [3]}", "{shape: [4], dtype: int32}"));
  CHECK(e.find("same dtype") != std::string::npos);
  CHECK(e.find("'b' is int32") != std::string::npos);
  e = compile_error(
      "name: t\ninputs:\n  a: {shape: [3]}\nnodes:\n  - {name: c, op: concatenate, inputs: "
      "[a]}\noutputs: [c]\n");
  CHECK(e != "");
}

TEST_CASE("concatenate runs with dynamic dims bound at run time") {
  const std::string yaml = two_inputs("{shape: [null, 8]}", "{shape: [null, 4]}");
  for (Dim steps : {Dim{1}, Dim{7}}) {
    Tensor a = random_tensor({5, steps, 8}, 1), b = random_tensor({5, steps, 4}, 2);
    auto out = run_yaml(yaml, {{"a", a}, {"b", b}}, {});
    check_shape(out.at("c"), {5, steps, 12});
    check_close(out.at("c"),
                ref::concat({to_doubles(a), to_doubles(b)}, {{5, steps, 8}, {5, steps, 4}}, 2), 0,
                0);
  }
}

TEST_CASE("concatenate joins int32 tensors") {
  const std::string yaml =
      two_inputs("{shape: [3, 2], dtype: int32}", "{shape: [3, 5], dtype: int32}", ", axis: -1");
  Tensor a = random_ints({2, 3, 2}, 1, -50, 50), b = random_ints({2, 3, 5}, 2, -50, 50);
  auto out = run_yaml(yaml, {{"a", a}, {"b", b}}, {});
  REQUIRE(out.at("c").dtype() == DType::i32);
  check_close(out.at("c"), ref::concat({to_doubles(a), to_doubles(b)}, {{2, 3, 2}, {2, 3, 5}}, 2),
              0, 0);
}

// ---- gradients (Op::compile_training) ----

namespace {

TrainingNodeCase concat_case(const std::vector<Dims>& shapes, int axis, uint64_t seed) {
  std::string inputs, names;
  TrainingNodeCase c;
  for (size_t i = 0; i < shapes.size(); ++i) {
    inputs += fmt::format("  in{}: {{shape: {}}}\n", i, dims_list(shapes[i]));
    names += fmt::format("{}in{}", i ? ", " : "", i);
    c.inputs.push_back(random_tensor(shapes[i], seed + i));
  }
  c.yaml = fmt::format(
      "name: t\ninputs:\n{}nodes:\n  - {{name: c, op: concatenate, inputs: [{}], axis: "
      "{}}}\noutputs: [c]\n",
      inputs, names, axis);
  return c;
}

TrainingNodeResult check_concat_gradient(TrainingNodeCase c, const std::vector<Dims>& shapes,
                                         int axis) {
  CAPTURE(axis);
  CAPTURE(format_shape(shapes[0]));
  const int a = axis < 0 ? axis + static_cast<int>(shapes[0].size()) : axis;
  return check_gradients(c, [&](const auto& x, const auto&) {
    return std::vector<std::vector<double>>{ref::concat(x, shapes, a)};
  });
}

}  // namespace

TEST_CASE("concatenate gradient: slices of d output on every axis, odd and round sizes") {
  const std::vector<std::pair<std::vector<Dims>, int>> cases{{{{7, 13}, {7, 5}}, -1},
                                                             {{{4, 127}, {4, 1}, {4, 64}}, 1},
                                                             {{{2, 3, 5}, {2, 4, 5}, {2, 1, 5}}, 1},
                                                             {{{2, 3, 5}, {2, 3, 7}}, 2},
                                                             {{{2, 3, 4, 5}, {2, 3, 1, 5}}, 2},
                                                             {{{2, 3, 4, 5}, {2, 7, 4, 5}}, -3},
                                                             {{{1, 13}, {1, 13}}, -1}};
  uint64_t seed = 10;
  for (const auto& [shapes, axis] : cases)
    check_concat_gradient(concat_case(shapes, axis, seed++), shapes, axis);
}

TEST_CASE("concatenate gradient: masks pass, inputs that need no gradient stay untouched") {
  const std::vector<Dims> shapes{{3, 4, 5}, {3, 6, 5}};
  TrainingNodeCase c = concat_case(shapes, 1, 40);
  std::vector<uint8_t> m(12, 1);
  m[5] = 0;
  c.masks = {m, {}};
  auto r = check_concat_gradient(c, shapes, 1);
  REQUIRE(r.output_masks[0].size() == 30);
  CHECK(r.output_masks[0][11] == 0);  // sample 1, step 1: the steps' masks are concatenated
  CHECK(std::count(r.output_masks[0].begin(), r.output_masks[0].end(), uint8_t{0}) == 1);
  c.masks = {};
  c.needs_input_gradient = {false, true};
  r = check_concat_gradient(c, shapes, 1);
  for (size_t i = 0; i < r.diff_inputs[0].size(); ++i)
    REQUIRE(r.diff_inputs[0].data<float>()[i] == 0.0f);
}
