// activation: every Keras activation against its formula, ranks 2-4, batch 1 and 4; gelu
// approximate; errors.
#include <fmt/format.h>

#include "framework/op.hpp"
#include "framework/registry.hpp"
#include "layers/registry.hpp"
#include "tests/layers/gradient_check.hpp"
#include "tests/reference/dense_act.hpp"
#include "tests/test_util.hpp"

using namespace fg;
using namespace fg::test;

namespace {
std::string act_yaml(const std::string& shape, const std::string& attrs) {
  return fmt::format(
      "name: t\ninputs:\n  x: {{shape: {}}}\nnodes:\n  - {{name: a, op: activation, input: x, "
      "{}}}\n"
      "outputs: [a]\n",
      shape, attrs);
}
}  // namespace

TEST_CASE("activation matches every formula") {
  struct Case {
    std::string list;
    Dims per;
  };
  for (const auto& act : activation_names())
    for (const Case& c :
         {Case{"[13]", {13}}, Case{"[7, 127]", {7, 127}}, Case{"[3, 5, 8]", {3, 5, 8}}})
      for (int64_t batch : {1, 4}) {
        CAPTURE(act);
        CAPTURE(c.list);
        CAPTURE(batch);
        Dims shape{batch};
        shape.insert(shape.end(), c.per.begin(), c.per.end());
        Tensor x = random_tensor(shape, 77 + batch, -4.f, 4.f);
        auto out = run_yaml(act_yaml(c.list, "activation: " + act), {{"x", x}}, {});
        check_shape(out.at("a"), shape);
        check_close(out.at("a"), ref::apply_activation(act, to_doubles(x), shape), 1e-5, 1e-5);
      }
}

TEST_CASE("activation edge values") {
  // Large magnitudes: saturation without NaN or overflow.
  Tensor x = make_tensor({1, 8}, {-30.f, -6.f, -1e-3f, 0.f, 1e-3f, 6.f, 30.f, 80.f});
  for (const auto& act : activation_names()) {
    CAPTURE(act);
    auto out = run_yaml(act_yaml("[8]", "activation: " + act), {{"x", x}}, {});
    check_close(out.at("a"), ref::apply_activation(act, to_doubles(x), {1, 8}), 1e-5, 1e-5);
  }
}

TEST_CASE("activation gelu approximate uses the tanh form") {
  Tensor x = random_tensor({4, 127}, 5, -4.f, 4.f);
  auto out = run_yaml(act_yaml("[127]", "activation: gelu, approximate: true"), {{"x", x}}, {});
  check_close(out.at("a"), ref::apply_activation("gelu", to_doubles(x), {4, 127}, true), 1e-5,
              1e-5);
  // ... which differs from the exact form the default uses.
  auto exact = run_yaml(act_yaml("[127]", "activation: gelu"), {{"x", x}}, {});
  check_close(exact.at("a"), ref::apply_activation("gelu", to_doubles(x), {4, 127}), 1e-5, 1e-5);
  double diff = 0;
  for (size_t i = 0; i < x.size(); ++i)
    diff = std::max(
        diff, double(std::fabs(out.at("a").data<float>()[i] - exact.at("a").data<float>()[i])));
  CHECK(diff > 1e-4);
}

TEST_CASE("activation errors") {
  std::string e = compile_error(act_yaml("[7]", "activation: rellu"));
  CHECK(e.find("unknown activation 'rellu'") != std::string::npos);
  CHECK(e.find("did you mean 'relu'?") != std::string::npos);
  CHECK(e.find("test.yaml:5:") != std::string::npos);
  e = compile_error(act_yaml("[7]", "approximate: true"));
  CHECK(e.find("missing required attribute 'activation'") != std::string::npos);
  e = compile_error(act_yaml("[7]", "activation: relu, approximate: true"));
  CHECK(e.find("only applies to gelu") != std::string::npos);
  e = compile_error(
      "name: t\ninputs:\n  x: {shape: [7], dtype: int32}\nnodes:\n"
      "  - {name: a, op: activation, input: x, activation: relu}\noutputs: [a]\n");
  CHECK(e.find("float32") != std::string::npos);
  CHECK(builtin_ops().find("activation")->create()->supports_masking());
}

