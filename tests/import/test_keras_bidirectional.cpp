// Keras's go_backwards recurrent layers and the Bidirectional wrapper (over LSTM, GRU and
// SimpleRNN):
// legacy `.h5`, Keras 3 `.keras` and TF.js files written at test time by the formats' rules
// (tests/import/keras_writers.hpp), imported, read back from the written YAML, run, and compared
// with what Keras computes, built here from the naive recurrent reference (tests/reference/,
// plain loops of the LSTM / GRU equations) and plain loops for the reversals and merges:
//   go_backwards:  the layer on the input reversed in time (and its mask), its outputs in that
//                  reversed order;
//   Bidirectional: forward = layer(x), backward = layer(x reversed), with return_sequences the
//                  backward outputs reversed back, then concat (forward first) / sum / mul / ave;
//                  both layers with zero_output_for_mask = return_sequences (masked steps
//                  output zeros).
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <fstream>
#include <fusiongraph/import.hpp>
#include <nlohmann/json.hpp>

#include "framework/yaml_loader.hpp"
#include "layers/registry.hpp"
#include "tests/cli/cli_test_util.hpp"
#include "tests/import/import_checks.hpp"
#include "tests/import/keras_writers.hpp"
#include "tests/reference/recurrent.hpp"
#include "tests/test_util.hpp"

using namespace fg;

namespace {

using test::check_imported;
using test::import_error;

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

// A Keras 2.2+ Sequential config of layers {class_name, config fields}.
std::string k2_sequential(const std::vector<std::pair<std::string, std::string>>& layers) {
  std::vector<std::string> items;
  for (const auto& [cls, fields] : layers)
    items.push_back(
        fmt::format(R"({{"class_name": "{}", "config": {{"trainable": true, {}}}}})", cls, fields));
  return fmt::format(
      R"({{"class_name": "Sequential", "config": {{"name": "sequential_1", "layers": [{}]}}}})",
      join(items));
}

Tensor tensor_of(const Dims& shape, const std::vector<double>& data) {
  Tensor t(DType::f32, shape);
  REQUIRE(static_cast<size_t>(t.size()) == data.size());
  for (size_t i = 0; i < data.size(); ++i) t.mutable_data<float>()[i] = static_cast<float>(data[i]);
  return t;
}

// [B, T, C] with the steps in reverse order.
template <typename T>
std::vector<T> reversed_steps(const std::vector<T>& x, int64_t batch, int64_t steps) {
  const int64_t c = static_cast<int64_t>(x.size()) / (batch * steps);
  std::vector<T> y(x.size());
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < steps; ++t)
      for (int64_t k = 0; k < c; ++k)
        y[(b * steps + t) * c + k] = x[(b * steps + (steps - 1 - t)) * c + k];
  return y;
}

// One recurrent layer's Keras weights and what the naive reference needs to run it.
struct RnnWeights {
  Tensor kernel, recurrent, bias;
};

RnnWeights random_rnn(bool lstm, int64_t features, int64_t units, uint64_t seed,
                      bool simple_rnn = false) {
  const int64_t gu = (simple_rnn ? 1 : lstm ? 4 : 3) * units;
  return {test::random_tensor({features, gu}, seed), test::random_tensor({units, gu}, seed + 1),
          lstm || simple_rnn ? test::random_tensor({gu}, seed + 2)
                             : test::random_tensor({2, gu}, seed + 2)};
}

struct RnnRun {
  bool lstm = true;
  int64_t batch = 1, steps = 1, features = 1, units = 1;
  bool return_sequences = false;
  bool zero_output_for_mask = false;  // masked steps output zeros (Bidirectional's layers)
  bool simple_rnn = false;            // SimpleRNN (then `lstm` is ignored)
};

// The naive layer on x [B, T, F] (mask [B, T] or empty), left to right.
std::vector<double> naive_rnn(const RnnRun& run, const RnnWeights& w, const std::vector<float>& x,
                              const std::vector<uint8_t>& mask = {}) {
  ref::RnnArgs a;
  a.lstm = run.lstm;
  a.simple_rnn = run.simple_rnn;
  a.zero_output_for_mask = run.zero_output_for_mask;
  a.batch = run.batch, a.steps = run.steps, a.features = run.features, a.units = run.units;
  a.return_sequences = run.return_sequences;
  a.x = x.data(), a.kernel = w.kernel.data<float>(), a.recurrent = w.recurrent.data<float>();
  a.bias = w.bias.data<float>();
  a.mask = mask.empty() ? nullptr : mask.data();
  return ref::rnn(a);
}

// Keras's go_backwards layer: the reversed input (and mask), outputs in that order.
std::vector<double> naive_backwards(const RnnRun& run, const RnnWeights& w,
                                    const std::vector<float>& x,
                                    const std::vector<uint8_t>& mask = {}) {
  return naive_rnn(run, w, reversed_steps(x, run.batch, run.steps),
                   mask.empty() ? mask : reversed_steps(mask, run.batch, run.steps));
}

