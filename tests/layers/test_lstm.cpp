// lstm against the naive Keras-formula reference (tests/reference/recurrent.hpp).
#include <doctest/doctest.h>
#include <fmt/format.h>

#include "engine/model.hpp"
#include "framework/compiler.hpp"
#include "framework/yaml_loader.hpp"
#include "layers/recurrent.hpp"
#include "layers/registry.hpp"
#include "tests/layers/recurrent_gradient.hpp"
#include "tests/layers/recurrent_test_graph.hpp"

using fg::test::check_rnn;
using fg::test::compile_error;
using fg::test::RnnCase;

namespace {

RnnCase lstm_case(int64_t batch, int64_t steps, int64_t features, int64_t units, bool seq,
                  int mask = 0) {
  RnnCase c;
  c.lstm = true;
  c.batch = batch;
  c.steps = steps;
  c.features = features;
  c.units = units;
  c.return_sequences = seq;
  c.mask = mask;
  c.seed = static_cast<uint64_t>(batch * 1000 + steps * 100 + features * 10 + units);
  return c;
}

const std::string kHeader = "name: t\ninputs:\n  x: {shape: [7, 3]}\nnodes:\n";

std::string one_node(const std::string& node) {
  return kHeader + "  - " + node + "\noutputs: [r]\n";
}

// impl_info() of the optimized plan's lstm step for these sizes: "matmul ... + c++ loop" for the
// projected path, oneDNN lstm_forward's implementation name otherwise.
std::string lstm_impl(int64_t batch, int64_t steps, int64_t features, int64_t units,
                      const std::string& extra_attrs = "") {
  auto graph = fg::test::compile_yaml(
      fmt::format("name: t\ninputs:\n  x: {{shape: [{}, {}]}}\nnodes:\n  - {{name: r, op: lstm, "
                  "input: x, units: {}{}}}\noutputs: [r]\n",
                  steps, features, units, extra_attrs));
  fg::WeightStore weights = fg::WeightStore::initialize(*graph, 1);
  fg::Model model(graph, weights, fg::ModelOptions{});
  return fg::test::step_impl(*model.plan_for({{batch, steps, features}}), "r");
}

bool projected_impl(const std::string& impl) {
  return impl.rfind("matmul", 0) == 0;
}

}  // namespace

TEST_CASE("lstm picks the projected path for small batch x units, lstm_forward beyond") {
  using fg::layers::lstm_uses_projected_path;
  CHECK(lstm_uses_projected_path(1, 32));
  CHECK(lstm_uses_projected_path(32, 32));
  CHECK_FALSE(lstm_uses_projected_path(33, 32));
  CHECK(lstm_uses_projected_path(8, 64));
  CHECK_FALSE(lstm_uses_projected_path(9, 64));
  CHECK(lstm_uses_projected_path(2, 127));
  CHECK_FALSE(lstm_uses_projected_path(3, 127));
  CHECK(lstm_uses_projected_path(2, 128));
  CHECK_FALSE(lstm_uses_projected_path(1, 129));
  // The kernel follows the rule (lstm_forward compiles the projected path too only for a masked
  // input, for masks with holes); other activations always take the projected path.
  CHECK(projected_impl(lstm_impl(1, 100, 64, 32)));
  CHECK(projected_impl(lstm_impl(2, 13, 13, 127)));
  const std::string onednn = lstm_impl(3, 13, 13, 127);
  CAPTURE(onednn);
  CHECK_FALSE(projected_impl(onednn));
  CHECK(onednn.find("matmul") == std::string::npos);
  CHECK(projected_impl(lstm_impl(40, 7, 3, 32, ", recurrent_activation: hard_sigmoid")));
}

TEST_CASE("lstm's projected path matches the reference on odd shapes, masks and outputs") {
  // (batch, units) pairs on the projected side of the rule.
  const std::pair<int64_t, int64_t> sizes[] = {{1, 7},  {3, 7},   {1, 13},
                                               {3, 13}, {1, 127}, {2, 127}};
  for (bool seq : {false, true})
    for (auto [batch, units] : sizes)
      for (int64_t steps : {1, 13}) {
        REQUIRE(fg::layers::lstm_uses_projected_path(batch, units));
        const int64_t features = units == 127 ? 13 : 127;
        for (int mask : {0, 1, 2})
          for (bool zero_output : {false, true}) {
            if (mask == 0 && zero_output) continue;
            RnnCase c = lstm_case(batch, steps, features, units, seq, mask);
            c.zero_output_for_mask = zero_output;
            check_rnn(c);
          }
      }
}

