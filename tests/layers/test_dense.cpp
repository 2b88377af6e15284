// dense against the naive reference: ranks 2-4, odd and round sizes, batch 1 and 4, with and
// without bias, every activation fused; shape rules, weights, FLOPs and errors.
#include <fmt/format.h>

#include "engine/model.hpp"
#include "engine/weights.hpp"
#include "framework/compiler.hpp"
#include "framework/op.hpp"
#include "framework/registry.hpp"
#include "framework/yaml_loader.hpp"
#include "layers/registry.hpp"
#include "tests/layers/gradient_check.hpp"
#include "tests/reference/dense_act.hpp"
#include "tests/test_util.hpp"

using namespace fg;
using namespace fg::test;

namespace {

std::string shape_list(const Dims& per_sample) {
  std::string s;
  for (size_t i = 0; i < per_sample.size(); ++i)
    s += (i ? ", " : "") + std::to_string(per_sample[i]);
  return "[" + s + "]";
}

std::string dense_yaml(const Dims& per_sample, int64_t units, const std::string& act, bool bias) {
  return fmt::format(
      "name: t\ninputs:\n  x: {{shape: {}}}\nnodes:\n  - {{name: d, op: dense, input: x, units: "
      "{}, "
      "activation: {}, use_bias: {}}}\noutputs: [d]\n",
      shape_list(per_sample), units, act, bias ? "true" : "false");
}

// Runs one dense node and compares with the reference.
void check_dense(int64_t batch, const Dims& per_sample, int64_t units, const std::string& act,
                 bool bias, uint64_t seed, double tol = 1e-5) {
  Dims shape{batch};
  shape.insert(shape.end(), per_sample.begin(), per_sample.end());
  const int64_t in = per_sample.back();
  Tensor x = random_tensor(shape, seed);
  Tensor kernel = random_tensor({in, units}, seed + 1, -0.5f, 0.5f);
  Tensor b = random_tensor({units}, seed + 2);
  std::map<std::string, Tensor> weights{{"d.kernel", kernel}};
  if (bias) weights["d.bias"] = b;
  auto out = run_yaml(dense_yaml(per_sample, units, act, bias), {{"x", x}}, weights);
  Dims want_shape = shape;
  want_shape.back() = units;
  check_shape(out.at("d"), want_shape);
  auto want = ref::dense(to_doubles(x), shape, to_doubles(kernel),
                         bias ? to_doubles(b) : std::vector<double>{}, units, act);
  check_close(out.at("d"), want, tol, tol);
}

}  // namespace

TEST_CASE("dense rank 2 odd and round sizes against the reference") {
  for (int64_t batch : {1, 4})
    for (int64_t in : {7, 13, 127, 256})
      for (int64_t units : {1, 5, 10, 33}) {
        CAPTURE(batch);
        CAPTURE(in);
        CAPTURE(units);
        check_dense(batch, {in}, units, "linear", true, 100 + in * 7 + units);
      }
}

TEST_CASE("dense without bias") {
  for (int64_t batch : {1, 4}) {
    check_dense(batch, {13}, 5, "linear", false, 7);
    check_dense(batch, {7, 13}, 33, "relu", false, 8);
  }
}

TEST_CASE("dense rank 3 and rank 4 act on the last axis") {
  for (int64_t batch : {1, 4}) {
    CAPTURE(batch);
    check_dense(batch, {7, 13}, 10, "linear", true, 21);
    check_dense(batch, {5, 127}, 33, "relu", true, 22);
    check_dense(batch, {3, 5, 7}, 5, "tanh", true, 23);
    check_dense(batch, {2, 4, 256}, 1, "sigmoid", true, 24);
  }
}

TEST_CASE("dense with every activation fused") {
  for (const auto& act : activation_names()) {
    CAPTURE(act);
    for (int64_t batch : {1, 4}) {
      check_dense(batch, {13}, 10, act, true, 31);
      check_dense(batch, {7, 127}, 5, act, true, 32);
    }
  }
}

