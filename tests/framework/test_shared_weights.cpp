// `weights_of: <node>` (docs/yaml_schema.md): a node using another node's weights, as a Keras
// layer called more than once. The compiler's checks (same op, same weight shapes, an owner
// that holds its weights, the same `trainable`), the weights held once (all_weights, summary),
// inference against a naive reference, and training: the one tied weight gets the sum of both
// nodes' gradients, checked against finite differences of a naive loss.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>

#include "engine/training/losses.hpp"
#include "engine/training/parameter_store.hpp"
#include "engine/training/training_plan.hpp"
#include "framework/summary.hpp"
#include "tests/layers/gradient_check.hpp"
#include "tests/reference/dense_act.hpp"
#include "tests/test_util.hpp"

using namespace fg;
using namespace fg::test;

namespace {

// Two inputs through one Dense (enc on a, enc_b on b with enc's weights), added, then a head.
std::string siamese_yaml(const std::string& shared_node) {
  return "name: siamese\ninputs:\n  a: {shape: [5]}\n  b: {shape: [5]}\nnodes:\n"
         "  - {name: enc, op: dense, input: a, units: 7, activation: tanh}\n" +
         shared_node +
         "  - {name: both, op: add, inputs: [enc, enc_b]}\n"
         "  - {name: out, op: dense, input: both, units: 3}\n"
         "outputs: [out]\n";
}

// enc on a, `second` (reading b) beside it, both outputs: no merge that could fail first.
std::string pair_yaml(const std::string& second, const std::string& b_shape = "[5]") {
  return "name: pair\ninputs:\n  a: {shape: [5]}\n  b: {shape: " + b_shape +
         "}\nnodes:\n  - {name: enc, op: dense, input: a, units: 7}\n" + second +
         "outputs: [enc, enc_b]\n";
}

const std::string kTied =
    "  - {name: enc_b, op: dense, input: b, units: 7, activation: tanh, weights_of: enc}\n";

using Doubles = std::vector<double>;
using WeightMap = std::map<std::string, Doubles>;

Doubles naive_siamese(const WeightMap& w, const Doubles& a, const Doubles& b, int64_t batch) {
  const Doubles ea = ref::dense(a, {batch, 5}, w.at("enc.kernel"), w.at("enc.bias"), 7, "tanh");
  const Doubles eb = ref::dense(b, {batch, 5}, w.at("enc.kernel"), w.at("enc.bias"), 7, "tanh");
  Doubles sum(ea.size());
  for (size_t i = 0; i < sum.size(); ++i) sum[i] = ea[i] + eb[i];
  return ref::dense(sum, {batch, 7}, w.at("out.kernel"), w.at("out.bias"), 3, "linear");
}

}  // namespace

TEST_CASE("weights_of: one set of weights, counted once, used by both nodes") {
  auto graph = compile_yaml(siamese_yaml(kTied));
  std::vector<std::string> keys;
  for (const auto& [key, spec] : graph->all_weights()) keys.push_back(key);
  CHECK(keys == std::vector<std::string>{"enc.kernel", "enc.bias", "out.kernel", "out.bias"});
  const Summary s = summarize(*graph, {});
  CHECK(s.total_params == (5 * 7 + 7) + (7 * 3 + 3));  // Keras counts a shared layer once
  CHECK(s.trainable_params == s.total_params);
  for (const SummaryRow& row : s.rows)
    if (row.node == "enc_b") {
      CHECK(row.params == 0);
      CHECK(row.weights_of == "enc");
    }
  CHECK(format_summary_table(s).find("shared: enc") != std::string::npos);
  CHECK(format_summary_json(s).find("\"weights_of\": \"enc\"") != std::string::npos);
  // a file with a copy under the tied node is refused: the weights are held once
  WeightStore store = WeightStore::initialize(*graph, 3);
  CHECK(store.find("enc_b.kernel") == nullptr);
  store.set("enc_b.kernel", random_tensor({5, 7}, 1));
  CHECK(error_of([&] { store.validate(*graph); }).find("unexpected tensor 'enc_b.kernel'") !=
        std::string::npos);

  for (int64_t batch : {1, 7}) {
    CAPTURE(batch);
    const Tensor a = random_tensor({batch, 5}, 11), b = random_tensor({batch, 5}, 12);
    std::map<std::string, Tensor> weights = {{"enc.kernel", random_tensor({5, 7}, 21)},
                                             {"enc.bias", random_tensor({7}, 22)},
                                             {"out.kernel", random_tensor({7, 3}, 23)},
                                             {"out.bias", random_tensor({3}, 24)}};
    WeightMap w;
    for (const auto& [key, t] : weights) w[key] = to_doubles(t);
    auto out = run_yaml(siamese_yaml(kTied), {{"a", a}, {"b", b}}, weights);
    check_close(out.at("out"), naive_siamese(w, to_doubles(a), to_doubles(b), batch), 1e-5, 1e-5);
  }
}