TEST_CASE("activation on a large tensor uses the threaded paths") {
  Tensor x = random_tensor({4, 127, 256}, 12, -4.f, 4.f);
  for (const std::string act : {"softsign", "selu", "log_softmax"}) {
    CAPTURE(act);
    auto out = run_yaml(act_yaml("[127, 256]", "activation: " + act), {{"x", x}}, {}, 2);
    check_close(out.at("a"), ref::apply_activation(act, to_doubles(x), {4, 127, 256}), 1e-5, 1e-5);
  }
}

// ---- gradients (Op::compile_training) ----

namespace {

std::string shape_yaml(const Dims& shape) {  // per-sample dims
  std::string s = "[";
  for (size_t i = 1; i < shape.size(); ++i) s += (i > 1 ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

void check_activation_gradient(const Dims& shape, const std::string& act, bool approximate = false,
                               bool logits = false, bool masked = false) {
  CAPTURE(act);
  CAPTURE(format_shape(shape));
  TrainingNodeCase c;
  c.yaml = act_yaml(shape_yaml(shape),
                    fmt::format("activation: {}{}", act, approximate ? ", approximate: true" : ""));
  // relu6: both kinks (0 and 6) inside the range; every other one around 0.
  c.inputs = {act == "relu6" ? random_tensor(shape, 3, -3.f, 8.f)
                             : random_tensor(shape, 3, -2.f, 2.f)};
  if (masked) {
    std::vector<uint8_t> m(static_cast<size_t>(shape[0] * shape[1]), 1);
    m[1] = 0;
    c.masks = {m};
  }
  c.output_logits = logits;
  const bool final = act == "softmax" || act == "sigmoid";  // the ones the loss takes
  const std::string naive = logits && final ? "linear" : act;
  GradientTolerance tol;
  tol.max_checked = 150;  // keeps the 60 cases fast
  check_gradients(
      c,
      [&](const auto& x, const auto&) {
        return std::vector<std::vector<double>>{
            ref::apply_activation(naive, x[0], shape, approximate)};
      },
      tol);
}

}  // namespace

const char* const kEveryActivation[] = {"linear", "relu", "relu6",    "sigmoid",  "tanh",
                                        "elu",    "selu", "softplus", "softsign", "swish",
                                        "silu",   "gelu", "mish",     "softmax",  "log_softmax"};

TEST_CASE("activation gradient: every activation, odd shapes") {
  for (const Dims& shape : {Dims{7, 13}, Dims{2, 3, 5}})
    for (const std::string act : kEveryActivation) check_activation_gradient(shape, act);
  check_activation_gradient({5, 13}, "gelu", /*approximate=*/true);
}

TEST_CASE("activation gradient: every activation, a long row and a round one") {
  for (const Dims& shape : {Dims{4, 127}, Dims{1, 32}})
    for (const std::string act : kEveryActivation) check_activation_gradient(shape, act);
}

TEST_CASE("activation gradient: softmax and sigmoid taken by the loss pass the logits") {
  CHECK(builtin_ops().find("activation")->create()->has_gradient());
  for (const std::string act : {"softmax", "sigmoid"})
    check_activation_gradient({7, 13}, act, false, true);
  TrainingNodeCase c;
  c.yaml = act_yaml("[3]", "activation: softmax");
  c.inputs = {make_tensor({1, 3}, {1, 2, 3})};
  c.output_logits = true;
  check_close(run_training_node(c, {}).outputs[0], {1, 2, 3}, 0, 0);
  // relu is no final activation: the loss does not take it, output_logits changes nothing.
  check_activation_gradient({7, 13}, "relu", false, true);
}

TEST_CASE("activation gradient: a masked input passes its mask and the gradient ignores it") {
  check_activation_gradient({3, 7, 5}, "tanh", false, false, /*masked=*/true);
}
