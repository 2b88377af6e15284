// tensor_fusion against the naive outer-product reference (2 to 4 modalities, odd and round
// sizes, batch 1 and > 1), a hand-computed case for the element order, and its errors (size
// limit, overflow, ranks, dtypes).
#include <fmt/format.h>

#include "tests/layers/gradient_check.hpp"
#include "tests/reference/tensor_attention_fusion.hpp"
#include "tests/test_util.hpp"

using namespace fg;
using namespace fg::test;

namespace {

std::string fusion_yaml(const std::vector<int64_t>& dims, const std::string& attrs = "") {
  std::string inputs, names;
  for (size_t i = 0; i < dims.size(); ++i) {
    inputs += fmt::format("  x{}: {{shape: [{}]}}\n", i, dims[i]);
    names += fmt::format("{}x{}", i ? ", " : "", i);
  }
  return fmt::format(
      "name: t\ninputs:\n{}nodes:\n  - {{name: f, op: tensor_fusion, inputs: [{}]{}}}\n"
      "outputs: [f]\n",
      inputs, names, attrs.empty() ? "" : ", " + attrs);
}

void check_fusion(const std::vector<int64_t>& dims, int64_t batch, uint64_t seed) {
  CAPTURE(batch);
  CAPTURE(dims.size());
  CAPTURE(dims[0]);
  std::map<std::string, Tensor> feeds;
  std::vector<std::vector<double>> xs;
  int64_t total = 1;
  for (size_t i = 0; i < dims.size(); ++i) {
    Tensor t = random_tensor({batch, dims[i]}, seed + i, -2.f, 2.f);
    feeds[fmt::format("x{}", i)] = t;
    xs.push_back(to_doubles(t));
    total *= dims[i] + 1;
  }
  auto out = run_yaml(fusion_yaml(dims), feeds, {});
  check_shape(out.at("f"), {batch, total});
  check_close(out.at("f"), ref::tensor_fusion(xs, dims, batch), 1e-5, 1e-6);
}

}  // namespace

TEST_CASE("tensor_fusion of two modalities matches the reference") {
  uint64_t seed = 10;
  for (int64_t batch : {1, 5})
    for (auto dims :
         std::vector<std::vector<int64_t>>{{1, 1}, {7, 13}, {16, 32}, {127, 3}, {2, 127}, {64, 64}})
      check_fusion(dims, batch, seed++);
}

TEST_CASE("tensor_fusion of three and four modalities matches the reference") {
  uint64_t seed = 50;
  for (int64_t batch : {1, 3}) {
    check_fusion({7, 13, 5}, batch, seed++);
    check_fusion({16, 32, 32}, batch, seed++);
    check_fusion({3, 1, 4, 2}, batch, seed++);
    check_fusion({8, 8, 8, 8}, batch, seed++);
  }
}

TEST_CASE("tensor_fusion element order is C order with the 1 last") {
  // [2; 1] (x) [3, 5; 1] = [6, 10, 2, 3, 5, 1] (values written by hand).
  auto out =
      run_yaml(fusion_yaml({1, 2}),
               {{"x0", make_tensor({1, 1}, {2.f})}, {"x1", make_tensor({1, 2}, {3.f, 5.f})}}, {});
  check_close(out.at("f"), {6, 10, 2, 3, 5, 1}, 0, 0);
  // three modalities, batch 2: [a; 1] (x) [b; 1] (x) [c; 1]
  out = run_yaml(fusion_yaml({1, 1, 1}),
                 {{"x0", make_tensor({2, 1}, {2.f, -1.f})},
                  {"x1", make_tensor({2, 1}, {3.f, 4.f})},
                  {"x2", make_tensor({2, 1}, {5.f, 0.5f})}},
                 {});
  check_close(out.at("f"), {30, 6, 10, 2, 15, 3, 5, 1, -2, -4, -0.5, -1, 2, 4, 0.5, 1}, 0, 0);
}

TEST_CASE("tensor_fusion size limit names the size and the limit with a hint") {
  // (100 + 1) * (100 + 1) * (100 + 1) = 1,030,301 > 1,000,000
  std::string e = compile_error(fusion_yaml({100, 100, 100}));
  CAPTURE(e);
  CHECK(e.find("1030301 features per sample") != std::string::npos);
  CHECK(e.find("(100 + 1) x (100 + 1) x (100 + 1)") != std::string::npos);
  CHECK(e.find("max_features = 1000000") != std::string::npos);
  CHECK(e.find("dense") != std::string::npos);
  CHECK(e.find("low_rank_fusion") != std::string::npos);
  CHECK(e.find("node 'f' (tensor_fusion)") != std::string::npos);
  // the limit is an attribute
  CHECK(compile_error(fusion_yaml({100, 100, 100}, "max_features: 2000000")) == "");
  e = compile_error(fusion_yaml({7, 13}, "max_features: 111"));
  CHECK(e.find("112 features per sample") != std::string::npos);
  CHECK(e.find("max_features = 111") != std::string::npos);
  CHECK(compile_error(fusion_yaml({7, 13}, "max_features: 112")) == "");
}

