// gru against the naive Keras-formula reference (tests/reference/recurrent.hpp), both
// reset_after variants (oneDNN lbr_gru and vanilla gru).
#include <doctest/doctest.h>

#include "framework/compiler.hpp"
#include "framework/yaml_loader.hpp"
#include "tests/layers/recurrent_test_util.hpp"

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
  }
}

TEST_CASE("gru weights shapes, initialisers and flops") {
  auto check = [](const std::string& extra, const std::string& bias_shape) {
    auto def = fg::load_graph_string(
        one_node("{name: r, op: gru, input: x, units: 5" + extra + "}"), "t.yaml");
    auto graph = fg::compile_graph(def, fg::OpRegistry::builtins());
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
