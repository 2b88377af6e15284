// simple_rnn (Keras SimpleRNN) against a naive loop reference written here from the Keras
// formula h_t = activation(x_t W + h_{t-1} U + b), with Keras's mask rule (a masked step keeps
// the state; with return_sequences its output repeats the previous one, zeros before the first
// valid step). Inference: oneDNN vanilla_rnn_forward (tanh, relu, sigmoid; no mask or a
// right-padded one) and the C++ cell (other activations, masks with holes). Training: the C++
// backpropagation through time against finite differences of the same naive forward.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "engine/model.hpp"
#include "engine/plan.hpp"
#include "framework/compiler.hpp"
#include "framework/yaml_loader.hpp"
#include "layers/registry.hpp"
#include "tests/layers/gradient_check.hpp"
#include "tests/test_util.hpp"

using fg::Dims;
using fg::Tensor;
using fg::test::compile_error;

namespace {

double naive_activation(const std::string& name, double v) {
  if (name == "tanh") return std::tanh(v);
  if (name == "relu") return v > 0 ? v : 0.0;
  if (name == "sigmoid") return 1.0 / (1.0 + std::exp(-v));
  if (name == "linear") return v;
  if (name == "softsign") return v / (1.0 + std::fabs(v));
  throw std::runtime_error("test: no naive activation " + name);
}

struct NaiveArgs {
  int64_t batch = 1, steps = 1, features = 1, units = 1;
  bool return_sequences = false;
  std::string activation = "tanh";
  const uint8_t* mask = nullptr;  // [batch, steps] or nullptr
};

// The Keras SimpleRNN forward in double; bias may be nullptr (use_bias false).
template <typename T>
std::vector<double> naive_simple_rnn(const NaiveArgs& a, const T* x, const T* kernel,
                                     const T* recurrent, const T* bias) {
  const int64_t B = a.batch, S = a.steps, F = a.features, U = a.units;
  std::vector<double> out(static_cast<size_t>(B * (a.return_sequences ? S : 1) * U), 0.0);
  for (int64_t b = 0; b < B; ++b) {
    std::vector<double> h(static_cast<size_t>(U), 0.0), next(static_cast<size_t>(U));
    for (int64_t t = 0; t < S; ++t) {
      if (a.mask == nullptr || a.mask[b * S + t] != 0) {
        for (int64_t j = 0; j < U; ++j) {
          double sum = bias != nullptr ? static_cast<double>(bias[j]) : 0.0;
          for (int64_t f = 0; f < F; ++f)
            sum += static_cast<double>(x[(b * S + t) * F + f]) * kernel[f * U + j];
          for (int64_t i = 0; i < U; ++i) sum += h[i] * recurrent[i * U + j];
          next[j] = naive_activation(a.activation, sum);
        }
        h = next;
      }
      if (a.return_sequences)
        for (int64_t j = 0; j < U; ++j) out[(b * S + t) * U + j] = h[j];
    }
    if (!a.return_sequences)
      for (int64_t j = 0; j < U; ++j) out[b * U + j] = h[j];
  }
  return out;
}

struct Case {
  int64_t batch = 1, steps = 7, features = 3, units = 7;
  bool return_sequences = false;
  std::string activation = "tanh";
  bool use_bias = true;
  int mask = 0;  // 0 none, 1 right-padded, 2 with holes
  uint64_t seed = 1;
};

std::string describe(const Case& c) {
  return fmt::format("B={} T={} F={} units={} return_sequences={} {} bias={} mask={}", c.batch,
                     c.steps, c.features, c.units, c.return_sequences, c.activation, c.use_bias,
                     c.mask);
}

std::string attributes(int64_t units, bool return_sequences, const std::string& activation,
                       bool use_bias) {
  std::string attrs = fmt::format("units: {}", units);
  if (return_sequences) attrs += ", return_sequences: true";
  if (activation != "tanh") attrs += ", activation: " + activation;
  if (!use_bias) attrs += ", use_bias: false";
  return attrs;
}

// Right-padded: rows full, all masked, half (batch 1: two thirds). Holes: random, row 0 with a
// masked first and a valid last step, row 1 all masked.
std::vector<uint8_t> case_mask(const Case& c) {
  const int64_t B = c.batch, S = c.steps;
  std::vector<uint8_t> m(static_cast<size_t>(B * S), 1);
  if (c.mask == 1) {
    for (int64_t b = 0; b < B; ++b) {
      const int64_t len = B == 1 ? S - S / 3 : b % 3 == 0 ? S : b % 3 == 1 ? 0 : (S + 1) / 2;
      for (int64_t t = len; t < S; ++t) m[b * S + t] = 0;
    }
  } else if (c.mask == 2) {
    std::mt19937_64 g(c.seed + 99);
    for (auto& v : m) v = (g() % 3) != 0;
    if (S > 1) {
      m[0] = 0;
      m[S - 1] = 1;
    }
    if (B > 1)
      for (int64_t t = 0; t < S; ++t) m[S + t] = 0;
  }
  return m;
}

void check_forward(const Case& c) {
  INFO(describe(c));
  const int64_t U = c.units;
  const std::string attrs = attributes(U, c.return_sequences, c.activation, c.use_bias);
  std::map<std::string, Tensor> weights, inputs;
  const Tensor kernel = fg::test::random_tensor({c.features, U}, c.seed + 1, -0.5f, 0.5f);
  // |U| entries up to 1 / sqrt(units): a spectral radius near 0.6, so linear / relu stay bounded
  const float r = 1.f / std::sqrt(static_cast<float>(U));
  const Tensor recurrent = fg::test::random_tensor({U, U}, c.seed + 2, -r, r);
  const Tensor bias = fg::test::random_tensor({U}, c.seed + 3, -0.5f, 0.5f);
  weights["r.kernel"] = kernel;
  weights["r.recurrent_kernel"] = recurrent;
  if (c.use_bias) weights["r.bias"] = bias;
  std::string yaml;
  Tensor x;
  std::vector<uint8_t> mask;
  if (c.mask == 0) {
    yaml = fmt::format(
        "name: t\ninputs:\n  x: {{shape: [{}, {}]}}\nnodes:\n"
        "  - {{name: r, op: simple_rnn, input: x, {}}}\noutputs: [r]\n",
        c.steps, c.features, attrs);
    x = fg::test::random_tensor({c.batch, c.steps, c.features}, c.seed + 4);
    inputs["x"] = x;
  } else {  // ids -> embedding(mask_zero) -> simple_rnn; masked steps carry id 0
    const int vocab = 50;
    mask = case_mask(c);
    Tensor ids = fg::test::random_ints({c.batch, c.steps}, c.seed + 5, 1, vocab - 1);
    for (size_t i = 0; i < mask.size(); ++i)
      if (!mask[i]) ids.mutable_data<int32_t>()[i] = 0;
    const Tensor table = fg::test::random_tensor({vocab, c.features}, c.seed + 6);
    weights["e.embeddings"] = table;
    inputs["ids"] = ids;
    yaml = fmt::format(
        "name: t\ninputs:\n  ids: {{shape: [{}], dtype: int32}}\nnodes:\n"
        "  - {{name: e, op: embedding, input: ids, input_dim: {}, output_dim: {}, mask_zero: "
        "true}}\n  - {{name: r, op: simple_rnn, input: e, {}}}\noutputs: [r]\n",
        c.steps, vocab, c.features, attrs);
    x = Tensor(fg::DType::f32, {c.batch, c.steps, c.features});
    for (int64_t n = 0; n < c.batch * c.steps; ++n)
      for (int64_t f = 0; f < c.features; ++f)
        x.mutable_data<float>()[n * c.features + f] =
            table.data<float>()[ids.data<int32_t>()[n] * c.features + f];
  }
  NaiveArgs a;
  a.batch = c.batch, a.steps = c.steps, a.features = c.features, a.units = U;
  a.return_sequences = c.return_sequences;
  a.activation = c.activation;
  a.mask = mask.empty() ? nullptr : mask.data();
  const std::vector<double> want =
      naive_simple_rnn(a, x.data<float>(), kernel.data<float>(), recurrent.data<float>(),
                       c.use_bias ? bias.data<float>() : nullptr);
  const auto out = fg::test::run_yaml(yaml, inputs, weights);
  const Tensor& got = out.at("r");
  fg::test::check_shape(got, c.return_sequences ? Dims{c.batch, c.steps, U} : Dims{c.batch, U});
  fg::test::check_close(got, want, 1e-5, 1e-5);
}

Case make_case(int64_t batch, int64_t steps, int64_t features, int64_t units, bool seq,
               const std::string& activation = "tanh", int mask = 0) {
  Case c;
  c.batch = batch, c.steps = steps, c.features = features, c.units = units;
  c.return_sequences = seq;
  c.activation = activation;
  c.mask = mask;
  c.seed = static_cast<uint64_t>(batch * 1000 + steps * 100 + features * 10 + units);
  return c;
}

const std::vector<std::string> kActivations = {"tanh", "relu", "sigmoid", "linear"};

std::string one_node(const std::string& node, const std::string& shape = "[7, 3]") {
  return "name: t\ninputs:\n  x: {shape: " + shape + "}\nnodes:\n  - " + node + "\noutputs: [r]\n";
}

}  // namespace

