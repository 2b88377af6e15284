// gru against the naive Keras-formula reference (tests/reference/recurrent.hpp), both
// reset_after variants (oneDNN lbr_gru and vanilla gru).
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <thread>

#include "engine/model.hpp"
#include "framework/compiler.hpp"
#include "framework/yaml_loader.hpp"
#include "layers/registry.hpp"
#include "tests/layers/recurrent_gradient.hpp"
#include "tests/layers/recurrent_test_graph.hpp"

using fg::test::check_rnn;
using fg::test::compile_error;
using fg::test::RnnCase;

namespace {

RnnCase gru_case(int64_t batch, int64_t steps, int64_t features, int64_t units, bool seq,
                 bool reset_after, int mask = 0) {
  RnnCase c;
  c.lstm = false;
  c.batch = batch;
  c.steps = steps;
  c.features = features;
  c.units = units;
  c.return_sequences = seq;
  c.reset_after = reset_after;
  c.mask = mask;
  c.seed = static_cast<uint64_t>(batch * 1000 + steps * 100 + features * 10 + units +
                                 (reset_after ? 7 : 0));
  return c;
}

std::string one_node(const std::string& node) {
  return "name: t\ninputs:\n  x: {shape: [7, 3]}\nnodes:\n  - " + node + "\noutputs: [r]\n";
}

}  // namespace

TEST_CASE("gru matches the reference on odd and round shapes without a mask") {
  for (bool reset_after : {true, false})
    for (bool seq : {false, true}) {
      check_rnn(gru_case(1, 7, 3, 7, seq, reset_after));
      check_rnn(gru_case(3, 7, 3, 1, seq, reset_after));
      check_rnn(gru_case(1, 1, 64, 32, seq, reset_after));
      check_rnn(gru_case(3, 1, 127, 13, seq, reset_after));
      check_rnn(gru_case(3, 100, 64, 32, seq, reset_after));
      check_rnn(gru_case(1, 100, 127, 13, seq, reset_after));
    }
}

TEST_CASE("gru with a right-padded mask keeps the state of the last valid step") {
  for (bool reset_after : {true, false})
    for (bool seq : {false, true}) {
      check_rnn(gru_case(3, 7, 3, 7, seq, reset_after, 1));  // rows: full, all masked, half
      check_rnn(gru_case(1, 7, 64, 13, seq, reset_after, 1));
      check_rnn(gru_case(3, 100, 127, 32, seq, reset_after, 1));
      check_rnn(gru_case(3, 1, 3, 1, seq, reset_after, 1));
    }
}

TEST_CASE("gru with a mask with holes skips masked steps") {
  for (bool reset_after : {true, false})
    for (bool seq : {false, true}) {
      check_rnn(gru_case(3, 7, 3, 7, seq, reset_after, 2));
      check_rnn(gru_case(1, 7, 64, 13, seq, reset_after, 2));
      check_rnn(gru_case(3, 100, 127, 32, seq, reset_after, 2));
      check_rnn(gru_case(3, 1, 3, 1, seq, reset_after, 2));
    }
}

TEST_CASE("gru without bias and with other activations uses the exact C++ cell") {
  for (bool reset_after : {true, false}) {
    RnnCase c = gru_case(3, 7, 13, 7, true, reset_after);
    c.use_bias = false;
    check_rnn(c);
    c.use_bias = true;
    c.activation = "elu";
    c.recurrent_activation = "hard_sigmoid";
    check_rnn(c);
    c.mask = 1;
    check_rnn(c);
    c.activation = "swish";
    c.recurrent_activation = "sigmoid";
    c.return_sequences = false;
    c.mask = 2;
    check_rnn(c);
    c.mask = 0;
    c.recurrent_activation = "hard_sigmoid_keras3";
    check_rnn(c);
  }
}

TEST_CASE("gru weights shapes, initialisers and flops") {
  auto check = [](const std::string& extra, const std::string& bias_shape) {
    auto def = fg::load_graph_string(
        one_node("{name: r, op: gru, input: x, units: 5" + extra + "}"), "t.yaml");
    auto graph = fg::compile_graph(def, fg::builtin_ops());
    auto w = graph.all_weights();
    REQUIRE(w.size() == 3);
    CHECK(w[0].first == "r.kernel");
    CHECK(fg::format_shape(w[0].second.shape) == "(3, 15)");
    CHECK(w[0].second.init == fg::Init::glorot_uniform);
    CHECK(w[0].second.fan_in == 3);
    CHECK(w[0].second.fan_out == 15);
    CHECK(w[1].first == "r.recurrent_kernel");
    CHECK(fg::format_shape(w[1].second.shape) == "(5, 15)");
    CHECK(w[1].second.init == fg::Init::orthogonal);
    CHECK(w[2].first == "r.bias");
    CHECK(fg::format_shape(w[2].second.shape) == bias_shape);
    CHECK(w[2].second.init == fg::Init::zeros);
    auto stats = graph.node_stats(0, graph.bind({{2, 7, 3}}));
    CHECK(stats.flops == doctest::Approx(2.0 * 7 * (3 * 15 + 5 * 15)));
  };
  check("", "(2, 15)");
  check(", reset_after: false", "(15,)");
}