TEST_CASE("lstm's projected path: saturated gates and other activations") {
  // Inputs up to +-30: preactivations far into the saturated (and clamped) range of tanh and
  // sigmoid, and through every range of the vectorised exp.
  for (float range : {4.f, 30.f})
    for (int64_t units : {7, 13, 32}) {
      RnnCase c = lstm_case(1, 13, 13, units, true);
      c.input_range = range;
      check_rnn(c);
    }
  for (const char* act : {"relu", "softsign", "tanh"})
    for (const char* rec : {"hard_sigmoid", "sigmoid", "hard_sigmoid_keras3"}) {
      RnnCase c = lstm_case(3, 13, 7, 13, true, 2);
      c.activation = act;
      c.recurrent_activation = rec;
      check_rnn(c);
      c.mask = 0;
      c.batch = 1;
      check_rnn(c);
    }
}

TEST_CASE("lstm's lstm_forward path (large batch x units) matches the reference") {
  for (bool seq : {false, true})
    for (int mask : {0, 1, 2}) {
      // Holes: the kernel compiled for lstm_forward runs the projected path for that call.
      check_rnn(lstm_case(3, 13, 13, 127, seq, mask));
      check_rnn(lstm_case(40, 7, 3, 32, seq, mask));
    }
}

TEST_CASE("lstm matches the reference on odd and round shapes without a mask") {
  for (bool seq : {false, true}) {
    check_rnn(lstm_case(1, 7, 3, 7, seq));
    check_rnn(lstm_case(3, 7, 3, 1, seq));
    check_rnn(lstm_case(1, 1, 64, 32, seq));
    check_rnn(lstm_case(3, 1, 127, 13, seq));
    check_rnn(lstm_case(3, 100, 64, 32, seq));
    check_rnn(lstm_case(1, 100, 127, 13, seq));
    check_rnn(lstm_case(3, 7, 127, 1, seq));
  }
}

TEST_CASE("lstm with a right-padded mask keeps the state of the last valid step") {
  for (bool seq : {false, true}) {
    check_rnn(lstm_case(3, 7, 3, 7, seq, 1));  // rows: full, all masked, half
    check_rnn(lstm_case(1, 7, 64, 13, seq, 1));
    check_rnn(lstm_case(3, 100, 127, 32, seq, 1));
    check_rnn(lstm_case(3, 1, 3, 1, seq, 1));
  }
}

TEST_CASE("lstm with a mask with holes skips masked steps") {
  for (bool seq : {false, true}) {
    check_rnn(lstm_case(3, 7, 3, 7, seq, 2));
    check_rnn(lstm_case(1, 7, 64, 13, seq, 2));
    check_rnn(lstm_case(3, 100, 127, 32, seq, 2));
    check_rnn(lstm_case(3, 1, 3, 1, seq, 2));
  }
}

TEST_CASE("lstm without bias and with other activations uses the exact C++ cell") {
  RnnCase c = lstm_case(3, 7, 13, 7, true);
  c.use_bias = false;
  check_rnn(c);
  c.use_bias = true;
  c.activation = "relu";
  c.recurrent_activation = "hard_sigmoid";
  check_rnn(c);
  c.mask = 1;
  check_rnn(c);
  c.activation = "softsign";
  c.recurrent_activation = "sigmoid";
  c.return_sequences = false;
  c.mask = 2;
  check_rnn(c);
  c.mask = 0;
  c.recurrent_activation = "hard_sigmoid_keras3";
  check_rnn(c);
}

TEST_CASE("lstm weights shapes, initialisers and flops") {
  auto def = fg::load_graph_string(
      one_node("{name: r, op: lstm, input: x, units: 5, unit_forget_bias: false}"), "t.yaml");
  auto graph = fg::compile_graph(def, fg::builtin_ops());
  auto w = graph.all_weights();
  REQUIRE(w.size() == 3);
  CHECK(w[0].first == "r.kernel");
  CHECK(fg::format_shape(w[0].second.shape) == "(3, 20)");
  CHECK(w[0].second.init == fg::Init::glorot_uniform);
  CHECK(w[0].second.fan_in == 3);
  CHECK(w[0].second.fan_out == 20);
  CHECK(w[1].first == "r.recurrent_kernel");
  CHECK(fg::format_shape(w[1].second.shape) == "(5, 20)");
  CHECK(w[1].second.init == fg::Init::orthogonal);
  CHECK(w[2].first == "r.bias");
  CHECK(fg::format_shape(w[2].second.shape) == "(20,)");
  CHECK(w[2].second.init == fg::Init::zeros);
  auto types = graph.bind({{2, 7, 3}});
  const size_t node = 0;
  auto stats = graph.node_stats(node, types);
  CHECK(stats.params == 3 * 20 + 5 * 20 + 20);
  CHECK(stats.flops == doctest::Approx(2.0 * 7 * (3 * 20 + 5 * 20)));

  auto def2 = fg::load_graph_string(
      one_node("{name: r, op: lstm, input: x, units: 5, use_bias: false}"), "t.yaml");
  auto graph2 = fg::compile_graph(def2, fg::builtin_ops());
  CHECK(graph2.all_weights().size() == 2);
  auto def3 = fg::load_graph_string(one_node("{name: r, op: lstm, input: x, units: 5}"), "t.yaml");
  auto graph3 = fg::compile_graph(def3, fg::builtin_ops());
  CHECK(graph3.all_weights()[2].second.init == fg::Init::lstm_bias);
}

