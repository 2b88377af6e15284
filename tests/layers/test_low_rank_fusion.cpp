// low_rank_fusion against the naive reference (2 and 3 modalities, ranks 1 to 8, odd and round
// sizes, batch 1 and > 1, with and without bias), its weight specs and its errors.
#include <fmt/format.h>

#include "framework/compiler.hpp"
#include "framework/yaml_loader.hpp"
#include "layers/registry.hpp"
#include "tests/layers/gradient_check.hpp"
#include "tests/reference/tensor_attention_fusion.hpp"
#include "tests/test_util.hpp"

using namespace fg;
using namespace fg::test;

namespace {

std::string lmf_yaml(const std::vector<int64_t>& dims, const std::string& attrs) {
  std::string inputs, names;
  for (size_t i = 0; i < dims.size(); ++i) {
    inputs += fmt::format("  x{}: {{shape: [{}]}}\n", i, dims[i]);
    names += fmt::format("{}x{}", i ? ", " : "", i);
  }
  return fmt::format(
      "name: t\ninputs:\n{}nodes:\n  - {{name: f, op: low_rank_fusion, inputs: [{}], {}}}\n"
      "outputs: [f]\n",
      inputs, names, attrs);
}

void check_lmf(const std::vector<int64_t>& dims, int64_t batch, int64_t rank, int64_t units,
               bool use_bias, uint64_t seed) {
  INFO(fmt::format("dims {} batch {} rank {} units {} bias {}", dims.size(), batch, rank, units,
                   use_bias));
  std::map<std::string, Tensor> feeds, weights;
  std::vector<std::vector<double>> xs, factors;
  for (size_t i = 0; i < dims.size(); ++i) {
    Tensor t = random_tensor({batch, dims[i]}, seed + i);
    feeds[fmt::format("x{}", i)] = t;
    xs.push_back(to_doubles(t));
    Tensor w = random_tensor({rank, dims[i] + 1, units}, seed + 100 + i, -0.7f, 0.7f);
    weights[fmt::format("f.factor_{}", i)] = w;
    factors.push_back(to_doubles(w));
  }
  std::vector<double> bias;
  if (use_bias) {
    Tensor b = random_tensor({units}, seed + 200);
    weights["f.bias"] = b;
    bias = to_doubles(b);
  }
  auto out = run_yaml(lmf_yaml(dims, fmt::format("rank: {}, units: {}, use_bias: {}", rank, units,
                                                 use_bias ? "true" : "false")),
                      feeds, weights);
  check_shape(out.at("f"), {batch, units});
  check_close(out.at("f"), ref::low_rank_fusion(xs, dims, batch, factors, bias, rank, units), 1e-5,
              1e-5);
}

}  // namespace

TEST_CASE("low_rank_fusion of two modalities matches the reference") {
  uint64_t seed = 1000;
  for (int64_t batch : {1, 4})
    for (int64_t rank : {1, 4})
      for (auto dims : std::vector<std::vector<int64_t>>{{7, 13}, {32, 16}, {127, 1}})
        for (int64_t units : {1, 13, 64}) check_lmf(dims, batch, rank, units, true, seed++);
}

TEST_CASE("low_rank_fusion of three modalities and without bias matches the reference") {
  uint64_t seed = 2000;
  for (int64_t batch : {1, 3}) {
    check_lmf({7, 13, 5}, batch, 3, 7, true, seed++);
    check_lmf({16, 32, 32}, batch, 8, 16, true, seed++);
    check_lmf({7, 13, 5}, batch, 3, 7, false, seed++);
    check_lmf({4, 4, 4, 4}, batch, 2, 5, false, seed++);
  }
}

TEST_CASE("low_rank_fusion weights are factor_m [rank, d_m + 1, units] and bias [units]") {
  auto def = load_graph_string(lmf_yaml({7, 13, 5}, "rank: 4, units: 10"), "t.yaml");
  auto g = compile_graph(def, builtin_ops());
  auto all = g.all_weights();
  REQUIRE(all.size() == 4);
  CHECK(all[0].first == "f.factor_0");
  CHECK(all[0].second.shape == Dims{4, 8, 10});
  CHECK(all[0].second.init == Init::glorot_uniform);
  CHECK(all[0].second.fan_in == 8);
  CHECK(all[0].second.fan_out == 10);
  CHECK(all[1].second.shape == Dims{4, 14, 10});
  CHECK(all[2].second.shape == Dims{4, 6, 10});
  CHECK(all[3].first == "f.bias");
  CHECK(all[3].second.shape == Dims{10});
  auto def2 = load_graph_string(lmf_yaml({7, 13}, "rank: 4, units: 10, use_bias: false"), "t.yaml");
  CHECK(compile_graph(def2, builtin_ops()).all_weights().size() == 2);
}