TEST_CASE("weights_of: the compiler's checks name both nodes") {
  // another op
  std::string m = compile_error(
      pair_yaml("  - {name: enc_b, op: layer_normalization, input: b, weights_of: enc}\n"));
  CAPTURE(m);
  CHECK(m.find("test.yaml:7:") != std::string::npos);
  CHECK(m.find("node 'enc_b' (layer_normalization): takes the weights of 'enc' (line 6), a "
               "dense node: weights are shared only between nodes of the same op") !=
        std::string::npos);
  // the weights' shapes differ: units, or the input's size
  m = compile_error(
      pair_yaml("  - {name: enc_b, op: dense, input: b, units: 6, weights_of: enc}\n"));
  CAPTURE(m);
  CHECK(m.find("node 'enc_b' (dense): takes the weights of 'enc' (line 6), but its weight "
               "'kernel' would be (5, 6) and 'enc''s is (5, 7)") != std::string::npos);
  m = compile_error(
      pair_yaml("  - {name: enc_b, op: dense, input: b, units: 7, weights_of: enc}\n", "[13]"));
  CAPTURE(m);
  CHECK(m.find("its weight 'kernel' would be (13, 7) and 'enc''s is (5, 7)") != std::string::npos);
  // use_bias false: different weights
  m = compile_error(pair_yaml(
      "  - {name: enc_b, op: dense, input: b, units: 7, use_bias: false, weights_of: enc}\n"));
  CAPTURE(m);
  CHECK(m.find("its weights would be 'kernel' and 'enc''s are 'kernel', 'bias'") !=
        std::string::npos);
  // names: unknown (did you mean), an input, itself, a chain
  m =
      compile_error(pair_yaml("  - {name: enc_b, op: dense, input: b, units: 7, weights_of: "
                              "encc}\n"));
  CHECK(m.find("weights_of names 'encc', which is not a node") != std::string::npos);
  CHECK(m.find("did you mean 'enc'?") != std::string::npos);
  m = compile_error(pair_yaml("  - {name: enc_b, op: dense, input: b, units: 7, weights_of: a}\n"));
  CHECK(m.find("'a', a graph input, which has no weights") != std::string::npos);
  m = compile_error(
      pair_yaml("  - {name: enc_b, op: dense, input: b, units: 7, weights_of: enc_b}\n"));
  CHECK(m.find("node 'enc_b' (dense): `weights_of` names the node itself") != std::string::npos);
  m = compile_error(siamese_yaml(kTied +
                                 "  - {name: enc_c, op: dense, input: b, units: 7, activation: "
                                 "tanh, weights_of: enc_b}\n"));
  CAPTURE(m);
  CHECK(m.find("node 'enc_c' (dense): takes the weights of 'enc_b', which takes them from 'enc' "
               "itself") != std::string::npos);
  // trainable set on the tied node alone
  m = compile_error(pair_yaml(
      "  - {name: enc_b, op: dense, input: b, units: 7, weights_of: enc, trainable: false}\n"));
  CHECK(m.find("node 'enc_b' (dense): trainable: false but takes the weights of 'enc', which has "
               "trainable: true") != std::string::npos);
  // an owner without weights
  m = compile_error(
      "name: t\ninputs:\n  a: {shape: [5]}\nnodes:\n"
      "  - {name: r, op: activation, input: a, activation: relu}\n"
      "  - {name: r2, op: activation, input: r, activation: relu, weights_of: r}\n"
      "outputs: [r2]\n");
  CHECK(m.find("but 'r' has no weights") != std::string::npos);
  CHECK(compile_error(siamese_yaml(kTied)) == "");
  // an attribute that does not shape the weights may differ
  CHECK(compile_error(pair_yaml("  - {name: enc_b, op: dense, input: b, units: 7, activation: "
                                "relu, weights_of: enc}\n")) == "");
}

TEST_CASE("weights_of in training: the tied weight gets the sum of both nodes' gradients") {
  auto graph = compile_yaml(siamese_yaml(kTied));
  for (int64_t batch : {1, 7}) {
    CAPTURE(batch);
    ParameterStore params(*graph, WeightStore::initialize(*graph, 5));
    CHECK(params.entries().size() == 4);
    std::vector<LossTap> taps{{graph->find_tensor("out"), false}};
    TrainingPlanOptions options;
    options.fill_arena_with_nan = true;
    TrainingPlan plan(*graph, {{batch, 5}, {batch, 5}}, taps, params, options);
    CHECK(plan.arena_problem() == "");
    const Tensor a = random_tensor({batch, 5}, 31), b = random_tensor({batch, 5}, 32);
    std::memcpy(plan.input(0), a.data<float>(), a.bytes());
    std::memcpy(plan.input(1), b.data<float>(), b.bytes());
    plan.forward(0);
    // loss = sum(out * c) / batch for fixed c: d loss / d out = c / batch
    const Tensor c = random_tensor({batch, 3}, 33);
    for (int64_t i = 0; i < batch * 3; ++i)
      plan.prediction_gradient(0)[i] = c.data<float>()[i] / static_cast<float>(batch);
    plan.backward(0);

    WeightMap w;
    for (const auto& e : params.entries()) w[e.key] = to_doubles(e.value);
    const Doubles ad = to_doubles(a), bd = to_doubles(b), cd = to_doubles(c);
    for (const auto& e : params.entries()) {
      CAPTURE(e.key);
      auto g = numeric_gradient(
          [&](const Doubles& v) {
            WeightMap ww = w;
            ww[e.key] = v;
            const Doubles out = naive_siamese(ww, ad, bd, batch);
            double loss = 0;
            for (size_t i = 0; i < out.size(); ++i) loss += out[i] * cd[i];
            return loss / static_cast<double>(batch);
          },
          w[e.key], {});
      for (size_t i = 0; i < g.size(); ++i)
        CHECK(e.gradient.data<float>()[i] == doctest::Approx(g[i]).epsilon(1e-3).scale(1e-2));
    }
  }
}