TEST_CASE("dense shape rules weights and flops") {
  auto def = load_graph_string(
      "name: t\ninputs:\n  x: {shape: [null, 13]}\nnodes:\n"
      "  - {name: d, op: dense, input: x, units: 5}\n"
      "  - {name: e, op: dense, input: d, units: 3, use_bias: false}\noutputs: [e]\n");
  auto g = compile_graph(def, builtin_ops());
  const auto& types = g.tensors();
  CHECK(format_shape(types[g.find_tensor("d")].type.shape) == "(None, None, 5)");
  CHECK(format_shape(types[g.find_tensor("e")].type.shape) == "(None, None, 3)");
  auto all = g.all_weights();
  REQUIRE(all.size() == 3);
  std::map<std::string, WeightSpec> specs(all.begin(), all.end());
  CHECK(specs.at("d.kernel").shape == Dims{13, 5});
  CHECK(specs.at("d.kernel").init == Init::glorot_uniform);
  CHECK(specs.at("d.kernel").fan_in == 13);
  CHECK(specs.at("d.kernel").fan_out == 5);
  CHECK(specs.at("d.bias").shape == Dims{5});
  CHECK(specs.at("d.bias").init == Init::zeros);
  CHECK(specs.count("e.bias") == 0);
  // FLOPs per sample: 2 * in * units * positions, with concrete dims.
  auto bound = g.bind({{2, 7, 13}});
  size_t di = 0;
  for (size_t i = 0; i < g.nodes().size(); ++i)
    if (g.nodes()[i].def->name == "d") di = i;
  CHECK(g.node_stats(di, bound).flops == doctest::Approx(2.0 * 13 * 5 * 7));
  CHECK(g.node_stats(di, bound).params == 13 * 5 + 5);
}

TEST_CASE("dense passes a mask on") {
  auto op = builtin_ops().find("dense")->create();
  CHECK(op->supports_masking());
  NodeDef node;
  node.name = "d";
  node.op = "dense";
  node.attrs["units"].value = Value{Value::Kind::scalar, "4"};
  AttrReader reader(node);
  op->parse(reader);
  TensorType in{{kDynamic, 7, 3}, DType::f32, true};
  InferContext ctx(node, {in}, {"x"});
  auto out = op->infer(ctx);
  REQUIRE(out.size() == 1);
  CHECK(out[0].masked);
  CHECK(out[0].shape == Dims{kDynamic, 7, 4});
}

TEST_CASE("dense errors") {
  auto yaml = [](const std::string& input, const std::string& attrs) {
    return fmt::format(
        "name: t\ninputs:\n  x: {}\nnodes:\n  - {{name: d, op: dense, input: x, {}}}\n"
        "outputs: [d]\n",
        input, attrs);
  };
  std::string e = compile_error(yaml("{shape: [7]}", "units: 0"));
  CHECK(e.find("'units' must be a positive integer, got 0") != std::string::npos);
  CHECK(e.find("test.yaml:5:") != std::string::npos);
  e = compile_error(yaml("{shape: [7]}", "activation: relu"));
  CHECK(e.find("missing required attribute 'units'") != std::string::npos);
  e = compile_error(yaml("{shape: [7], dtype: int32}", "units: 3"));
  CHECK(e.find("float32") != std::string::npos);
  CHECK(e.find("embedding") != std::string::npos);
  e = compile_error(yaml("{shape: [7]}", "units: 3, activation: rellu"));
  CHECK(e.find("unknown activation 'rellu'") != std::string::npos);
  CHECK(e.find("did you mean 'relu'?") != std::string::npos);
  e = compile_error(yaml("{shape: [null]}", "units: 3"));
  CHECK(e.find("last dimension") != std::string::npos);
  e = compile_error(yaml("{shape: [7]}", "units: 3, use_bias: maybe"));
  CHECK(e.find("'use_bias' must be true or false") != std::string::npos);
  e = compile_error(yaml("{shape: [7]}", "units: 3, unit: 4"));
  CHECK(!e.empty());
  CHECK(compile_error(yaml("{shape: [7]}", "units: 3")) == "");
}

TEST_CASE("dense rank 5 input") {
  check_dense(2, {2, 3, 2, 13}, 5, "relu", true, 41);
}