TEST_CASE("low_rank_fusion attribute and input errors") {
  CHECK(compile_error(lmf_yaml({3, 4}, "units: 4")).find("rank") != std::string::npos);
  CHECK(compile_error(lmf_yaml({3, 4}, "rank: 4")).find("units") != std::string::npos);
  CHECK(compile_error(lmf_yaml({3, 4}, "rank: 0, units: 4")) != "");
  CHECK(compile_error(lmf_yaml({3, 4}, "rank: 2, units: -1")) != "");
  CHECK(compile_error(lmf_yaml({3, 4}, "rank: 2, units: 4, use_bais: false")).find("use_bias") !=
        std::string::npos);
  std::string e = compile_error(lmf_yaml({3}, "rank: 2, units: 4"));
  CHECK(e.find("at least 2 inputs") != std::string::npos);
  e = compile_error(
      "name: t\ninputs:\n  a: {shape: [4]}\n  b: {shape: [5, 4]}\nnodes:\n"
      "  - {name: f, op: low_rank_fusion, inputs: [a, b], rank: 2, units: 3}\noutputs: [f]\n");
  CHECK(e.find("rank-2 inputs [batch, features], but 'b' has shape (None, 5, 4)") !=
        std::string::npos);
  e = compile_error(
      "name: t\ninputs:\n  a: {shape: [4]}\n  b: {shape: [null]}\nnodes:\n"
      "  - {name: f, op: low_rank_fusion, inputs: [a, b], rank: 2, units: 3}\noutputs: [f]\n");
  CHECK(e.find("feature size of 'b' known") != std::string::npos);
  e = compile_error(
      "name: t\ninputs:\n  a: {shape: [4]}\n  b: {shape: [4], dtype: int32}\nnodes:\n"
      "  - {name: f, op: low_rank_fusion, inputs: [a, b], rank: 2, units: 3}\noutputs: [f]\n");
  CHECK(e.find("float32 inputs") != std::string::npos);
}

// ---- training: the gradient against finite differences of the naive reference ----

namespace {

TrainingNodeResult check_lmf_gradient(const std::vector<int64_t>& dims, int64_t batch, int64_t rank,
                                      int64_t units, bool use_bias, uint64_t seed,
                                      bool frozen = false, std::vector<bool> needs = {}) {
  INFO(fmt::format("dims {} batch {} rank {} units {} bias {}", dims.size(), batch, rank, units,
                   use_bias));
  TrainingNodeCase c;
  c.yaml = lmf_yaml(dims, fmt::format("rank: {}, units: {}, use_bias: {}", rank, units,
                                      use_bias ? "true" : "false"));
  c.frozen = frozen;
  c.needs_input_gradient = std::move(needs);
  for (size_t i = 0; i < dims.size(); ++i) {
    c.inputs.push_back(random_tensor({batch, dims[i]}, seed + i));
    c.weights[fmt::format("factor_{}", i)] =
        random_tensor({rank, dims[i] + 1, units}, seed + 100 + i, -0.7f, 0.7f);
  }
  if (use_bias) c.weights["bias"] = random_tensor({units}, seed + 200);
  const size_t n = dims.size();
  return check_gradients(c, [&](const auto& x, const auto& w) {
    const std::vector<std::vector<double>> factors(w.begin(), w.begin() + n);
    const std::vector<double> bias = use_bias ? w[n] : std::vector<double>{};
    return std::vector<std::vector<double>>{
        ref::low_rank_fusion(x, dims, batch, factors, bias, rank, units)};
  });
}

}  // namespace

TEST_CASE("low_rank_fusion gradient: two to four modalities, odd and round sizes") {
  uint64_t seed = 4000;
  for (int64_t batch : {1, 7})
    for (int64_t rank : {1, 4}) {
      check_lmf_gradient({7, 13}, batch, rank, 5, true, seed++);
      check_lmf_gradient({16, 1}, batch, rank, 16, false, seed++);
    }
  check_lmf_gradient({7, 13, 5}, 3, 3, 7, true, seed++);
  check_lmf_gradient({4, 4, 4, 4}, 2, 2, 5, false, seed++);
  check_lmf_gradient({32, 13, 8}, 4, 8, 13, true, seed++);
}

TEST_CASE("low_rank_fusion gradient: one input without a gradient, and a frozen node") {
  // the harness checks that the input without a gradient keeps its zeros
  check_lmf_gradient({7, 13, 5}, 3, 2, 4, true, 4400, false, {true, false, true});
  auto r = check_lmf_gradient({7, 13, 5}, 3, 2, 4, true, 4500, /*frozen=*/true);
  for (const Tensor& g : r.diff_weights)
    for (size_t i = 0; i < g.size(); ++i) REQUIRE(g.data<float>()[i] == 0.0f);
}