// Keras's Bidirectional.call (its layers' zero_output_for_mask is return_sequences: set by
// the caller in `run`).
std::vector<double> naive_bidirectional(const RnnRun& run, const RnnWeights& fw,
                                        const RnnWeights& bw, const std::vector<float>& x,
                                        const std::string& merge,
                                        const std::vector<uint8_t>& mask = {}) {
  const std::vector<double> y = naive_rnn(run, fw, x, mask);
  std::vector<double> y_rev = naive_backwards(run, bw, x, mask);
  if (run.return_sequences) y_rev = reversed_steps(y_rev, run.batch, run.steps);
  std::vector<double> out;
  if (merge == "concat") {
    const size_t rows = y.size() / static_cast<size_t>(run.units), u = run.units;
    for (size_t r = 0; r < rows; ++r) {
      out.insert(out.end(), y.begin() + r * u, y.begin() + (r + 1) * u);
      out.insert(out.end(), y_rev.begin() + r * u, y_rev.begin() + (r + 1) * u);
    }
    return out;
  }
  for (size_t i = 0; i < y.size(); ++i)
    out.push_back(merge == "sum"   ? y[i] + y_rev[i]
                  : merge == "mul" ? y[i] * y_rev[i]
                                   : (y[i] + y_rev[i]) / 2);
  return out;
}

Dims output_dims(const RnnRun& run, int64_t last) {
  return run.return_sequences ? Dims{run.batch, run.steps, last} : Dims{run.batch, last};
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::string recurrent_fields(bool lstm, const std::string& name, int64_t units, bool sequences,
                             bool go_backwards) {
  return fmt::format(
      R"("name": "{}", "units": {}, "activation": "tanh", "recurrent_activation": "sigmoid", "use_bias": true, "return_sequences": {}, "return_state": false, "go_backwards": {}, "stateful": false, "dropout": 0.0, "recurrent_dropout": 0.0{})",
      name, units, sequences ? "true" : "false", go_backwards ? "true" : "false",
      lstm ? R"(, "unit_forget_bias": true)" : R"(, "reset_after": true)");
}

test::LayerWeights keras2_names(const std::string& prefix, const RnnWeights& w) {
  return {{prefix + "kernel:0", w.kernel},
          {prefix + "recurrent_kernel:0", w.recurrent},
          {prefix + "bias:0", w.bias}};
}

}  // namespace

TEST_CASE("Keras import: go_backwards LSTM and GRU read the steps last to first") {
  test::NamedTempDir dir("fg_keras_bidirectional", "backwards");
  for (const bool lstm : {true, false})
    for (const bool sequences : {true, false}) {
      CAPTURE(lstm);
      CAPTURE(sequences);
      const RnnRun run{lstm, 3, 7, 5, 13, sequences};
      const std::string cls = lstm ? "LSTM" : "GRU";
      const std::string config =
          k2_sequential({{cls, R"("batch_input_shape": [null, 7, 5], )" +
                                   recurrent_fields(lstm, "rnn", run.units, sequences, true)}});
      const RnnWeights w = random_rnn(lstm, run.features, run.units, 10);
      const std::string path = dir.path + fmt::format("/{}{}.h5", cls, sequences);
      test::write_legacy_model(path, config, {"rnn"}, {{"rnn", keras2_names("", w)}});
      const ImportedModel m = import_keras_model(path);
      const std::string yaml = format_imported_yaml(m);
      CAPTURE(yaml);
      CHECK(has(yaml, "{name: rnn_reversed_input, op: reverse, input: rnn_input}"));
      CHECK(has(yaml, "input: rnn_reversed_input"));
      CHECK(has(yaml, fmt::format("# rnn ({}, go_backwards) reads the steps last to first", cls)));
      const Tensor x = test::random_tensor({run.batch, run.steps, run.features}, 20);
      const std::vector<float> xs(x.data<float>(), x.data<float>() + x.size());
      check_imported(
          m, {{"rnn_input", x}},
          {{"rnn", tensor_of(output_dims(run, run.units), naive_backwards(run, w, xs))}});
    }
}