TEST_CASE("dense in one model at several batch sizes and lengths") {
  // One Model, several plans: the prepacked kernel is shared between them (and must stay right).
  auto def = load_graph_string(
      "name: t\ninputs:\n  x: {shape: [13]}\n  s: {shape: [null, 13]}\nnodes:\n"
      "  - {name: d, op: dense, input: x, units: 33, activation: gelu}\n"
      "  - {name: e, op: dense, input: s, units: 10, activation: softmax}\noutputs: [d, e]\n");
  auto graph = std::make_shared<CompiledGraph>(compile_graph(def, builtin_ops()));
  Tensor kd = random_tensor({13, 33}, 1), bd = random_tensor({33}, 2);
  Tensor ke = random_tensor({13, 10}, 3), be = random_tensor({10}, 4);
  WeightStore store;
  store.set("d.kernel", kd);
  store.set("d.bias", bd);
  store.set("e.kernel", ke);
  store.set("e.bias", be);
  Model model(graph, std::move(store));
  for (auto [batch, len] : {std::pair<int64_t, int64_t>{1, 7}, {4, 13}, {1, 127}, {4, 7}}) {
    CAPTURE(batch);
    CAPTURE(len);
    Tensor x = random_tensor({batch, 13}, 10 + batch),
           s = random_tensor({batch, len, 13}, 20 + len);
    auto out = model.run({{"x", x}, {"s", s}});
    check_close(out.at("d"),
                ref::dense(to_doubles(x), {batch, 13}, to_doubles(kd), to_doubles(bd), 33, "gelu"));
    check_close(out.at("e"), ref::dense(to_doubles(s), {batch, len, 13}, to_doubles(ke),
                                        to_doubles(be), 10, "softmax"));
  }
}

// ---- training: the gradient against finite differences of the naive reference ----

namespace {

void check_dense_gradient(const Dims& shape, int64_t units, const std::string& act, bool bias,
                          bool logits = false) {
  Dims per_sample(shape.begin() + 1, shape.end());
  const int64_t in = shape.back();
  TrainingNodeCase c;
  c.yaml = dense_yaml(per_sample, units, act, bias);
  c.inputs = {random_tensor(shape, 3)};
  c.weights["kernel"] = random_tensor({in, units}, 4, -0.5f, 0.5f);
  if (bias) c.weights["bias"] = random_tensor({units}, 5);
  c.output_logits = logits;
  const std::string naive_act = logits ? "linear" : act;
  check_gradients(c, [&](const auto& x, const auto& w) {
    return std::vector<std::vector<double>>{
        ref::dense(x[0], shape, w[0], bias ? w[1] : std::vector<double>{}, units, naive_act)};
  });
}

}  // namespace

TEST_CASE("dense gradient: odd and round shapes, every rank, with and without bias") {
  for (const Dims& shape : {Dims{7, 13}, Dims{4, 127}, Dims{1, 32}, Dims{3, 5, 7}, Dims{2, 3, 4, 13}})
    for (int64_t units : {1, 7, 16})
      for (bool bias : {true, false}) {
        CAPTURE(format_shape(shape));
        CAPTURE(units);
        CAPTURE(bias);
        check_dense_gradient(shape, units, "linear", bias);
      }
}

TEST_CASE("dense gradient through each activation") {
  for (const std::string act : {"relu", "sigmoid", "tanh", "elu", "softplus", "swish", "gelu",
                                "softmax", "log_softmax", "relu6", "mish"}) {
    CAPTURE(act);
    check_dense_gradient({5, 13}, 7, act, true);
  }
}

TEST_CASE("dense with its softmax taken by the loss writes and differentiates the logits") {
  check_dense_gradient({7, 13}, 10, "softmax", true, /*logits=*/true);
  TrainingNodeCase c;
  c.yaml = dense_yaml({3}, 2, "softmax", true);
  c.inputs = {make_tensor({1, 3}, {1, 2, 3})};
  c.weights["kernel"] = make_tensor({3, 2}, {1, 0, 0, 1, 1, 1});
  c.weights["bias"] = make_tensor({2}, {0.5f, 0});
  c.output_logits = true;
  auto r = run_training_node(c, {});
  check_close(r.outputs[0], {4.5, 5});  // 1 + 3 + 0.5, 2 + 3: no softmax
}

TEST_CASE("dense gradient: a frozen dense passes the input gradient and writes no weight gradient") {
  TrainingNodeCase c;
  c.yaml = dense_yaml({13}, 7, "relu", true);
  c.inputs = {random_tensor({5, 13}, 1)};
  c.weights["kernel"] = random_tensor({13, 7}, 2);
  c.weights["bias"] = random_tensor({7}, 3);
  c.frozen = true;
  auto r = check_gradients(c, [&](const auto& x, const auto& w) {
    return std::vector<std::vector<double>>{ref::dense(x[0], {5, 13}, w[0], w[1], 7, "relu")};
  });
  for (const Tensor& g : r.diff_weights)
    for (size_t i = 0; i < g.size(); ++i) REQUIRE(g.data<float>()[i] == 0.0f);
}