TEST_CASE("simple_rnn matches the naive reference on odd and round shapes, every activation") {
  for (const std::string& act : kActivations)
    for (bool seq : {false, true}) {
      check_forward(make_case(7, 13, 5, 127, seq, act));
      check_forward(make_case(1, 7, 3, 7, seq, act));
      check_forward(make_case(3, 1, 13, 1, seq, act));
      check_forward(make_case(4, 16, 32, 64, seq, act));
    }
  check_forward(make_case(2, 9, 4, 6, true, "softsign"));  // any elementwise activation (C++)
}

TEST_CASE("simple_rnn with a right-padded mask keeps the state of the last valid step") {
  for (const std::string& act : kActivations)
    for (bool seq : {false, true}) {
      check_forward(make_case(7, 13, 5, 127, seq, act, 1));
      check_forward(make_case(1, 7, 16, 13, seq, act, 1));
      check_forward(make_case(3, 1, 3, 1, seq, act, 1));
    }
}

TEST_CASE("simple_rnn with a mask with holes skips the masked steps") {
  for (const std::string& act : kActivations)
    for (bool seq : {false, true}) {
      check_forward(make_case(7, 13, 5, 127, seq, act, 2));
      check_forward(make_case(1, 7, 16, 13, seq, act, 2));
      check_forward(make_case(3, 1, 3, 1, seq, act, 2));
    }
}