TEST_CASE("gru attribute and input errors") {
  auto err = [](const std::string& node) { return compile_error(one_node(node)); };
  CHECK(err("{name: r, op: gru, input: x}").find("units") != std::string::npos);
  CHECK(err("{name: r, op: gru, input: x, units: -2}").find("positive") != std::string::npos);
  CHECK(err("{name: r, op: gru, input: x, units: 4, recurrent_activation: log_softmax}")
            .find("not elementwise") != std::string::npos);
  CHECK(err("{name: r, op: gru, input: x, units: 4, reset_after: maybe}").find("reset_after") !=
        std::string::npos);
  CHECK(err("{name: r, op: gru, input: x, units: 4, unit_forget_bias: true}")
            .find("unit_forget_bias") != std::string::npos);
  std::string msg = compile_error(
      "name: t\ninputs:\n  x: {shape: [7, 3, 2]}\nnodes:\n  - {name: r, op: gru, input: x, units: "
      "4}\n"
      "outputs: [r]\n");
  CHECK(msg.find("rank-3") != std::string::npos);
}

namespace {

// Three runs at once on one model (one mask with holes: plain path; two right-padded: the same
// oneDNN primitive executing concurrently); each must match the reference.
void check_concurrent(bool lstm) {
  const int64_t G = lstm ? 4 : 3;
  const std::string yaml = fmt::format(
      "name: t\ninputs:\n  ids: {{shape: [9], dtype: int32}}\nnodes:\n"
      "  - {{name: e, op: embedding, input: ids, input_dim: 20, output_dim: 5, mask_zero: true}}\n"
      "  - {{name: r, op: {}, input: e, units: 6, return_sequences: true}}\noutputs: [r]\n",
      lstm ? "lstm" : "gru");
  fg::Tensor table = fg::test::random_tensor({20, 5}, 1);
  fg::Tensor kernel = fg::test::random_tensor({5, G * 6}, 2, -0.5f, 0.5f);
  fg::Tensor recurrent = fg::test::random_tensor({6, G * 6}, 3, -0.5f, 0.5f);
  fg::Tensor bias =
      fg::test::random_tensor(lstm ? fg::Dims{G * 6} : fg::Dims{2, G * 6}, 4, -0.5f, 0.5f);
  auto graph = std::make_shared<fg::CompiledGraph>(
      fg::compile_graph(fg::load_graph_string(yaml, "t.yaml"), fg::builtin_ops()));
  fg::WeightStore store;
  store.set("e.embeddings", table);
  store.set("r.kernel", kernel);
  store.set("r.recurrent_kernel", recurrent);
  store.set("r.bias", bias);
  fg::Model model(graph, std::move(store), fg::ModelOptions{2});
  const std::vector<std::vector<int>> id_sets = {
      {1, 0, 3, 4, 0, 6, 7, 8, 9, 0, 2, 2, 0, 0, 5, 5, 5, 5},   // holes
      {1, 2, 3, 4, 5, 6, 0, 0, 0, 7, 7, 7, 7, 7, 7, 7, 7, 7},   // right-padded
      {3, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}};  // right-padded, one row all masked
  std::vector<std::vector<double>> want;
  for (const auto& ids : id_sets) {
    std::vector<float> x;
    std::vector<uint8_t> mask;
    for (int id : ids) {
      for (int f = 0; f < 5; ++f) x.push_back(table.data<float>()[id * 5 + f]);
      mask.push_back(id != 0);
    }
    fg::ref::RnnArgs a;
    a.lstm = lstm;
    a.batch = 2;
    a.steps = 9;
    a.features = 5;
    a.units = 6;
    a.return_sequences = true;
    a.x = x.data();
    a.kernel = kernel.data<float>();
    a.recurrent = recurrent.data<float>();
    a.bias = bias.data<float>();
    a.mask = mask.data();
    want.push_back(fg::ref::rnn(a));
  }
  std::vector<std::vector<double>> got(id_sets.size());
  auto work = [&](size_t k) {
    for (int rep = 0; rep < 20; ++rep) {
      auto out = model.run({{"ids", fg::test::make_int_tensor({2, 9}, id_sets[k])}});
      got[k] = fg::test::to_doubles(out.at("r"));
    }
  };
  std::vector<std::thread> threads;
  for (size_t k = 0; k < id_sets.size(); ++k) threads.emplace_back(work, k);
  for (auto& t : threads) t.join();
  for (size_t k = 0; k < id_sets.size(); ++k) {
    REQUIRE(got[k].size() == want[k].size());
    for (size_t i = 0; i < want[k].size(); ++i)
      CHECK(got[k][i] == doctest::Approx(want[k][i]).epsilon(1e-5));
  }
}

}  // namespace