TEST_CASE("Keras import: go_backwards after Embedding(mask_zero) reverses the mask too") {
  test::NamedTempDir dir("fg_keras_bidirectional", "backwards_mask");
  const RnnRun run{true, 3, 7, 4, 5, false};
  const std::string embedding =
      R"("name": "emb", "batch_input_shape": [null, 7], "input_dim": 9, "output_dim": 4, "mask_zero": true)";
  const std::string config = k2_sequential(
      {{"Embedding", embedding}, {"LSTM", recurrent_fields(true, "rnn", run.units, false, true)}});
  const Tensor table = test::random_tensor({9, 4}, 31);
  const RnnWeights w = random_rnn(true, run.features, run.units, 32);
  const std::string path = dir.path + "/m.h5";
  test::write_legacy_model(path, config, {"emb", "rnn"},
                           {{"emb", {{"embeddings:0", table}}}, {"rnn", keras2_names("", w)}});
  const ImportedModel m = import_keras_model(path);
  // rows: right-padded, a hole, all padding
  const std::vector<int> ids = {3, 8, 1, 2, 0, 0, 0, 5, 0, 2, 2, 0, 7, 1, 0, 0, 0, 0, 0, 0, 0};
  std::vector<uint8_t> mask;
  for (int id : ids) mask.push_back(id != 0);
  const std::vector<double> e = ref::embedding(ids, table.data<float>(), 4);
  const std::vector<float> ef(e.begin(), e.end());
  std::vector<double> ids_as_float(ids.begin(), ids.end());
  check_imported(m, {{"emb_input", tensor_of({3, 7}, ids_as_float)}},
                 {{"rnn", tensor_of({3, 5}, naive_backwards(run, w, ef, mask))}});

  // with return_sequences Keras keeps the mask unreversed on the reversed outputs: refused
  const std::string seq = dir.path + "/seq.h5";
  test::write_legacy_model(
      seq,
      k2_sequential({{"Embedding", embedding},
                     {"LSTM", recurrent_fields(true, "rnn", run.units, true, true)}}),
      {"emb", "rnn"}, {{"emb", {{"embeddings:0", table}}}, {"rnn", keras2_names("", w)}});
  CHECK(has(import_error(seq),
            "layer 'rnn' (LSTM): go_backwards with return_sequences on a masked input"));
}

TEST_CASE("Keras import: Bidirectional LSTM and GRU, every merge mode, legacy .h5") {
  test::NamedTempDir dir("fg_keras_bidirectional", "legacy");
  int n = 0;
  for (const bool lstm : {true, false})
    for (const bool sequences : {true, false})
      for (const std::string merge : {"concat", "sum", "mul", "ave"}) {
        CAPTURE(lstm);
        CAPTURE(sequences);
        CAPTURE(merge);
        const RnnRun run{lstm, 2, 7, 3, 13, sequences};
        const std::string cls = lstm ? "LSTM" : "GRU";
        const std::string inner =
            fmt::format(R"({{"class_name": "{}", "config": {{{}}}}})", cls,
                        recurrent_fields(lstm, "rnn_1", run.units, sequences, false));
        const std::string config = k2_sequential(
            {{"Bidirectional",
              fmt::format(
                  R"("name": "bi", "batch_input_shape": [null, 7, 3], "merge_mode": "{}", "layer": {})",
                  merge, inner)}});
        const RnnWeights fw = random_rnn(lstm, run.features, run.units, 40 + n);
        const RnnWeights bw = random_rnn(lstm, run.features, run.units, 60 + n);
        // tf.keras 2: weight_names bi/forward_<inner>/kernel:0, ..., bi/backward_<inner>/...
        test::LayerWeights weights = keras2_names("forward_rnn_1/", fw);
        for (auto& p : keras2_names("backward_rnn_1/", bw)) weights.push_back(p);
        const std::string path = dir.path + fmt::format("/m{}.h5", n++);
        test::write_legacy_model(path, config, {"bi"}, {{"bi", weights}});
        const ImportedModel m = import_keras_model(path);
        const std::string yaml = format_imported_yaml(m);
        CAPTURE(yaml);
        const std::string op = lstm ? "lstm" : "gru";
        CHECK(has(yaml, fmt::format("{{name: bi_forward, op: {}, input: bi_input", op)));
        CHECK(has(yaml, "{name: bi_backward_input, op: reverse, input: bi_input}"));
        CHECK(has(yaml, fmt::format("{{name: bi_backward, op: {}, input: bi_backward_input", op)));
        CHECK(has(yaml, "name: bi_backward_reversed") == sequences);
        CHECK(has(yaml, fmt::format("# bi (Bidirectional, merge_mode '{}')", merge)));
        const Tensor x = test::random_tensor({run.batch, run.steps, run.features}, 80 + n);
        const std::vector<float> xs(x.data<float>(), x.data<float>() + x.size());
        const int64_t last = merge == "concat" ? 2 * run.units : run.units;
        check_imported(
            m, {{"bi_input", x}},
            {{"bi_forward", tensor_of(output_dims(run, run.units), naive_rnn(run, fw, xs))},
             {"bi_backward", tensor_of(output_dims(run, run.units), naive_backwards(run, bw, xs))},
             {"bi",
              tensor_of(output_dims(run, last), naive_bidirectional(run, fw, bw, xs, merge))}});
      }
}