TEST_CASE("simple_rnn without bias") {
  for (const char* act : {"tanh", "linear"})
    for (int mask : {0, 2}) {
      Case c = make_case(7, 13, 5, 13, true, act, mask);
      c.use_bias = false;
      check_forward(c);
    }
}

TEST_CASE("simple_rnn runs oneDNN's vanilla RNN for tanh, relu, sigmoid and C++ otherwise") {
  auto impl = [](const std::string& activation) {
    auto graph = fg::test::compile_yaml(
        one_node("{name: r, op: simple_rnn, input: x, units: 5, activation: " + activation + "}"));
    fg::Model model(graph, fg::WeightStore::initialize(*graph, 1), fg::ModelOptions{});
    return fg::test::step_impl(*model.plan_for({{2, 7, 3}}), "r");
  };
  for (const char* act : {"tanh", "relu", "sigmoid"}) {
    CAPTURE(act);
    const std::string s = impl(act);
    CAPTURE(s);
    CHECK(s.find("c++ for masks with holes") != std::string::npos);  // oneDNN, C++ for holes
  }
  CHECK(impl("linear") == "c++");
}

TEST_CASE("simple_rnn weights shapes, Keras initialisers and flops") {
  for (bool bias : {true, false}) {
    auto def =
        fg::load_graph_string(one_node(std::string("{name: r, op: simple_rnn, input: x, units: 5") +
                                       (bias ? "}" : ", use_bias: false}")),
                              "t.yaml");
    auto graph = fg::compile_graph(def, fg::builtin_ops());
    auto w = graph.all_weights();
    REQUIRE(w.size() == (bias ? 3u : 2u));
    CHECK(w[0].first == "r.kernel");
    CHECK(fg::format_shape(w[0].second.shape) == "(3, 5)");
    CHECK(w[0].second.init == fg::Init::glorot_uniform);
    CHECK(w[0].second.fan_in == 3);
    CHECK(w[0].second.fan_out == 5);
    CHECK(w[1].first == "r.recurrent_kernel");
    CHECK(fg::format_shape(w[1].second.shape) == "(5, 5)");
    CHECK(w[1].second.init == fg::Init::orthogonal);
    if (bias) {
      CHECK(w[2].first == "r.bias");
      CHECK(fg::format_shape(w[2].second.shape) == "(5,)");
      CHECK(w[2].second.init == fg::Init::zeros);
    }
    auto stats = graph.node_stats(0, graph.bind({{2, 7, 3}}));
    CHECK(stats.flops == doctest::Approx(2.0 * 7 * (3 * 5 + 5 * 5)));
  }
}