TEST_CASE("lstm shape rule with a dynamic number of steps") {
  const std::string yaml =
      "name: t\ninputs:\n  x: {shape: [null, 3]}\nnodes:\n"
      "  - {name: r, op: lstm, input: x, units: 4, return_sequences: true, dropout: 0.2, "
      "recurrent_dropout: 0.1}\n"
      "outputs: [r]\n";
  CHECK(compile_error(yaml) == "");
  std::map<std::string, fg::Tensor> weights{
      {"r.kernel", fg::test::random_tensor({3, 16}, 1)},
      {"r.recurrent_kernel", fg::test::random_tensor({4, 16}, 2)},
      {"r.bias", fg::test::random_tensor({16}, 3)}};
  for (int64_t steps : {1, 5}) {
    auto out =
        fg::test::run_yaml(yaml, {{"x", fg::test::random_tensor({2, steps, 3}, 4)}}, weights);
    fg::test::check_shape(out.at("r"), {2, steps, 4});
  }
}

TEST_CASE("lstm attribute and input errors") {
  auto err = [](const std::string& node) { return compile_error(one_node(node)); };
  CHECK(err("{name: r, op: lstm, input: x}").find("units") != std::string::npos);
  CHECK(err("{name: r, op: lstm, input: x, units: 0}").find("positive") != std::string::npos);
  CHECK(err("{name: r, op: lstm, input: x, units: 0, return_sequences: true, use_bias: false}")
            .find("positive") != std::string::npos);
  CHECK(
      err("{name: r, op: lstm, input: x, units: 4, activation: softmax}").find("not elementwise") !=
      std::string::npos);
  CHECK(err("{name: r, op: lstm, input: x, units: 4, recurrent_activation: sigmoidd}")
            .find("did you mean") != std::string::npos);
  CHECK(err("{name: r, op: lstm, input: x, units: 4, dropout: 1.5}").find("dropout") !=
        std::string::npos);
  CHECK(err("{name: r, op: lstm, input: x, units: 4, recurrent_dropout: -0.1}")
            .find("recurrent_dropout") != std::string::npos);
  CHECK(err("{name: r, op: lstm, input: x, unit: 4}").find("units") != std::string::npos);
  CHECK(err("{name: r, op: lstm, input: x, units: 4, reset_after: true}").find("reset_after") !=
        std::string::npos);
  // rank 2 input
  std::string msg = compile_error(
      "name: t\ninputs:\n  x: {shape: [7]}\nnodes:\n  - {name: r, op: lstm, input: x, units: "
      "4}\noutputs: [r]\n");
  CHECK(msg.find("rank-3") != std::string::npos);
  // int input
  msg = compile_error(
      "name: t\ninputs:\n  x: {shape: [7, 3], dtype: int32}\nnodes:\n  - {name: r, op: lstm, "
      "input: x, units: 4}\n"
      "outputs: [r]\n");
  CHECK(msg.find("float32") != std::string::npos);
  CHECK(msg.find("embedding") != std::string::npos);
  // unknown feature size
  msg = compile_error(
      "name: t\ninputs:\n  x: {shape: [7, null]}\nnodes:\n  - {name: r, op: lstm, input: x, units: "
      "4}\n"
      "outputs: [r]\n");
  CHECK(msg.find("feature size") != std::string::npos);
}

TEST_CASE("right-padded masks are told apart from masks with holes") {
  std::vector<int64_t> lengths;
  const std::vector<uint8_t> padded{1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1};
  REQUIRE(fg::layers::right_padded_lengths(padded.data(), 3, 4, lengths));
  CHECK(lengths == std::vector<int64_t>{2, 0, 4});
  const std::vector<uint8_t> hole{1, 1, 0, 0, 0, 1, 1, 1};
  CHECK_FALSE(fg::layers::right_padded_lengths(hole.data(), 2, 4, lengths));
  const std::vector<uint8_t> inner{1, 0, 1};
  CHECK_FALSE(fg::layers::right_padded_lengths(inner.data(), 1, 3, lengths));
  // The mask patterns the reference tests use really take the intended path.
  for (int64_t steps : {1, 7, 100}) {
    RnnCase c = lstm_case(3, steps, 3, 1, false, 1);
    auto m = fg::test::case_mask(c);
    CHECK(fg::layers::right_padded_lengths(m.data(), 3, steps, lengths));
    c.mask = 2;
    m = fg::test::case_mask(c);
    if (steps > 1) CHECK_FALSE(fg::layers::right_padded_lengths(m.data(), 3, steps, lengths));
  }
}