TEST_CASE("Keras import: a Keras 3 .keras Bidirectional with its backward_layer") {
  test::NamedTempDir dir("fg_keras_bidirectional", "keras3");
  for (const bool lstm : {true, false}) {
    CAPTURE(lstm);
    const RnnRun run{lstm, 3, 13, 7, 5, true};
    const std::string cls = lstm ? "LSTM" : "GRU";
    auto wrapped = [&](const std::string& name, bool backwards) {
      return fmt::format(
          R"({{"module": "keras.layers", "class_name": "{}", "config": {{"trainable": true, "dtype": {{"module": "keras", "class_name": "DTypePolicy", "config": {{"name": "float32"}}}}, {}}}, "registered_name": null}})",
          cls, recurrent_fields(lstm, name, run.units, true, backwards));
    };
    const std::string config = fmt::format(
        R"({{"module": "keras", "class_name": "Sequential", "config": {{"name": "sequential", "trainable": true, "layers": [{{"module": "keras.layers", "class_name": "InputLayer", "config": {{"batch_shape": [null, 13, 7], "dtype": "float32", "sparse": false, "name": "x"}}, "registered_name": null}}, {{"module": "keras.layers", "class_name": "Bidirectional", "config": {{"name": "bidirectional", "trainable": true, "merge_mode": "concat", "layer": {}, "backward_layer": {}}}, "registered_name": null}}]}}, "registered_name": null}})",
        wrapped("forward_rnn", false), wrapped("backward_rnn", true));
    const RnnWeights fw = random_rnn(lstm, run.features, run.units, 100);
    const RnnWeights bw = random_rnn(lstm, run.features, run.units, 110);
    const std::string h5 = dir.path + "/model.weights.h5";
    const std::string g = "layers/bidirectional/";
    test::write_weights_h5(
        h5,
        {{g + "forward_layer/cell/vars/0", fw.kernel},
         {g + "forward_layer/cell/vars/1", fw.recurrent},
         {g + "forward_layer/cell/vars/2", fw.bias},
         {g + "backward_layer/cell/vars/0", bw.kernel},
         {g + "backward_layer/cell/vars/1", bw.recurrent},
         {g + "backward_layer/cell/vars/2", bw.bias}},
        {"vars", g + "vars", g + "forward_layer/vars", g + "backward_layer/vars"});
    const std::string path = dir.path + fmt::format("/m{}.keras", cls);
    test::write_keras_zip(path, config, h5);
    const ImportedModel m = import_keras_model(path);
    const Tensor x = test::random_tensor({run.batch, run.steps, run.features}, 120);
    const std::vector<float> xs(x.data<float>(), x.data<float>() + x.size());
    check_imported(m, {{"x", x}},
                   {{"bidirectional", tensor_of(output_dims(run, 2 * run.units),
                                                naive_bidirectional(run, fw, bw, xs, "concat"))}});

    // the backward layer's variables missing: an error naming the count
    const std::string partial = dir.path + "/partial.weights.h5";
    test::write_weights_h5(partial,
                           {{g + "forward_layer/cell/vars/0", fw.kernel},
                            {g + "forward_layer/cell/vars/1", fw.recurrent},
                            {g + "forward_layer/cell/vars/2", fw.bias}},
                           {"vars", g + "vars"});
    test::write_keras_zip(dir.path + "/partial.keras", config, partial);
    CHECK(has(import_error(dir.path + "/partial.keras"),
              "layer 'bidirectional' (Bidirectional): the file holds 3 weight arrays for this "
              "layer, expected the forward layer's and then as many for the backward layer"));
  }
}

TEST_CASE("Keras import: Bidirectional after Embedding(mask_zero) skips the padded steps") {
  test::NamedTempDir dir("fg_keras_bidirectional", "mask");
  const RnnRun run{false, 3, 7, 4, 5, false};
  const std::string embedding =
      R"("name": "emb", "batch_input_shape": [null, 7], "input_dim": 9, "output_dim": 4, "mask_zero": true)";
  auto bidirectional = [&](bool sequences) {
    return fmt::format(
        R"("name": "bi", "merge_mode": "sum", "layer": {{"class_name": "GRU", "config": {{{}}}}})",
        recurrent_fields(false, "gru", run.units, sequences, false));
  };
  const Tensor table = test::random_tensor({9, 4}, 131);
  const RnnWeights fw = random_rnn(false, run.features, run.units, 132);
  const RnnWeights bw = random_rnn(false, run.features, run.units, 142);
  test::LayerWeights weights = keras2_names("forward_gru/", fw);
  for (auto& p : keras2_names("backward_gru/", bw)) weights.push_back(p);
  const std::string path = dir.path + "/m.h5";
  test::write_legacy_model(
      path, k2_sequential({{"Embedding", embedding}, {"Bidirectional", bidirectional(false)}}),
      {"emb", "bi"}, {{"emb", {{"embeddings:0", table}}}, {"bi", weights}});
  const ImportedModel m = import_keras_model(path);
  const std::vector<int> ids = {3, 8, 1, 2, 0, 0, 0, 5, 0, 2, 2, 0, 7, 1, 0, 0, 0, 0, 0, 0, 0};
  std::vector<uint8_t> mask;
  for (int id : ids) mask.push_back(id != 0);
  const std::vector<double> e = ref::embedding(ids, table.data<float>(), 4);
  const std::vector<float> ef(e.begin(), e.end());
  std::vector<double> ids_as_float(ids.begin(), ids.end());
  check_imported(m, {{"emb_input", tensor_of({3, 7}, ids_as_float)}},
                 {{"bi", tensor_of({3, 5}, naive_bidirectional(run, fw, bw, ef, "sum", mask))}});
}