TEST_CASE("simple_rnn attribute, input and weight errors") {
  auto err = [](const std::string& node) { return compile_error(one_node(node)); };
  CHECK(err("{name: r, op: simple_rnn, input: x}").find("units") != std::string::npos);
  CHECK(err("{name: r, op: simple_rnn, input: x, units: 0}").find("positive") != std::string::npos);
  CHECK(err("{name: r, op: simple_rnn, input: x, units: 4, activation: softmax}")
            .find("not elementwise") != std::string::npos);
  CHECK(err("{name: r, op: simple_rnn, input: x, units: 4, activation: tanhh}").find("tanh") !=
        std::string::npos);
  // the gated cells' attributes are not simple_rnn's
  CHECK(err("{name: r, op: simple_rnn, input: x, units: 4, recurrent_activation: sigmoid}")
            .find("recurrent_activation") != std::string::npos);
  CHECK(err("{name: r, op: simple_rnn, input: x, units: 4, reset_after: false}")
            .find("reset_after") != std::string::npos);
  CHECK(err("{name: r, op: simple_rnn, input: x, units: 4, dropout: 1.5}").find("dropout") !=
        std::string::npos);
  CHECK(err("{name: r, op: simple_rnn, input: x, units: 4, use_bias: perhaps}").find("use_bias") !=
        std::string::npos);
  CHECK(compile_error(one_node("{name: r, op: simple_rnn, input: x, units: 4}", "[7, 3, 2]"))
            .find("rank-3") != std::string::npos);

  // weights of the wrong shape: an fg::Error naming the weight and both shapes
  const std::string yaml = one_node("{name: r, op: simple_rnn, input: x, units: 4}");
  auto run_with = [&](const Dims& kernel, const Dims& recurrent, const Dims& bias) {
    return fg::test::error_of([&] {
      fg::test::run_yaml(yaml, {{"x", fg::test::random_tensor({2, 7, 3}, 1)}},
                         {{"r.kernel", fg::test::random_tensor(kernel, 2)},
                          {"r.recurrent_kernel", fg::test::random_tensor(recurrent, 3)},
                          {"r.bias", fg::test::random_tensor(bias, 4)}});
    });
  };
  std::string msg = run_with({3, 8}, {4, 4}, {4});
  CAPTURE(msg);
  CHECK(msg.find("kernel") != std::string::npos);
  CHECK(msg.find("(3, 8)") != std::string::npos);
  CHECK(msg.find("(3, 4)") != std::string::npos);
  msg = run_with({3, 4}, {4, 12}, {4});
  CHECK(msg.find("recurrent_kernel") != std::string::npos);
  CHECK(msg.find("(4, 12)") != std::string::npos);
  msg = run_with({3, 4}, {4, 4}, {2, 4});
  CHECK(msg.find("bias") != std::string::npos);
  CHECK(msg.find("(2, 4)") != std::string::npos);
}

TEST_CASE("simple_rnn with dropout > 0 infers and refuses training") {
  auto def =
      fg::load_graph_string(one_node("{name: r, op: simple_rnn, input: x, units: 4, dropout: 0.2, "
                                     "recurrent_dropout: 0.1}"),
                            "t.yaml");
  CHECK_NOTHROW(fg::compile_graph(def, fg::builtin_ops()));
  fg::test::TrainingNodeCase t;
  t.yaml = one_node("{name: r, op: simple_rnn, input: x, units: 4, dropout: 0.2}");
  t.inputs = {fg::test::random_tensor({2, 7, 3}, 1)};
  t.weights["kernel"] = fg::test::random_tensor({3, 4}, 2);
  t.weights["recurrent_kernel"] = fg::test::random_tensor({4, 4}, 3);
  t.weights["bias"] = fg::test::random_tensor({4}, 4);
  const std::string msg = fg::test::error_of([&] { fg::test::run_training_node(t, {}); });
  CHECK(msg.find("dropout") != std::string::npos);
  CHECK(msg.find("simple_rnn") != std::string::npos);
}

// ---- training: the gradient against finite differences of the naive forward ----