TEST_CASE("gru and lstm run concurrently from three threads on one model") {
  check_concurrent(false);
  check_concurrent(true);
}

// ---- training: the gradient against finite differences of the naive reference ----

namespace {

fg::test::RnnGradientCase gru_gradient_case(int64_t batch, int64_t steps, int64_t features,
                                            int64_t units, bool seq, bool reset_after) {
  fg::test::RnnGradientCase c;
  c.lstm = false;
  c.batch = batch;
  c.steps = steps;
  c.features = features;
  c.units = units;
  c.return_sequences = seq;
  c.reset_after = reset_after;
  c.seed = static_cast<uint64_t>(batch * 1000 + steps * 100 + features * 10 + units);
  return c;
}

}  // namespace

namespace {

void check_gru_gradient_shapes(bool reset_after) {
  for (bool seq : {false, true})
    for (int64_t batch : {1, 3})
      for (int64_t steps : {1, 5}) {
        fg::test::check_rnn_gradient(gru_gradient_case(batch, steps, 3, 7, seq, reset_after));
        fg::test::check_rnn_gradient(gru_gradient_case(batch, steps, 13, 13, seq, reset_after));
      }
}

void check_gru_gradient_masks(bool reset_after) {
  for (bool seq : {false, true})
    for (int64_t batch : {1, 3})
      for (int64_t steps : {1, 5})
        for (const auto& mask : fg::test::gradient_masks(batch, steps)) {
          auto c = gru_gradient_case(batch, steps, 3, 7, seq, reset_after);
          c.mask = mask;
          fg::test::check_rnn_gradient(c);
          c = gru_gradient_case(batch, steps, 13, 13, seq, reset_after);
          c.mask = mask;
          fg::test::check_rnn_gradient(c);
        }
}

void check_gru_gradient_variants(bool reset_after) {
  for (bool seq : {false, true}) {
    auto c = gru_gradient_case(3, 5, 13, 7, seq, reset_after);
    c.activation = "relu";
    c.recurrent_activation = "hard_sigmoid";
    fg::test::check_rnn_gradient(c);
    c.recurrent_activation = "hard_sigmoid_keras3";
    fg::test::check_rnn_gradient(c);
    c.activation = "gelu";
    c.recurrent_activation = "sigmoid";
    c.mask = fg::test::gradient_masks(3, 5)[0];
    fg::test::check_rnn_gradient(c);
    for (bool default_acts : {true, false}) {
      auto nb = gru_gradient_case(3, 5, 3, 13, seq, reset_after);
      nb.use_bias = false;
      if (!default_acts) nb.activation = "selu";
      fg::test::check_rnn_gradient(nb);
      nb.frozen = true;
      auto r = fg::test::check_rnn_gradient(nb);
      for (const auto& g : r.diff_weights)
        for (size_t i = 0; i < g.size(); ++i) REQUIRE(g.data<float>()[i] == 0.0f);
    }
  }
}

}  // namespace

TEST_CASE("gru gradient, reset_after (oneDNN lbr_gru_backward): odd shapes, both output modes") {
  check_gru_gradient_shapes(true);
}

TEST_CASE("gru gradient, reset_after false (oneDNN gru_backward): odd shapes, both output modes") {
  check_gru_gradient_shapes(false);
}

TEST_CASE("gru gradient, reset_after, masks: right-padded (oneDNN) and with holes (C++)") {
  check_gru_gradient_masks(true);
}

TEST_CASE("gru gradient, reset_after false, masks: right-padded (oneDNN) and with holes (C++)") {
  check_gru_gradient_masks(false);
}

TEST_CASE("gru gradient, reset_after: other activations, without bias, frozen") {
  check_gru_gradient_variants(true);
}

TEST_CASE("gru gradient, reset_after false: other activations, without bias, frozen") {
  check_gru_gradient_variants(false);
}

TEST_CASE("gru gradient: the reset_after bias fold is split back into both bias rows") {
  // One step from the zero state with units 1: the input and the recurrent bias of z and r
  // enter as a sum, so their gradients are equal; those of the candidate differ by the factor r.
  auto c = gru_gradient_case(3, 1, 3, 7, false, true);
  auto r = fg::test::check_rnn_gradient(c);
  const float* db = r.diff_weights[2].data<float>();
  const int64_t GU = 3 * c.units;
  for (int64_t j = 0; j < 2 * c.units; ++j) CHECK(db[j] == doctest::Approx(db[GU + j]));
}