namespace {

// Embedding(mask_zero) ids [4, 7] as floats (the imported model's input) and their mask: rows
// right-padded, with a hole (and a masked first step), all padding, full; `padded_only`: the
// hole row replaced by a shorter right-padded one (then the forward layer runs on oneDNN).
std::vector<int> masked_ids(bool padded_only) {
  std::vector<int> ids = {3, 8, 1, 2, 0, 0, 0, 0, 5, 2, 0, 7, 1, 4,
                          0, 0, 0, 0, 0, 0, 0, 6, 1, 2, 8, 3, 4, 5};
  if (padded_only)
    for (int t = 0; t < 7; ++t) ids[7 + t] = t < 2 ? 7 - t : 0;
  return ids;
}

}  // namespace

TEST_CASE("Keras import: Bidirectional with return_sequences after Embedding(mask_zero)") {
  // Keras's Bidirectional sets zero_output_for_mask = return_sequences on both layers: masked
  // steps output zeros in each direction (the state still carries over them).
  test::NamedTempDir dir("fg_keras_bidirectional", "mask_sequences");
  const std::string embedding =
      R"("name": "emb", "batch_input_shape": [null, 7], "input_dim": 9, "output_dim": 5, "mask_zero": true)";
  int n = 0;
  for (const bool lstm : {true, false})
    for (const std::string merge : {"concat", "sum", "mul", "ave"}) {
      CAPTURE(lstm);
      CAPTURE(merge);
      RnnRun run{lstm, 4, 7, 5, 13, true};
      run.zero_output_for_mask = true;
      const std::string cls = lstm ? "LSTM" : "GRU";
      const std::string bidirectional = fmt::format(
          R"("name": "bi", "merge_mode": "{}", "layer": {{"class_name": "{}", "config": {{{}}}}})",
          merge, cls, recurrent_fields(lstm, "rnn", run.units, true, false));
      const Tensor table = test::random_tensor({9, 5}, 200 + n);
      const RnnWeights fw = random_rnn(lstm, run.features, run.units, 210 + n);
      const RnnWeights bw = random_rnn(lstm, run.features, run.units, 220 + n);
      test::LayerWeights weights = keras2_names("forward_rnn/", fw);
      for (auto& p : keras2_names("backward_rnn/", bw)) weights.push_back(p);
      const std::string path = dir.path + fmt::format("/m{}.h5", n++);
      test::write_legacy_model(
          path, k2_sequential({{"Embedding", embedding}, {"Bidirectional", bidirectional}}),
          {"emb", "bi"}, {{"emb", {{"embeddings:0", table}}}, {"bi", weights}});
      const ImportedModel m = import_keras_model(path);
      const std::string yaml = format_imported_yaml(m);
      CAPTURE(yaml);
      const std::string op = lstm ? "lstm" : "gru";
      CHECK(has(yaml, fmt::format("{{name: bi_forward, op: {}, input: emb, units: 13, "
                                  "return_sequences: true, zero_output_for_mask: true}}",
                                  op)));
      CHECK(has(yaml, fmt::format("{{name: bi_backward, op: {}, input: bi_backward_input, units: "
                                  "13, return_sequences: true, zero_output_for_mask: true}}",
                                  op)));
      CHECK(has(yaml, "zero_output_for_mask: bi (Bidirectional with return_sequences) sets it"));
      for (const bool padded_only : {false, true}) {
        CAPTURE(padded_only);
        const std::vector<int> ids = masked_ids(padded_only);
        std::vector<uint8_t> mask;
        for (int id : ids) mask.push_back(id != 0);
        const std::vector<double> e = ref::embedding(ids, table.data<float>(), 5);
        const std::vector<float> ef(e.begin(), e.end());
        const std::vector<double> ids_as_float(ids.begin(), ids.end());
        const std::vector<double> want = naive_bidirectional(run, fw, bw, ef, merge, mask);
        // the all-padding row (row 2) is zeros whatever the merge
        const size_t row = want.size() / 4;
        for (size_t i = 2 * row; i < 3 * row; ++i) REQUIRE(want[i] == 0.0);
        const int64_t last = merge == "concat" ? 2 * run.units : run.units;
        check_imported(m, {{"emb_input", tensor_of({4, 7}, ids_as_float)}},
                       {{"bi_forward", tensor_of({4, 7, 13}, naive_rnn(run, fw, ef, mask))},
                        {"bi_backward", tensor_of({4, 7, 13}, naive_backwards(run, bw, ef, mask))},
                        {"bi", tensor_of({4, 7, last}, want)}});
      }
    }
}

