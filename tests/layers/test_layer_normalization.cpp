// layer_normalization against the naive reference (tests/reference/norm_merge.hpp).
#include <fmt/format.h>

#include <algorithm>

#include "framework/compiler.hpp"
#include "framework/yaml_loader.hpp"
#include "layers/registry.hpp"
#include "tests/layers/gradient_check.hpp"
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

struct LnCase {
  Dims shape;               // batch included
  std::string axis = "-1";  // as written in the YAML
  std::vector<int> axes;    // the normalized axes, non-negative (empty: last)
  double epsilon = 0.001;
  bool center = true, scale = true;
};

void check_ln(LnCase c, uint64_t seed) {
  CAPTURE(format_shape(c.shape));
  CAPTURE(c.axis);
  const int rank = static_cast<int>(c.shape.size());
  if (c.axes.empty()) c.axes = {rank - 1};
  Dims param;
  for (int a : c.axes) param.push_back(c.shape[a]);
  const std::string yaml = fmt::format(R"(
name: t
inputs:
  x: {{shape: {}}}
nodes:
  - {{name: ln, op: layer_normalization, input: x, axis: {}, epsilon: {}, center: {}, scale: {}}}
outputs: [ln]
)",
                                       dims_list(c.shape), c.axis, c.epsilon, c.center, c.scale);
  Tensor x = random_tensor(c.shape, seed, -3.f, 2.f);
  Tensor gamma = random_tensor(param, seed + 1, 0.5f, 1.5f);
  Tensor beta = random_tensor(param, seed + 2, -1.f, 1.f);
  std::map<std::string, Tensor> w;
  if (c.scale) w["ln.gamma"] = gamma;
  if (c.center) w["ln.beta"] = beta;
  auto out = run_yaml(yaml, {{"x", x}}, w);
  auto want = ref::layer_norm(to_doubles(x), c.shape, c.axes,
                              c.scale ? to_doubles(gamma) : std::vector<double>{},
                              c.center ? to_doubles(beta) : std::vector<double>{}, c.epsilon);
  check_shape(out.at("ln"), c.shape);
  check_close(out.at("ln"), want, 1e-5, 1e-5);
}

}  // namespace

TEST_CASE("layer_normalization last axis, odd and round sizes, rank 2 to 4") {
  uint64_t seed = 200;
  for (Dims shape : {Dims{1, 3}, Dims{5, 7}, Dims{5, 11, 13}, Dims{1, 9, 127}, Dims{5, 4, 6, 64},
                     Dims{1, 3, 5, 7}})
    check_ln({shape, "-1", {}}, seed++);
}

TEST_CASE("layer_normalization over trailing axes lists") {
  check_ln({{5, 6, 13}, "[-2, -1]", {1, 2}}, 21);
  check_ln({{2, 3, 5, 7}, "[1, 2, 3]", {1, 2, 3}}, 22);
  check_ln({{1, 3, 5, 7}, "[3, 2]", {2, 3}}, 23);
  check_ln({{5, 127}, "[-1]", {1}}, 24);
}

TEST_CASE("layer_normalization over a single middle axis") {
  check_ln({{5, 13, 7}, "1", {1}}, 31);
  check_ln({{1, 3, 7, 5}, "-2", {2}}, 32);
  check_ln({{5, 13, 7}, "1", {1}, 0.1, false, true}, 33);
}

TEST_CASE("layer_normalization epsilon, center and scale options") {
  check_ln({{5, 7}, "-1", {}, 1e-5}, 41);
  check_ln({{5, 6, 13}, "-1", {}, 0.5}, 42);
  check_ln({{5, 6, 13}, "-1", {}, 0.001, false, true}, 43);
  check_ln({{5, 6, 13}, "-1", {}, 0.001, true, false}, 44);
  check_ln({{1, 4, 127}, "[-2, -1]", {1, 2}, 0.001, false, false}, 45);
}

TEST_CASE("layer_normalization weights have the normalized dims' shape") {
  auto weights_of = [](const std::string& extra) {
    auto def = load_graph_string(fmt::format(R"(
name: t
inputs:
  x: {{shape: [6, 13]}}
nodes:
  - {{name: ln, op: layer_normalization, input: x{}}}
outputs: [ln]
)",
                                             extra));
    return compile_graph(def, builtin_ops()).all_weights();
  };
  auto w = weights_of("");
  REQUIRE(w.size() == 2);
  CHECK(w[0].first == "ln.gamma");
  CHECK(w[0].second.shape == Dims{13});
  CHECK(w[0].second.init == Init::ones);
  CHECK(w[1].first == "ln.beta");
  CHECK(w[1].second.init == Init::zeros);
  auto w2 = weights_of(", axis: [-2, -1]");
  REQUIRE(w2.size() == 2);
  CHECK(w2[0].second.shape == Dims{6, 13});
  auto w3 = weights_of(", axis: 1, scale: false");
  REQUIRE(w3.size() == 1);
  CHECK(w3[0].first == "ln.beta");
  CHECK(w3[0].second.shape == Dims{6});
}