TEST_CASE("tensor_fusion sizes that overflow int64 are reported, not wrapped") {
  std::string e = compile_error(
      fusion_yaml({3000000000LL, 3000000000LL, 3000000000LL}, "max_features: 9000000000000000000"));
  CAPTURE(e);
  CHECK(e.find("about 2.7e+28 features per sample") != std::string::npos);
  CHECK(e.find("max_features = 9000000000000000000") != std::string::npos);
}

TEST_CASE("tensor_fusion input and attribute errors") {
  std::string e = compile_error(
      "name: t\ninputs:\n  a: {shape: [4]}\nnodes:\n"
      "  - {name: f, op: tensor_fusion, inputs: [a]}\noutputs: [f]\n");
  CHECK(e.find("at least 2 inputs") != std::string::npos);
  e = compile_error(
      "name: t\ninputs:\n  a: {shape: [4]}\n  b: {shape: [3, 4]}\nnodes:\n"
      "  - {name: f, op: tensor_fusion, inputs: [a, b]}\noutputs: [f]\n");
  CHECK(e.find("rank-2 inputs [batch, features], but 'b' has shape (None, 3, 4)") !=
        std::string::npos);
  CHECK(e.find("global_average_pooling1d") != std::string::npos);
  e = compile_error(
      "name: t\ninputs:\n  a: {shape: [4]}\n  b: {shape: [3], dtype: int32}\nnodes:\n"
      "  - {name: f, op: tensor_fusion, inputs: [a, b]}\noutputs: [f]\n");
  CHECK(e.find("float32 inputs, but 'b' is") != std::string::npos);
  e = compile_error(
      "name: t\ninputs:\n  a: {shape: [4]}\n  b: {shape: [null]}\nnodes:\n"
      "  - {name: f, op: tensor_fusion, inputs: [a, b]}\noutputs: [f]\n");
  CHECK(e.find("feature size of 'b' known") != std::string::npos);
  CHECK(compile_error(fusion_yaml({3, 4}, "max_features: 0")).find("max_features") !=
        std::string::npos);
  CHECK(compile_error(fusion_yaml({3, 4}, "max_features: -5")) != "");
  CHECK(compile_error(fusion_yaml({3, 4}, "max_feature: 10")).find("max_features") !=
        std::string::npos);
}

// ---- training: the gradient against finite differences of the naive reference ----

namespace {

void check_fusion_gradient(const std::vector<int64_t>& dims, int64_t batch, uint64_t seed,
                           std::vector<bool> needs = {}) {
  CAPTURE(batch);
  CAPTURE(dims.size());
  CAPTURE(dims[0]);
  TrainingNodeCase c;
  c.yaml = fusion_yaml(dims);
  c.needs_input_gradient = std::move(needs);
  for (size_t i = 0; i < dims.size(); ++i)
    c.inputs.push_back(random_tensor({batch, dims[i]}, seed + i, -2.f, 2.f));
  check_gradients(c, [&](const auto& x, const auto&) {
    return std::vector<std::vector<double>>{ref::tensor_fusion(x, dims, batch)};
  });
}

}  // namespace

TEST_CASE("tensor_fusion gradient: two to four modalities, odd and round sizes") {
  uint64_t seed = 300;
  for (int64_t batch : {1, 7})
    for (auto dims : std::vector<std::vector<int64_t>>{{1, 1}, {7, 13}, {16, 32}, {127, 3}})
      check_fusion_gradient(dims, batch, seed++);
  check_fusion_gradient({7, 13, 5}, 3, seed++);
  check_fusion_gradient({3, 1, 4, 2}, 2, seed++);
  check_fusion_gradient({8, 8, 8, 8}, 1, seed++);
}

TEST_CASE("tensor_fusion gradient: inputs that need no gradient are left untouched") {
  check_fusion_gradient({7, 13, 5}, 3, 400, {false, true, true});
  check_fusion_gradient({7, 13}, 2, 401, {true, false});
}