TEST_CASE("Keras import: Bidirectional SimpleRNN, unmasked and after Embedding(mask_zero)") {
  test::NamedTempDir dir("fg_keras_bidirectional", "simple_rnn");
  const std::string simple_fields =
      R"("name": "srnn", "units": 7, "activation": "tanh", "use_bias": true, "return_sequences": true, "return_state": false, "go_backwards": false, "stateful": false, "dropout": 0.0, "recurrent_dropout": 0.0)";
  const std::string bidirectional = fmt::format(
      R"("name": "bi", "merge_mode": "concat", "layer": {{"class_name": "SimpleRNN", "config": {{{}}}}})",
      simple_fields);
  RnnRun run{false, 4, 7, 5, 7, true};
  run.simple_rnn = true;
  const RnnWeights fw = random_rnn(false, run.features, run.units, 230, true);
  const RnnWeights bw = random_rnn(false, run.features, run.units, 240, true);
  test::LayerWeights weights = keras2_names("forward_srnn/", fw);
  for (auto& p : keras2_names("backward_srnn/", bw)) weights.push_back(p);

  // unmasked: [4, 7, 5] floats
  const std::string plain = dir.path + "/plain.h5";
  test::write_legacy_model(
      plain,
      k2_sequential({{"Bidirectional", R"("batch_input_shape": [null, 7, 5], )" + bidirectional}}),
      {"bi"}, {{"bi", weights}});
  const ImportedModel pm = import_keras_model(plain);
  CHECK(has(format_imported_yaml(pm), "{name: bi_backward, op: simple_rnn"));
  const Tensor x = test::random_tensor({4, 7, 5}, 250);
  const std::vector<float> xs(x.data<float>(), x.data<float>() + x.size());
  run.zero_output_for_mask = true;  // no mask: no effect
  check_imported(pm, {{"bi_input", x}},
                 {{"bi", tensor_of({4, 7, 14}, naive_bidirectional(run, fw, bw, xs, "concat"))}});

  // masked: Embedding(mask_zero) first
  const std::string masked = dir.path + "/masked.h5";
  const Tensor table = test::random_tensor({9, 5}, 260);
  test::write_legacy_model(
      masked,
      k2_sequential(
          {{"Embedding",
            R"("name": "emb", "batch_input_shape": [null, 7], "input_dim": 9, "output_dim": 5, "mask_zero": true)"},
           {"Bidirectional", bidirectional}}),
      {"emb", "bi"}, {{"emb", {{"embeddings:0", table}}}, {"bi", weights}});
  const ImportedModel mm = import_keras_model(masked);
  CHECK(has(format_imported_yaml(mm), "zero_output_for_mask: true"));
  for (const bool padded_only : {false, true}) {
    CAPTURE(padded_only);
    const std::vector<int> ids = masked_ids(padded_only);
    std::vector<uint8_t> mask;
    for (int id : ids) mask.push_back(id != 0);
    const std::vector<double> e = ref::embedding(ids, table.data<float>(), 5);
    const std::vector<float> ef(e.begin(), e.end());
    const std::vector<double> ids_as_float(ids.begin(), ids.end());
    check_imported(
        mm, {{"emb_input", tensor_of({4, 7}, ids_as_float)}},
        {{"bi", tensor_of({4, 7, 14}, naive_bidirectional(run, fw, bw, ef, "concat", mask))}});
  }
}

TEST_CASE("Keras import: a plain layer's zero_output_for_mask in its config is read") {
  // Keras 3 writes zero_output_for_mask in every recurrent config
  test::NamedTempDir dir("fg_keras_bidirectional", "plain_zero_output");
  const std::string embedding =
      R"("name": "emb", "batch_input_shape": [null, 7], "input_dim": 9, "output_dim": 4, "mask_zero": true)";
  const Tensor table = test::random_tensor({9, 4}, 270);
  int n = 0;
  for (const bool lstm : {true, false})
    for (const bool sequences : {true, false})
      for (const bool zero : {true, false}) {
        CAPTURE(lstm);
        CAPTURE(sequences);
        CAPTURE(zero);
        RnnRun run{lstm, 4, 7, 4, 5, sequences};
        run.zero_output_for_mask = zero;
        const RnnWeights w = random_rnn(lstm, run.features, run.units, 280 + n);
        const std::string fields =
            recurrent_fields(lstm, "rnn", run.units, sequences, false) +
            fmt::format(R"(, "zero_output_for_mask": {})", zero ? "true" : "false");
        const std::string path = dir.path + fmt::format("/m{}.h5", n++);
        test::write_legacy_model(
            path, k2_sequential({{"Embedding", embedding}, {lstm ? "LSTM" : "GRU", fields}}),
            {"emb", "rnn"}, {{"emb", {{"embeddings:0", table}}}, {"rnn", keras2_names("", w)}});
        const ImportedModel m = import_keras_model(path);
        CHECK(has(format_imported_yaml(m), "zero_output_for_mask: true") == zero);
        const std::vector<int> ids = masked_ids(false);
        std::vector<uint8_t> mask;
        for (int id : ids) mask.push_back(id != 0);
        const std::vector<double> e = ref::embedding(ids, table.data<float>(), 4);
        const std::vector<float> ef(e.begin(), e.end());
        const std::vector<double> ids_as_float(ids.begin(), ids.end());
        check_imported(
            m, {{"emb_input", tensor_of({4, 7}, ids_as_float)}},
            {{"rnn", tensor_of(output_dims(run, run.units), naive_rnn(run, w, ef, mask))}});
      }
}