// ---- training: the gradient against finite differences of the naive reference ----

namespace {

fg::test::RnnGradientCase lstm_gradient_case(int64_t batch, int64_t steps, int64_t features,
                                             int64_t units, bool seq) {
  fg::test::RnnGradientCase c;
  c.lstm = true;
  c.batch = batch;
  c.steps = steps;
  c.features = features;
  c.units = units;
  c.return_sequences = seq;
  c.seed = static_cast<uint64_t>(batch * 1000 + steps * 100 + features * 10 + units);
  return c;
}

}  // namespace

TEST_CASE("lstm gradient (oneDNN lstm_backward): odd shapes, batch 1 and 3, both output modes") {
  for (bool seq : {false, true})
    for (int64_t batch : {1, 3})
      for (int64_t steps : {1, 5}) {
        fg::test::check_rnn_gradient(lstm_gradient_case(batch, steps, 3, 7, seq));
        fg::test::check_rnn_gradient(lstm_gradient_case(batch, steps, 13, 13, seq));
      }
}

TEST_CASE("lstm gradient with masks: right-padded (oneDNN) and with holes (C++)") {
  for (bool seq : {false, true})
    for (int64_t batch : {1, 3})
      for (int64_t steps : {1, 5})
        for (const auto& mask : fg::test::gradient_masks(batch, steps)) {
          auto c = lstm_gradient_case(batch, steps, 3, 7, seq);
          c.mask = mask;
          fg::test::check_rnn_gradient(c);
          c = lstm_gradient_case(batch, steps, 13, 13, seq);
          c.mask = mask;
          fg::test::check_rnn_gradient(c);
        }
}

TEST_CASE("lstm gradient: a masked step gives its input no gradient") {
  auto c = lstm_gradient_case(3, 5, 3, 7, true);
  c.mask = fg::test::gradient_masks(3, 5)[1];
  auto r = fg::test::check_rnn_gradient(c);
  const float* dx = r.diff_inputs[0].data<float>();
  for (size_t n = 0; n < c.mask.size(); ++n)
    for (int64_t f = 0; f < c.features; ++f)
      if (c.mask[n] == 0) REQUIRE(dx[n * c.features + f] == 0.0f);
}

TEST_CASE("lstm gradient with other activations and without bias (C++ backward)") {
  for (bool seq : {false, true}) {
    auto c = lstm_gradient_case(3, 5, 13, 7, seq);
    c.activation = "relu";
    c.recurrent_activation = "hard_sigmoid";
    fg::test::check_rnn_gradient(c);
    c.recurrent_activation = "hard_sigmoid_keras3";
    fg::test::check_rnn_gradient(c);
    c.activation = "softsign";
    c.recurrent_activation = "sigmoid";
    c.mask = fg::test::gradient_masks(3, 5)[0];
    fg::test::check_rnn_gradient(c);
    for (bool default_acts : {true, false}) {
      auto nb = lstm_gradient_case(3, 5, 3, 13, seq);
      nb.use_bias = false;
      if (!default_acts) nb.activation = "elu";
      fg::test::check_rnn_gradient(nb);
    }
  }
}

TEST_CASE("lstm gradient: frozen writes no weight gradient; no input gradient when not needed") {
  for (const std::string act : {"tanh", "swish"}) {
    auto c = lstm_gradient_case(3, 5, 3, 7, true);
    c.activation = act;
    c.frozen = true;
    auto r = fg::test::check_rnn_gradient(c);
    for (const auto& g : r.diff_weights)
      for (size_t i = 0; i < g.size(); ++i) REQUIRE(g.data<float>()[i] == 0.0f);
    c.frozen = false;
    c.needs_input_gradient = false;
    r = fg::test::check_rnn_gradient(c);
    for (size_t i = 0; i < r.diff_inputs[0].size(); ++i)
      REQUIRE(r.diff_inputs[0].data<float>()[i] == 0.0f);
  }
}

TEST_CASE("lstm with dropout cannot be trained: a clear error") {
  fg::test::TrainingNodeCase c;
  c.yaml = one_node("{name: r, op: lstm, input: x, units: 4, dropout: 0.25}");
  c.inputs = {fg::test::random_tensor({1, 7, 3}, 1)};
  c.weights["kernel"] = fg::test::random_tensor({3, 16}, 2);
  c.weights["recurrent_kernel"] = fg::test::random_tensor({4, 16}, 3);
  c.weights["bias"] = fg::test::random_tensor({16}, 4);
  try {
    fg::test::run_training_node(c, {});
    FAIL("no error");
  } catch (const fg::Error& e) {
    CHECK(std::string(e.what()).find("dropout") != std::string::npos);
  }
}