TEST_CASE("layer_normalization errors") {
  auto yaml = [](const std::string& attrs, const std::string& input = "{shape: [3, 4, 13]}") {
    return fmt::format(
        "name: t\ninputs:\n  x: {}\nnodes:\n  - {{name: ln, op: layer_normalization, "
        "input: x{}}}\noutputs: [ln]\n",
        input, attrs);
  };
  std::string e = compile_error(yaml(", axis: [1, 3]"));
  CHECK(e.find("trailing axes") != std::string::npos);
  CHECK(e.find("[1, 3]") != std::string::npos);
  CHECK(compile_error(yaml(", axis: [1, 2]")).find("trailing axes") != std::string::npos);
  CHECK(compile_error(yaml(", axis: 4")).find("axis 4 is out of range") != std::string::npos);
  CHECK(compile_error(yaml(", axis: [-1, 5]")).find("out of range") != std::string::npos);
  CHECK(compile_error(yaml(", axis: [-1, 3]")).find("listed twice") != std::string::npos);
  CHECK(compile_error(yaml(", axis: 0")).find("batch axis") != std::string::npos);
  CHECK(compile_error(yaml(", axis: []")).find("non-empty") != std::string::npos);
  CHECK(compile_error(yaml(", axis: relu")).find("axis") != std::string::npos);
  CHECK(compile_error(yaml(", epsilon: 0")).find("epsilon must be > 0") != std::string::npos);
  CHECK(compile_error(yaml("", "{shape: [13], dtype: int32}")).find("float32") !=
        std::string::npos);
  CHECK(compile_error(yaml(", axis: [2, 3]")) == "");
}

// ---- gradients (Op::compile_training) ----

namespace {

TrainingNodeResult check_ln_gradient(LnCase c, uint64_t seed, bool frozen = false,
                                     bool masked = false) {
  CAPTURE(format_shape(c.shape));
  CAPTURE(c.axis);
  CAPTURE(c.center);
  CAPTURE(c.scale);
  const int rank = static_cast<int>(c.shape.size());
  if (c.axes.empty()) c.axes = {rank - 1};
  Dims param;
  for (int a : c.axes) param.push_back(c.shape[a]);
  TrainingNodeCase t;
  t.yaml = fmt::format(
      "name: t\ninputs:\n  x: {{shape: {}}}\nnodes:\n  - {{name: ln, op: layer_normalization, "
      "input: x, axis: {}, epsilon: {}, center: {}, scale: {}}}\noutputs: [ln]\n",
      dims_list(c.shape), c.axis, c.epsilon, c.center, c.scale);
  t.inputs = {random_tensor(c.shape, seed, -3.f, 2.f)};
  if (c.scale) t.weights["gamma"] = random_tensor(param, seed + 1, 0.5f, 1.5f);
  if (c.center) t.weights["beta"] = random_tensor(param, seed + 2, -1.f, 1.f);
  t.frozen = frozen;
  if (masked) {
    std::vector<uint8_t> m(static_cast<size_t>(c.shape[0] * c.shape[1]), 1);
    m[0] = 0;
    t.masks = {m};
  }
  return check_gradients(t, [&](const auto& x, const auto& w) {
    size_t i = 0;
    const std::vector<double> gamma = c.scale ? w[i++] : std::vector<double>{};
    const std::vector<double> beta = c.center ? w[i] : std::vector<double>{};
    return std::vector<std::vector<double>>{
        ref::layer_norm(x[0], c.shape, c.axes, gamma, beta, c.epsilon)};
  });
}

}  // namespace

TEST_CASE("layer_normalization gradient: last axis, odd and round sizes") {
  uint64_t seed = 300;
  for (Dims shape : {Dims{1, 3}, Dims{7, 13}, Dims{4, 127}, Dims{5, 11, 13}, Dims{2, 4, 64}})
    check_ln_gradient({shape, "-1", {}}, seed++);
}

TEST_CASE("layer_normalization gradient: trailing axes lists and a single middle axis") {
  check_ln_gradient({{5, 6, 13}, "[-2, -1]", {1, 2}}, 51);
  check_ln_gradient({{2, 3, 5, 7}, "[1, 2, 3]", {1, 2, 3}}, 52);
  check_ln_gradient({{5, 13, 7}, "1", {1}}, 53);
  check_ln_gradient({{2, 3, 7, 5}, "-2", {2}}, 54);
}

TEST_CASE("layer_normalization gradient: center / scale off, frozen, masked") {
  check_ln_gradient({{5, 6, 13}, "-1", {}, 0.001, false, true}, 61);
  check_ln_gradient({{5, 6, 13}, "-1", {}, 0.001, true, false}, 62);
  check_ln_gradient({{5, 13, 7}, "1", {1}, 0.1, false, false}, 63);
  auto r = check_ln_gradient({{7, 13}, "-1", {}}, 64, /*frozen=*/true);
  for (const Tensor& g : r.diff_weights)
    for (size_t i = 0; i < g.size(); ++i) REQUIRE(g.data<float>()[i] == 0.0f);
  check_ln_gradient({{3, 7, 13}, "-1", {}}, 65, false, /*masked=*/true);
}