TEST_CASE("Keras import: malformed Bidirectional layers are clear errors") {
  test::NamedTempDir dir("fg_keras_bidirectional", "errors");
  const RnnWeights fw = random_rnn(true, 3, 2, 150), bw = random_rnn(true, 3, 2, 160);
  test::LayerWeights both = keras2_names("forward_l/", fw);
  for (auto& p : keras2_names("backward_l/", bw)) both.push_back(p);
  const std::string lstm = fmt::format(R"({{"class_name": "LSTM", "config": {{{}}}}})",
                                       recurrent_fields(true, "l", 2, false, false));
  struct Case {
    std::string fields;
    test::LayerWeights weights;
    std::string message;
  };
  int n = 0;
  for (const Case& c :
       {Case{R"("merge_mode": "concat", "layer": )" + lstm, keras2_names("forward_l/", fw),
             "layer 'bi' (Bidirectional): the file holds 3 weight arrays for this layer, "
             "expected the forward layer's and then as many for the backward layer"},
        Case{R"("merge_mode": null, "layer": )" + lstm, both,
             "layer 'bi' (Bidirectional): merge_mode None (the two directions' outputs as a "
             "list) is not supported"},
        Case{R"("merge_mode": "max", "layer": )" + lstm, both,
             "merge_mode 'max' is not one of 'concat', 'sum', 'mul', 'ave'"},
        Case{R"("layer": {"class_name": "Dense", "config": {"name": "d", "units": 2}})", both,
             "layer 'bi' (Bidirectional): Bidirectional over a Dense is not supported (over "
             "'GRU', 'LSTM', 'SimpleRNN' it is)"},
        Case{R"("merge_mode": "sum")", both,
             "layer 'bi' (Bidirectional): the config has no wrapped 'layer' with a class_name "
             "and a config"},
        Case{R"("merge_mode": "sum", "layer": )" + lstm + R"(, "backward_layer": )" + lstm, both,
             "the forward and backward layers have the same go_backwards"}}) {
    CAPTURE(c.fields);
    const std::string path = dir.path + fmt::format("/e{}.h5", n++);
    test::write_legacy_model(
        path,
        k2_sequential(
            {{"Bidirectional", R"("name": "bi", "batch_input_shape": [null, 4, 3], )" + c.fields}}),
        {"bi"}, {{"bi", c.weights}});
    CHECK(has(import_error(path), c.message));
  }
}

TEST_CASE("Keras import: a TF.js Bidirectional LSTM, weights named <layer>/forward_<inner>/...") {
  // model.json as tensorflowjs_converter writes it from a tf.keras .h5: the topology, one
  // manifest group with each weight's name (weight_names without ':0'), shape and dtype, and
  // the float32 bytes back to back in manifest order in one shard.
  test::NamedTempDir dir("fg_keras_bidirectional", "tfjs");
  const RnnRun run{true, 2, 7, 3, 5, true};
  const RnnWeights fw = random_rnn(true, run.features, run.units, 170);
  const RnnWeights bw = random_rnn(true, run.features, run.units, 180);
  const std::string config = k2_sequential(
      {{"Bidirectional",
        fmt::format(
            R"("name": "bidirectional_1", "batch_input_shape": [null, 7, 3], "merge_mode": "ave", "layer": {{"class_name": "LSTM", "config": {{{}}}}})",
            recurrent_fields(true, "lstm_1", run.units, true, false))}});
  nlohmann::json weights = nlohmann::json::array();
  std::string bytes;
  for (const auto& [direction, w] : {std::pair<std::string, const RnnWeights*>{"forward", &fw},
                                     std::pair<std::string, const RnnWeights*>{"backward", &bw}})
    for (const auto& [name, t] :
         {std::pair<std::string, const Tensor*>{"kernel", &w->kernel},
          std::pair<std::string, const Tensor*>{"recurrent_kernel", &w->recurrent},
          std::pair<std::string, const Tensor*>{"bias", &w->bias}}) {
      weights.push_back({{"name", fmt::format("bidirectional_1/{}_lstm_1/{}", direction, name)},
                         {"shape", t->shape()},
                         {"dtype", "float32"}});
      bytes.append(reinterpret_cast<const char*>(t->data<float>()), t->size() * sizeof(float));
    }
  std::ofstream(dir.path + "/group1-shard1of1.bin", std::ios::binary) << bytes;
  const nlohmann::json model = {
      {"format", "layers-model"},
      {"generatedBy", "keras v2.3.1"},
      {"convertedBy", "TensorFlow.js Converter v3.18.0"},
      {"modelTopology",
       {{"keras_version", "2.3.1"},
        {"backend", "tensorflow"},
        {"model_config", nlohmann::json::parse(config)}}},
      {"weightsManifest", {{{"paths", {"group1-shard1of1.bin"}}, {"weights", weights}}}}};
  const std::string path = test::write_text(dir.path + "/model.json", model.dump());
  const ImportedModel m = import_keras_model(path);
  const Tensor x = test::random_tensor({run.batch, run.steps, run.features}, 190);
  const std::vector<float> xs(x.data<float>(), x.data<float>() + x.size());
  check_imported(m, {{"bidirectional_1_input", x}},
                 {{"bidirectional_1", tensor_of(output_dims(run, run.units),
                                                naive_bidirectional(run, fw, bw, xs, "ave"))}});
}