namespace {

struct GradientCase {
  int64_t batch = 1, steps = 5, features = 3, units = 7;
  bool return_sequences = false;
  std::string activation = "tanh";
  bool use_bias = true;
  bool frozen = false;
  std::vector<uint8_t> mask;  // [batch * steps], empty = none
  uint64_t seed = 1;
};

fg::test::TrainingNodeResult check_gradient(const GradientCase& c) {
  std::string m;
  for (uint8_t v : c.mask) m += v ? '1' : '0';
  INFO(fmt::format("B={} T={} F={} units={} return_sequences={} {} bias={} frozen={} mask={}",
                   c.batch, c.steps, c.features, c.units, c.return_sequences, c.activation,
                   c.use_bias, c.frozen, m.empty() ? "none" : m));
  const int64_t U = c.units;
  fg::test::TrainingNodeCase t;
  t.yaml = fmt::format(
      "name: t\ninputs:\n  x: {{shape: [{}, {}]}}\nnodes:\n"
      "  - {{name: r, op: simple_rnn, input: x, {}}}\noutputs: [r]\n",
      c.steps, c.features, attributes(U, c.return_sequences, c.activation, c.use_bias));
  t.inputs = {fg::test::random_tensor({c.batch, c.steps, c.features}, c.seed)};
  t.weights["kernel"] = fg::test::random_tensor({c.features, U}, c.seed + 1, -0.6f, 0.6f);
  const float r = 1.2f / std::sqrt(static_cast<float>(U));
  t.weights["recurrent_kernel"] = fg::test::random_tensor({U, U}, c.seed + 2, -r, r);
  if (c.use_bias) t.weights["bias"] = fg::test::random_tensor({U}, c.seed + 3, -0.5f, 0.5f);
  if (!c.mask.empty()) t.masks = {c.mask};
  t.frozen = c.frozen;
  return fg::test::check_gradients(t, [&](const auto& x, const auto& w) {
    NaiveArgs a;
    a.batch = c.batch, a.steps = c.steps, a.features = c.features, a.units = U;
    a.return_sequences = c.return_sequences;
    a.activation = c.activation;
    a.mask = c.mask.empty() ? nullptr : c.mask.data();
    return std::vector<std::vector<double>>{naive_simple_rnn(
        a, x[0].data(), w[0].data(), w[1].data(), c.use_bias ? w[2].data() : nullptr)};
  });
}

GradientCase gradient_case(int64_t batch, int64_t steps, int64_t features, int64_t units, bool seq,
                           const std::string& activation) {
  GradientCase c;
  c.batch = batch, c.steps = steps, c.features = features, c.units = units;
  c.return_sequences = seq;
  c.activation = activation;
  c.seed = static_cast<uint64_t>(batch * 1000 + steps * 100 + features * 10 + units);
  return c;
}

std::vector<uint8_t> rows(const std::vector<std::string>& patterns) {
  std::vector<uint8_t> m;
  for (const auto& r : patterns)
    for (char ch : r) m.push_back(ch == '1' ? 1 : 0);
  return m;
}

}  // namespace

TEST_CASE("simple_rnn gradient: odd and round shapes, both output modes, every activation") {
  for (const std::string& act : kActivations)
    for (bool seq : {false, true}) {
      check_gradient(gradient_case(1, 1, 3, 7, seq, act));
      check_gradient(gradient_case(7, 13, 5, 13, seq, act));
      check_gradient(gradient_case(3, 5, 16, 32, seq, act));
    }
  check_gradient(gradient_case(2, 13, 5, 127, true, "tanh"));
}

TEST_CASE("simple_rnn gradient with masks: right-padded and with holes") {
  const std::vector<std::vector<uint8_t>> masks = {
      rows({"11111", "00000", "11000"}),  // right-padded, one row all masked
      rows({"01101", "00000", "10011"})   // holes
  };
  for (const std::string& act : kActivations)
    for (bool seq : {false, true})
      for (const auto& mask : masks) {
        GradientCase c = gradient_case(3, 5, 7, 13, seq, act);
        c.mask = mask;
        check_gradient(c);
      }
}

TEST_CASE("simple_rnn gradient without bias, and frozen (no weight gradients)") {
  GradientCase c = gradient_case(3, 5, 3, 13, true, "tanh");
  c.use_bias = false;
  check_gradient(c);
  c.use_bias = true;
  c.frozen = true;
  auto r = check_gradient(c);
  for (const auto& g : r.diff_weights)
    for (size_t i = 0; i < g.size(); ++i) REQUIRE(g.data<float>()[i] == 0.0f);
}