TEST_CASE("Keras import: a Keras 1 Bidirectional GRU's per-gate arrays, forward then backward") {
  // Keras 1.2.2: the wrapper's weights are the forward layer's nine arrays W_z U_z b_z W_r U_r
  // b_r W_h U_h b_h, then the backward layer's; GRU without reset_after.
  test::NamedTempDir dir("fg_keras_bidirectional", "keras1");
  const RnnRun run{false, 2, 7, 3, 4, true};
  const std::string config =
      R"({"class_name": "Sequential", "config": [{"class_name": "Bidirectional", "config": {"name": "bidirectional_1", "trainable": true, "batch_input_shape": [null, 7, 3], "merge_mode": "concat", "layer": {"class_name": "GRU", "config": {"name": "gru_1", "trainable": true, "output_dim": 4, "activation": "tanh", "inner_activation": "sigmoid", "return_sequences": true, "go_backwards": false, "stateful": false, "unroll": false, "consume_less": "cpu", "dropout_W": 0.0, "dropout_U": 0.0}}}}]})";
  const char* gates[3] = {"z", "r", "h"};
  test::LayerWeights arrays;
  RnnWeights directions[2];
  for (int d = 0; d < 2; ++d) {
    // the per-gate parts, and the [rows, 3 * 4] side-by-side arrays the reference runs on
    Tensor kernel(DType::f32, {3, 12}), recurrent(DType::f32, {4, 12}), bias(DType::f32, {12});
    for (int g = 0; g < 3; ++g) {
      const Tensor W = test::random_tensor({3, 4}, 200 + 10 * d + g),
                   U = test::random_tensor({4, 4}, 300 + 10 * d + g),
                   b = test::random_tensor({4}, 400 + 10 * d + g);
      const std::string prefix = d == 0 ? "forward_gru_1_" : "backward_gru_1_";
      arrays.push_back({prefix + "W_" + gates[g], W});
      arrays.push_back({prefix + "U_" + gates[g], U});
      arrays.push_back({prefix + "b_" + gates[g], b});
      for (int j = 0; j < 4; ++j) {
        for (int r = 0; r < 3; ++r)
          kernel.mutable_data<float>()[r * 12 + g * 4 + j] = W.data<float>()[r * 4 + j];
        for (int r = 0; r < 4; ++r)
          recurrent.mutable_data<float>()[r * 12 + g * 4 + j] = U.data<float>()[r * 4 + j];
        bias.mutable_data<float>()[g * 4 + j] = b.data<float>()[j];
      }
    }
    directions[d] = {kernel, recurrent, bias};
  }
  const std::string path = dir.path + "/m.h5";
  test::write_legacy_model(path, config, {"bidirectional_1"}, {{"bidirectional_1", arrays}},
                           "1.2.2");
  const ImportedModel m = import_keras_model(path);
  const Tensor x = test::random_tensor({run.batch, run.steps, run.features}, 500);
  const std::vector<float> xs(x.data<float>(), x.data<float>() + x.size());
  // the reference: GRU without reset_after, bias [3u]
  auto naive = [&](const RnnWeights& w, const std::vector<float>& in) {
    ref::RnnArgs a;
    a.lstm = false, a.reset_after = false;
    a.batch = run.batch, a.steps = run.steps, a.features = run.features, a.units = run.units;
    a.return_sequences = true;
    a.x = in.data(), a.kernel = w.kernel.data<float>(), a.recurrent = w.recurrent.data<float>();
    a.bias = w.bias.data<float>();
    return ref::rnn(a);
  };
  const std::vector<double> y = naive(directions[0], xs);
  const std::vector<double> y_rev = reversed_steps(
      naive(directions[1], reversed_steps(xs, run.batch, run.steps)), run.batch, run.steps);
  std::vector<double> want;
  for (int64_t r = 0; r < run.batch * run.steps; ++r) {
    want.insert(want.end(), y.begin() + r * 4, y.begin() + (r + 1) * 4);
    want.insert(want.end(), y_rev.begin() + r * 4, y_rev.begin() + (r + 1) * 4);
  }
  check_imported(m, {{"bidirectional_1_input", x}},
                 {{"bidirectional_1", tensor_of({run.batch, run.steps, 8}, want)}});
}
